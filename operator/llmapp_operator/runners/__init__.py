"""Where Terraform runs: the Runner protocol, the local runner, the Job runner and the step inside a Job."""
