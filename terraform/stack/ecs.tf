# Fargate cluster and the app service: private subnets, no public IP, reachable only from the ALB,
# secrets by ARN (values never pass through Terraform), circuit breaker with rollback.
module "ecs_cluster" {
  source  = "terraform-aws-modules/ecs/aws//modules/cluster"
  version = "7.5.0"

  name = "${var.name}-cluster"

  # ecs 7.x no longer infers the providers from the strategy (docs/UPGRADE-7.0.md): AWS refuses a
  # strategy that names a provider the cluster does not have.
  cluster_capacity_providers = ["FARGATE"]
  default_capacity_provider_strategy = {
    FARGATE = { weight = 100, base = 1 }
  }

  # The cluster creates no role with Fargate alone; should it ever, the boundary applies.
  task_exec_iam_role_permissions_boundary      = var.permissions_boundary_arn
  infrastructure_iam_role_permissions_boundary = var.permissions_boundary_arn
  node_iam_role_permissions_boundary           = var.permissions_boundary_arn

  tags = var.tags
}

module "ecs_service" {
  source  = "terraform-aws-modules/ecs/aws//modules/service"
  version = "7.5.0"

  name        = "${var.name}-service"
  family      = "${var.name}-task"
  cluster_arn = module.ecs_cluster.arn
  launch_type = "FARGATE"
  cpu         = var.task_cpu
  memory      = var.task_memory
  # Created with no tasks: the image may not exist yet. The module ignores desired_count after
  # creation (lifecycle ignore_changes in both service resources), so the operator sets
  # spec.app.desiredCount through the ECS API once the image exists (docs/stack.md).
  desired_count = 0

  subnet_ids       = module.vpc.private_subnets
  assign_public_ip = false

  # The module's default role names ("<name>-service-task-exec-" as a name_prefix) pass IAM's
  # 38-character name_prefix limit only for names under 20 characters; ours reach 24.
  task_exec_iam_role_name = "${var.name}-exec"
  tasks_iam_role_name     = "${var.name}-task"

  enable_autoscaling                = false
  deployment_circuit_breaker        = { enable = true, rollback = true }
  health_check_grace_period_seconds = 60 # Streamlit needs a while before /_stcore/health answers
  # One owner for each rollout: Terraform registers task definition revisions (env, secrets, sizes,
  # and the image the operator picks: spec.app.image, or the one running for rollout: pipeline) but
  # never points the service at one. The operator deploys a revision Terraform made through the ECS
  # API, and never one older than what the app's CD deployed. With false, every apply would move the
  # service back to Terraform's revision, undoing the CD's deploys. (This resource variant also
  # ignores load_balancer: the operator sets it with the revision, see docs/stack.md.)
  ignore_task_definition_changes = true
  # The module's default, stated because the design rests on it: a refresh reads the family's latest
  # ACTIVE revision, so a revision the CD registered is what Terraform compares against, not drift.
  track_latest = true

  container_definitions = {
    (local.container_name) = {
      image     = local.image
      essential = true
      portMappings = [{
        name          = "http"
        containerPort = var.container_port
        hostPort      = var.container_port
        protocol      = "tcp"
      }]
      # ECS drops variables with empty values from the registered revision, which would show as a
      # change on every plan: leave them out here too.
      environment = concat([for name, value in var.app_environment : { name = name, value = value } if value != ""],
      local.storage_env)
      secrets = [for name, arn in var.app_secret_arns : { name = name, valueFrom = arn }]
      # The container-definition module defaults this to "disabled" (ECS's own default is
      # enabled): resolve the tag to a digest at deployment, so every task of a deployment runs the
      # same image even when CI moves the tag.
      versionConsistency = "enabled"
      # Streamlit writes to its home directory at start-up.
      readonlyRootFilesystem                 = false
      enable_cloudwatch_logging              = true
      cloudwatch_log_group_retention_in_days = 30
    }
  }

  # The task role's own permissions: the Bedrock models of spec.app.models (models.tf) and the
  # bucket of spec.app.storage (storage.tf). null, not [], without either: the module then creates
  # no task policy (an empty policy document is refused).
  tasks_iam_role_statements = length(local.task_statements) > 0 ? local.task_statements : null

  # Exactly the app's secrets, nothing else, for the task execution role.
  task_exec_secret_arns = values(var.app_secret_arns)

  # Every role the module may create gets the platform's boundary: the task execution and task
  # roles (created here), the service and infrastructure roles (not needed with awsvpc and no volumes).
  task_exec_iam_role_permissions_boundary      = var.permissions_boundary_arn
  tasks_iam_role_permissions_boundary          = var.permissions_boundary_arn
  iam_role_permissions_boundary                = var.permissions_boundary_arn
  infrastructure_iam_role_permissions_boundary = var.permissions_boundary_arn

  load_balancer = {
    app = {
      target_group_arn = module.alb.target_groups["app"].arn
      container_name   = local.container_name
      container_port   = var.container_port
    }
  }

  security_group_ingress_rules = {
    alb = {
      from_port                    = var.container_port
      to_port                      = var.container_port
      ip_protocol                  = "tcp"
      referenced_security_group_id = module.alb.security_group_id
      description                  = "app port from the ALB only"
    }
  }
  security_group_egress_rules = {
    all = {
      ip_protocol = "-1"
      cidr_ipv4   = "0.0.0.0/0"
      description = "image pulls and LLM API calls through the NAT gateway"
    }
  }

  # A service whose target group has no listener yet is refused ("target group does not have an
  # associated load balancer"): create it after the ALB's listeners.
  depends_on = [module.alb]

  tags = var.tags
}

# A stack applied before the operator deployed revisions itself holds the service as the module's
# aws_ecs_service.this (ignore_task_definition_changes = false). Moving it keeps that service:
# without this, the switch would destroy and re-create it. Nothing to move in a new stack.
moved {
  from = module.ecs_service.aws_ecs_service.this[0]
  to   = module.ecs_service.aws_ecs_service.ignore_task_definition[0]
}
