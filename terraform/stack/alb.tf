# Public ALB: HTTP forwards to the app, or redirects to HTTPS when there is a certificate
# (local.https: spec.domain's own, or var.certificate_arn). Without one the app is served over plain
# HTTP: checkov-waivers.yaml waives CKV_AWS_2, CKV_AWS_103 and CKV2_AWS_20 for that case only.
module "alb" {
  source  = "terraform-aws-modules/alb/aws"
  version = "10.5.0"

  name                       = "${var.name}-alb"
  load_balancer_type         = "application"
  vpc_id                     = module.vpc.vpc_id
  subnets                    = module.vpc.public_subnets
  enable_deletion_protection = false # the operator's finalizer is the deletion guard
  drop_invalid_header_fields = true

  access_logs = {
    bucket = module.alb_logs.s3_bucket_id
    prefix = "alb"
  }
  # The bucket's id is known before its policy exists; AWS refuses to enable access logs until
  # the log delivery policy is in place ("Access Denied for bucket").
  depends_on = [module.alb_logs]

  security_group_ingress_rules = {
    for key, rule in {
      http  = { port = 80, enabled = true }
      https = { port = 443, enabled = local.https }
      } : key => {
      from_port   = rule.port
      to_port     = rule.port
      ip_protocol = "tcp"
      cidr_ipv4   = "0.0.0.0/0"
      description = "${upper(key)} from the internet"
    } if rule.enabled
  }
  security_group_egress_rules = merge(
    {
      vpc = {
        ip_protocol = "-1"
        cidr_ipv4   = var.vpc_cidr
        description = "to the tasks in the VPC"
      }
    },
    # spec.auth: the ALB itself calls the identity provider's token and user info endpoints.
    local.sign_in_on ? {
      identity_provider = {
        from_port   = 443
        to_port     = 443
        ip_protocol = "tcp"
        cidr_ipv4   = "0.0.0.0/0"
        description = "to the sign-in provider's token endpoint"
      }
    } : {}
  )

  listeners = merge(
    {
      http = {
        port     = 80
        protocol = "HTTP"
        redirect = local.https ? { port = "443", protocol = "HTTPS", status_code = "HTTP_301" } : null
        forward  = local.https ? null : { target_group_key = "app" }
      }
    },
    {
      for key, listener in {
        https = {
          port            = 443
          protocol        = "HTTPS"
          certificate_arn = local.certificate_arn
          ssl_policy      = "ELBSecurityPolicy-TLS13-1-2-2021-06"
          forward         = { target_group_key = "app" }
        }
      } : key => listener if local.https
    }
  )

  target_groups = {
    app = {
      # The port is in the name: a new container_port replaces the group (port forces a new one) and
      # the module creates the replacement before it destroys the old one (create_before_destroy in
      # aws_lb_target_group.this at v10.5.0), so the two must not share a name. AWS allows 32
      # characters: var.name is at most 24, "-" and a port of at most 5 digits make 30.
      name                 = "${var.name}-${var.container_port}"
      protocol             = "HTTP"
      port                 = var.container_port
      target_type          = "ip"
      deregistration_delay = 30
      create_attachment    = false # ECS registers the task IPs itself

      health_check = {
        enabled             = true
        path                = var.health_check_path
        matcher             = "200-399"
        interval            = 30
        timeout             = 5
        healthy_threshold   = 2
        unhealthy_threshold = 3
      }
    }
  }

  tags = var.tags
}
