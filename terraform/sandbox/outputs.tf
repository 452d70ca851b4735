output "alb_dns" {
  description = "DNS name of the application load balancer."
  value       = "${var.name}-${substr(terraform_data.alb.id, 0, 8)}.${var.aws_region}.elb.amazonaws.com"
}

output "url" {
  description = "Public URL of the app: https://<spec.domain.name>, else the ALB's name."
  value       = var.domain_name != "" ? "https://${var.domain_name}" : "${var.certificate_arn != "" ? "https" : "http"}://${var.name}-${substr(terraform_data.alb.id, 0, 8)}.${var.aws_region}.elb.amazonaws.com"
}

output "certificate_arn" {
  description = "ARN of the ACM certificate of spec.domain (validated), or the certificate_arn given; empty without HTTPS."
  value       = var.domain_name != "" ? "arn:aws:acm:${var.aws_region}:${local.account_id}:certificate/${terraform_data.certificate[0].id}" : var.certificate_arn
}

output "ecs_cluster_name" {
  description = "ECS cluster name."
  value       = terraform_data.ecs_service.output.cluster
}

output "ecs_service_name" {
  description = "ECS service name."
  value       = terraform_data.ecs_service.output.service
}

output "ecs_task_definition_family" {
  description = "Task definition family the app's CD renders."
  value       = terraform_data.task_definition.output.family
}

output "ecs_task_definition_arn" {
  # The family alone: ECS resolves it to the latest ACTIVE revision, as the stack's track_latest does.
  description = "The task definition revision Terraform registered (or the family's latest ACTIVE one); the operator deploys it."
  value       = terraform_data.task_definition.output.family
}

output "target_group_arn" {
  description = "Target group the service registers its tasks with; the operator sets it with each revision it deploys."
  value       = "arn:aws:elasticloadbalancing:${var.aws_region}:${local.account_id}:targetgroup/${var.name}-${var.container_port}/${substr(replace(terraform_data.alb.id, "-", ""), 0, 16)}"
}

output "container_port" {
  description = "Port of the app container, registered with the target group."
  value       = var.container_port
}

output "app_log_group" {
  # The name the ecs module's container-definition gives it: /aws/ecs/<service>/<container>.
  description = "CloudWatch log group of the app container (`kubectl llmapp logs` reads it)."
  value       = "/aws/ecs/${var.name}-service/${local.container_name}"
}

output "container_name" {
  description = "Name of the app container in the task definition."
  value       = local.container_name
}

output "ecr_repository_name" {
  description = "ECR repository name."
  value       = terraform_data.ecr.output.repository
}

output "ecr_repository_url" {
  description = "ECR repository URL."
  value       = "${local.ecr_registry}/${terraform_data.ecr.output.repository}"
}

output "ecr_registry" {
  description = "ECR registry host."
  value       = local.ecr_registry
}

output "deploy_role_arn" {
  description = "IAM role the app's GitHub Actions assume through OIDC."
  value       = terraform_data.deploy_role.output.arn
}

output "alb_logs_bucket" {
  description = "S3 bucket holding ALB access logs."
  value       = terraform_data.alb_logs_bucket.output.bucket
}

output "vpc_id" {
  description = "VPC id."
  value       = "vpc-${substr(replace(terraform_data.vpc.id, "-", ""), 0, 17)}"
}

output "aws_region" {
  description = "AWS region of the stack."
  value       = var.aws_region
}

output "storage_bucket" {
  description = "The bucket of spec.app.storage (its name is also in the container's storage.env); empty without."
  value       = var.storage == null ? "" : terraform_data.app_storage[0].output.bucket
}

output "keep_on_destroy" {
  description = "State addresses the teardown removes from the state instead of destroying (spec.app.storage.keepOnDelete)."
  value       = var.storage == null ? [] : (var.storage.keep_on_delete ? ["terraform_data.app_storage"] : [])
}

output "sign_in_user_pool_id" {
  description = "Cognito user pool of spec.auth (invite users there); empty without sign-in."
  value       = var.sign_in == null ? "" : (var.sign_in.oidc ? "" : "${var.aws_region}_${substr(replace(terraform_data.sign_in[0].id, "-", ""), 0, 9)}")
}

output "sign_in_oidc_rule_arn" {
  description = "The listener rule whose actions the operator sets for spec.auth.oidc; empty otherwise."
  value       = var.sign_in == null ? "" : (var.sign_in.oidc ? "arn:aws:elasticloadbalancing:${var.aws_region}:${local.account_id}:listener-rule/app/${var.name}-alb/${substr(replace(terraform_data.alb.id, "-", ""), 0, 16)}/${substr(replace(terraform_data.sign_in[0].id, "-", ""), 0, 16)}/${substr(replace(terraform_data.sign_in[0].id, "-", ""), 16, 16)}" : "")
}
