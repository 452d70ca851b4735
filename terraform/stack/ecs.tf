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

  name          = "${var.name}-service"
  family        = "${var.name}-task"
  cluster_arn   = module.ecs_cluster.arn
  launch_type   = "FARGATE"
  cpu           = var.task_cpu
  memory        = var.task_memory
  desired_count = var.desired_count

  subnet_ids       = module.vpc.private_subnets
  assign_public_ip = false

  # The module's default role names ("<name>-service-task-exec-" as a name_prefix) pass IAM's
  # 38-character name_prefix limit only for names under 20 characters; ours reach 24.
  task_exec_iam_role_name = "${var.name}-exec"
  tasks_iam_role_name     = "${var.name}-task"

  enable_autoscaling         = false
  deployment_circuit_breaker = { enable = true, rollback = true }
  # The app's CD registers new task definition revisions with new image tags. Terraform keeps
  # managing the task definition (env, secrets, sizes from the spec), so CI also pushes :latest,
  # which is what a re-apply deploys; see examples/app-repo.
  ignore_task_definition_changes = false

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
      environment = [for name, value in var.app_environment : { name = name, value = value }]
      secrets     = [for name, arn in var.app_secret_arns : { name = name, valueFrom = arn }]
      # Streamlit writes to its home directory at start-up.
      readonlyRootFilesystem                 = false
      enable_cloudwatch_logging              = true
      cloudwatch_log_group_retention_in_days = 30
    }
  }

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
