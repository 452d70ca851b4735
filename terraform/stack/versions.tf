terraform {
  # Cross-variable validation (task_memory checks task_cpu) needs Terraform 1.9.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # ecs 7.5.0 needs >= 6.34; alb 10.5.0 and vpc 6.6.0 need >= 6.28.
      version = ">= 6.34, < 7.0"
    }
  }

  # Left empty on purpose: the operator passes bucket, key, region and locking with -backend-config.
  backend "s3" {}
}
