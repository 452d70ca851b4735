# Sandbox stand-in for terraform/stack: one terraform_data per AWS building block, so the whole
# operator lifecycle (init, plan, apply, outputs, destroy, S3 state and locking) runs with no
# provider download and no cloud. Used by `make demo` and the integration tests.

terraform {
  required_version = ">= 1.9"
  backend "s3" {}
}

locals {
  container_name = "${var.name}-app"
  account_id     = "000000000000"
  ecr_registry   = "${local.account_id}.dkr.ecr.${var.aws_region}.amazonaws.com"
}

resource "terraform_data" "vpc" {
  input = { cidr = var.vpc_cidr, az_count = var.az_count, single_nat_gateway = var.single_nat_gateway }
}

resource "terraform_data" "alb_logs_bucket" {
  input = { bucket = "${var.name}-alb-logs", retention_days = var.alb_log_retention_days }
}

resource "terraform_data" "alb" {
  input = {
    vpc               = terraform_data.vpc.id
    logs              = terraform_data.alb_logs_bucket.output.bucket
    port              = var.container_port
    health_check_path = var.health_check_path
    https             = var.certificate_arn != "" || var.domain_name != ""
  }
}

# spec.domain (acm.tf in the stack): the certificate, validated through DNS in the zone, and the
# alias record to the ALB. A new name replaces the certificate (the stack's is create_before_destroy).
resource "terraform_data" "certificate" {
  count            = var.domain_name != "" ? 1 : 0
  input            = { domain = var.domain_name, zone = var.domain_zone_id }
  triggers_replace = [var.domain_name]
}

resource "terraform_data" "dns_record" {
  count = var.domain_name != "" ? 1 : 0
  input = { zone = var.domain_zone_id, name = var.domain_name, alias_to = terraform_data.alb.id }
}

resource "terraform_data" "ecr" {
  input = { repository = var.name, keep_images = var.ecr_keep_images }
}

# The stack's semantics, not only its names (docs/stack.md): Terraform registers task definition
# revisions but never deploys one or sets the task count (the operator does both through the ECS
# API), so neither the count nor the revision is an input of the service here.
locals {
  task_definition = {
    family = "${var.name}-task"
    cpu    = var.task_cpu
    memory = var.task_memory
    port   = var.container_port
    # rollout pipeline: the operator passes the image the service runs, and the real stack's refresh
    # (track_latest) already holds the CD's latest revision, so a CD deploy is no change. The
    # sandbox cannot refresh from ECS: it leaves that image out of what it compares instead.
    image = var.rollout == "pipeline" ? "(the image the service runs)" : var.image
    environment = merge({ for name, value in var.app_environment : name => value if value != "" },
    var.storage == null ? {} : { (var.storage.env) = "${var.name}-data-${local.account_id}" })
    secret_arns = var.app_secret_arns
  }
}

# Task definition revisions are immutable: a change registers a new one (replace), as
# aws_ecs_task_definition does.
resource "terraform_data" "task_definition" {
  input            = local.task_definition
  triggers_replace = local.task_definition
}

resource "terraform_data" "ecs_service" {
  input = {
    cluster = "${var.name}-cluster"
    service = "${var.name}-service"
    alb     = terraform_data.alb.id
  }
}

resource "terraform_data" "deploy_role" {
  input = {
    arn     = "arn:aws:iam::${local.account_id}:role/${var.name}-deploy"
    subject = "repo:${var.github_repository}:environment:${var.github_environment}"
    oidc    = var.create_github_oidc_provider
  }
}

# The task role's Bedrock permissions (models.tf in the stack): a policy updated in place.
resource "terraform_data" "task_role_policy" {
  count = length(var.bedrock_models) > 0 ? 1 : 0
  input = { role = "${var.name}-task", bedrock_models = var.bedrock_models }
}

# Application Auto Scaling of the task count (scaling.tf in the stack): its target, policies and
# scheduled actions, updated in place; the count itself stays the operator's and the autoscaler's.
resource "terraform_data" "scaling" {
  count = var.scaling == null ? 0 : 1
  input = {
    resource_id = "service/${var.name}-cluster/${var.name}-service"
    scaling     = var.scaling
  }
}

# spec.app.storage (storage.tf in the stack): the data bucket. keep_on_destroy (outputs.tf) names it,
# so the teardown removes it from the state instead of destroying it.
resource "terraform_data" "app_storage" {
  count = var.storage == null ? 0 : 1
  input = { bucket = "${var.name}-data-${local.account_id}", task_role = "${var.name}-task", versioned = true }
}

# spec.auth (sign_in.tf in the stack): the user pool, its hosted-UI domain, the ALB's app client and
# the listener rule that authenticates every request before forwarding it.
resource "terraform_data" "sign_in" {
  count = var.sign_in == null ? 0 : 1
  input = {
    # oidc: only the rule; the operator sets its actions. cognito: the pool, its domain and client too.
    user_pool = var.sign_in.oidc ? null : "${var.name}-users"
    domain    = var.sign_in.cognito_domain_prefix
    callback  = "https://${var.domain_name}/oauth2/idpresponse"
    rule      = { listener = "https", priority = 1, then = terraform_data.alb.id, actions_by = var.sign_in.oidc ? "operator" : "terraform" }
  }
}
