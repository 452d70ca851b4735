"""AWS through boto3: the state backend, saved plans, app secrets and app health."""
