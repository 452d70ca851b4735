provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, { "managed-by" = "llmapp-operator" })
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_caller_identity" "current" {}

locals {
  azs            = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  container_name = "${var.name}-app"
  https          = var.certificate_arn != ""
  # Without spec.app.image the service runs what the app's CI pushes to our ECR repository.
  image        = var.image != "" ? var.image : "${module.ecr.repository_url}:latest"
  ecr_registry = split("/", module.ecr.repository_url)[0]
}
