# The same variable contract as terraform/stack (a test keeps them equal), so the operator renders
# exactly what it renders for the real stack. Values are only echoed into terraform_data inputs.

variable "name" {
  description = "Resource name prefix derived by the operator (lowercase, at most 24 characters)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "name must be lowercase letters, digits and dashes, at most 24 characters."
  }
}

variable "environment" {
  description = "Environment name (dev, staging, prod…); also the GitHub environment by default."
  type        = string
}

variable "aws_region" {
  description = "AWS region the stack would be deployed to."
  type        = string
}

variable "github_repository" {
  description = "The app repository, owner/name, whose CI/CD may assume the deploy role."
  type        = string
}

variable "github_environment" {
  description = "The GitHub environment the deploy role trusts."
  type        = string
}

variable "container_port" {
  description = "Port the app container listens on."
  type        = number
  default     = 8501
}

variable "task_cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate task memory in MiB."
  type        = number
  default     = 2048
}

variable "desired_count" {
  description = "Number of running tasks."
  type        = number
  default     = 1
}

variable "health_check_path" {
  description = "HTTP path of the target group health check."
  type        = string
  default     = "/_stcore/health"
}

variable "image" {
  description = "Container image; empty means the ECR repository's latest image."
  type        = string
  default     = ""
}

variable "app_environment" {
  description = "Plain environment variables for the container."
  type        = map(string)
  default     = {}
}

variable "app_secret_arns" {
  description = "Environment variable name -> Secrets Manager ARN (values never pass through Terraform)."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones."
  type        = number
  default     = 2
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway instead of one per AZ."
  type        = bool
  default     = true
}

variable "certificate_arn" {
  description = "ACM certificate ARN for an HTTPS listener; empty means HTTP only."
  type        = string
  default     = ""
}

variable "create_github_oidc_provider" {
  description = "Create the GitHub OIDC identity provider instead of looking it up."
  type        = bool
  default     = false
}

variable "alb_log_retention_days" {
  description = "Days ALB access logs are kept."
  type        = number
  default     = 90
}

variable "ecr_keep_images" {
  description = "Number of images the ECR lifecycle policy keeps."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
