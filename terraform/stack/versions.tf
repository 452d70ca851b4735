terraform {
  # Cross-variable validation (task_memory checks task_cpu) needs Terraform 1.9.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # s3-bucket 5.15.4 needs >= 6.42; ecs 7.5.0 >= 6.34; alb 10.5.0, vpc 6.6.0, ecr 3.2.0 >= 6.28.
      version = ">= 6.42, < 7.0"
    }
    time = {
      source = "hashicorp/time"
      # The ecs 7.5.0 cluster module waits with a time_sleep for its capacity providers.
      version = ">= 0.13"
    }
  }

  # Left empty on purpose: the operator passes bucket, key, region and locking with -backend-config.
  backend "s3" {}
}
