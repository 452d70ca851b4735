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
  own_domain     = var.domain_name != ""
  # Decided from the variables, never from the certificate's ARN: the listeners are a for_each,
  # whose keys must be known at plan time, and a new certificate's ARN is not.
  https           = local.own_domain || var.certificate_arn != ""
  certificate_arn = local.own_domain ? module.acm.acm_certificate_arn : var.certificate_arn
  task_statements = concat(local.bedrock_statements, local.storage_statements)
  # Without spec.app.image the service runs what the app's CI pushes to our ECR repository.
  image        = var.image != "" ? var.image : "${module.ecr.repository_url}:latest"
  ecr_registry = split("/", module.ecr.repository_url)[0]
}
