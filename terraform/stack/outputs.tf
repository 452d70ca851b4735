# The operator reads these (status.url, status.outputs) and syncs several into the GitHub
# environment; terraform/sandbox declares the same names (a contract test keeps them equal).

output "alb_dns" {
  description = "DNS name of the application load balancer."
  value       = module.alb.dns_name
}

output "url" {
  description = "Public URL of the app: https://<spec.domain.name>, else the ALB's name."
  value       = local.own_domain ? "https://${var.domain_name}" : "${local.https ? "https" : "http"}://${module.alb.dns_name}"
}

output "certificate_arn" {
  description = "ARN of the ACM certificate of spec.domain (validated), or the certificate_arn given; empty without HTTPS."
  value       = local.certificate_arn
}

output "ecs_cluster_name" {
  description = "ECS cluster name."
  value       = module.ecs_cluster.name
}

output "ecs_service_name" {
  description = "ECS service name."
  value       = module.ecs_service.name
}

output "ecs_task_definition_family" {
  description = "Task definition family the app's CD renders."
  value       = module.ecs_service.task_definition_family
}

output "ecs_task_definition_arn" {
  description = "The task definition revision Terraform registered (or the family's latest ACTIVE one); the operator deploys it."
  value       = module.ecs_service.task_definition_arn
}

output "target_group_arn" {
  description = "Target group the service registers its tasks with; the operator sets it with each revision it deploys."
  value       = module.alb.target_groups["app"].arn
}

output "container_port" {
  description = "Port of the app container, registered with the target group."
  value       = var.container_port
}

output "app_log_group" {
  description = "CloudWatch log group of the app container (`kubectl llmapp logs` reads it)."
  value       = module.ecs_service.container_definitions[local.container_name].cloudwatch_log_group_name
}

output "container_name" {
  description = "Name of the app container in the task definition."
  value       = local.container_name
}

output "ecr_repository_name" {
  description = "ECR repository name."
  value       = module.ecr.repository_name
}

output "ecr_repository_url" {
  description = "ECR repository URL."
  value       = module.ecr.repository_url
}

output "ecr_registry" {
  description = "ECR registry host."
  value       = local.ecr_registry
}

output "deploy_role_arn" {
  description = "IAM role the app's GitHub Actions assume through OIDC."
  value       = aws_iam_role.deploy.arn
}

output "alb_logs_bucket" {
  description = "S3 bucket holding ALB access logs."
  value       = module.alb_logs.s3_bucket_id
}

output "vpc_id" {
  description = "VPC id."
  value       = module.vpc.vpc_id
}

output "aws_region" {
  description = "AWS region of the stack."
  value       = var.aws_region
}

output "storage_bucket" {
  description = "The bucket of spec.app.storage (its name is also in the container's storage.env); empty without."
  value       = local.storage_on ? module.app_storage.s3_bucket_id : ""
}

output "keep_on_destroy" {
  description = "State addresses the teardown removes from the state instead of destroying (spec.app.storage.keepOnDelete)."
  value       = local.keep_on_destroy
}

output "sign_in_user_pool_id" {
  description = "Cognito user pool of spec.auth (invite users there); empty without sign-in."
  value       = local.sign_in_on ? aws_cognito_user_pool.sign_in[0].id : ""
}

output "sign_in_oidc_rule_arn" {
  description = "The listener rule whose actions the operator sets for spec.auth.oidc; empty otherwise."
  value       = local.oidc_on ? aws_lb_listener_rule.sign_in_oidc[0].arn : ""
}
