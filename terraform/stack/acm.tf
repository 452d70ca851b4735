# spec.domain: the app at its own name over HTTPS. An ACM certificate validated through DNS records
# in the given Route53 zone (terraform-aws-modules/acm), and an alias record to the ALB.
module "acm" {
  source  = "terraform-aws-modules/acm/aws"
  version = "6.3.0"

  create_certificate = local.own_domain
  domain_name        = var.domain_name
  zone_id            = var.domain_zone_id
  # The module's default is null, which creates the certificate but neither its validation records
  # nor the wait (both are counted on validation_method at 6.3.0): DNS, stated.
  validation_method = "DNS"
  # acm_certificate_arn comes from aws_acm_certificate_validation, so the HTTPS listener waits for
  # the certificate to be issued. Bounded: a zone the domain is not delegated to never validates,
  # and the operator then reports CertificatePendingValidation from ACM without re-running
  # Terraform until ACM says ISSUED (docs/stack.md).
  wait_for_validation = true
  validation_timeout  = "15m"

  tags = var.tags
}

resource "aws_route53_record" "app" {
  count   = local.own_domain ? 1 : 0
  zone_id = var.domain_zone_id
  name    = var.domain_name
  type    = "A"
  alias {
    name                   = module.alb.dns_name
    zone_id                = module.alb.zone_id
    evaluate_target_health = true
  }
}
