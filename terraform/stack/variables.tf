# The variable contract between the operator and its modules. terraform/sandbox links this file,
# so the sandbox and the AWS stack cannot drift apart; the operator renders exactly these names as
# terraform.tfvars.json (a contract test checks renderer and file against each other).

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
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
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
  description = "Fargate task memory in MiB; must be a valid pair with task_cpu."
  type        = number
  default     = 2048
  validation {
    condition = (
      (var.task_cpu == 256 && contains([512, 1024, 2048], var.task_memory)) ||
      (var.task_cpu == 512 && var.task_memory >= 1024 && var.task_memory <= 4096 && var.task_memory % 1024 == 0) ||
      (var.task_cpu == 1024 && var.task_memory >= 2048 && var.task_memory <= 8192 && var.task_memory % 1024 == 0) ||
      (var.task_cpu == 2048 && var.task_memory >= 4096 && var.task_memory <= 16384 && var.task_memory % 1024 == 0) ||
      (var.task_cpu == 4096 && var.task_memory >= 8192 && var.task_memory <= 30720 && var.task_memory % 1024 == 0) ||
      (var.task_cpu == 8192 && var.task_memory >= 16384 && var.task_memory <= 61440 && var.task_memory % 4096 == 0) ||
      (var.task_cpu == 16384 && var.task_memory >= 32768 && var.task_memory <= 122880 && var.task_memory % 8192 == 0)
    )
    error_message = "task_cpu/task_memory is not a valid Fargate task size."
  }
}

# No desired_count: the ECS service module ignores it after creation (lifecycle ignore_changes), so
# the operator sets spec.app.desiredCount through the ECS API once the image exists (docs/stack.md).

variable "rollout" {
  description = "Who deploys images: pipeline (the app's CD) or operator (spec.app.image). The operator picks var.image accordingly; the stack deploys no revision itself (docs/stack.md)."
  type        = string
  default     = "pipeline"
  validation {
    condition     = contains(["pipeline", "operator"], var.rollout)
    error_message = "rollout must be pipeline or operator."
  }
}

variable "health_check_path" {
  description = "HTTP path of the target group health check."
  type        = string
  default     = "/_stcore/health"
}

variable "image" {
  description = "Container image of the task definition: spec.app.image (rollout operator), or the image the service runs (rollout pipeline, read by the operator); empty before the first deploy."
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
  description = "CIDR block of the VPC (/16 to /23: subnets are 4 bits smaller, at least /27)."
  type        = string
  default     = "10.0.0.0/16"
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 23
    error_message = "vpc_cidr must be an IPv4 CIDR block between /16 and /23."
  }
}

variable "az_count" {
  description = "Number of availability zones (2 to 6)."
  type        = number
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
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

variable "permissions_boundary_arn" {
  description = "ARN of the IAM policy set as permissions boundary on every IAM role the stack creates (docs/iam.md); null: none."
  type        = string
  default     = null
}

variable "bedrock_models" {
  description = "Amazon Bedrock model ids (or system-defined inference profile ids) the task role may invoke in aws_region; nothing else."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for id in var.bedrock_models : can(regex("^((us|us-gov|eu|apac|jp|au|ca|global)\\.)?[a-z0-9][a-z0-9-]*\\.[a-z0-9][a-z0-9.:-]*[a-z0-9]$", id))])
    error_message = "bedrock_models holds model ids such as anthropic.claude-3-haiku-20240307-v1:0, never a wildcard."
  }
}

variable "scaling" {
  description = "ECS service autoscaling (spec.app.scaling); null: a fixed task count the operator sets."
  type = object({
    min_tasks           = number
    max_tasks           = number
    cpu_target          = optional(number)
    requests_per_target = optional(number)
    schedule = optional(object({
      stop     = string
      start    = string
      timezone = optional(string, "UTC")
    }))
  })
  default = null
  validation {
    # A conditional, not `||`: Terraform 1.11 evaluates both sides of `||`, and an attribute of a
    # null object is an error.
    condition = var.scaling == null ? true : (
      var.scaling.min_tasks >= 1 && var.scaling.min_tasks <= var.scaling.max_tasks && var.scaling.max_tasks <= 100 &&
      (var.scaling.cpu_target != null || var.scaling.requests_per_target != null)
    )
    error_message = "scaling needs 1 <= min_tasks <= max_tasks <= 100 and a cpu_target or requests_per_target."
  }
}

variable "domain_name" {
  description = "The app's own name (spec.domain.name): an ACM certificate validated in domain_zone_id, an alias record to the ALB, HTTPS; empty: the ALB's name."
  type        = string
  default     = ""
  validation {
    condition     = var.domain_name == "" || can(regex("^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS name such as rags.example.com (no wildcard)."
  }
}

variable "domain_zone_id" {
  description = "Route53 public hosted zone id holding domain_name (spec.domain.hostedZoneId)."
  type        = string
  default     = ""
  validation {
    condition     = (var.domain_name == "") == (var.domain_zone_id == "") && (var.domain_zone_id == "" || can(regex("^Z[A-Z0-9]{1,31}$", var.domain_zone_id)))
    error_message = "domain_zone_id is a Route53 hosted zone id (Z...), set exactly when domain_name is."
  }
}

variable "storage" {
  description = "spec.app.storage: a private, encrypted S3 bucket for the app's data; keep_on_delete leaves it out of the teardown's destroy; env names the variable that receives its name. null: none."
  type = object({
    keep_on_delete = bool
    env            = string
  })
  default = null
  validation {
    condition     = var.storage == null ? true : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.storage.env))
    error_message = "storage.env must be an environment variable name."
  }
}

variable "sign_in" {
  description = "spec.auth: an ALB rule that authenticates every request before it reaches the app, with a Cognito user pool the stack creates, or for an OIDC provider whose action (and client secret) the operator sets; null: none."
  type = object({
    cognito_domain_prefix = optional(string)
    oidc                  = optional(bool, false)
  })
  default = null
  validation {
    condition     = var.sign_in == null ? true : (var.sign_in.cognito_domain_prefix != null) != var.sign_in.oidc
    error_message = "sign_in is either a Cognito pool (cognito_domain_prefix) or OIDC (oidc = true)."
  }
  validation {
    condition     = var.sign_in == null ? true : (var.sign_in.cognito_domain_prefix == null ? true : (can(regex("^[a-z0-9](-?[a-z0-9]){0,62}$", var.sign_in.cognito_domain_prefix)) && length(regexall("aws|amazon|cognito", var.sign_in.cognito_domain_prefix)) == 0))
    error_message = "sign_in.cognito_domain_prefix: lower-case letters, digits and hyphens, without aws, amazon or cognito."
  }
  validation {
    condition     = var.sign_in == null || var.domain_name != ""
    error_message = "sign_in needs domain_name: the ALB authenticates on HTTPS only."
  }
}
