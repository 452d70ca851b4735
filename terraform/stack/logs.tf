# ALB access logs: private, SSE-S3 (the only encryption ELB log delivery supports), TLS-only,
# expired after alb_log_retention_days, with the bucket policy ELB log delivery needs.
module "alb_logs" {
  source  = "terraform-aws-modules/s3-bucket/aws"
  version = "5.15.4"

  bucket        = "${var.name}-alb-logs-${data.aws_caller_identity.current.account_id}"
  force_destroy = true # teardown must not fail on log objects

  control_object_ownership = true
  object_ownership         = "BucketOwnerEnforced"
  block_public_acls        = true
  block_public_policy      = true
  ignore_public_acls       = true
  restrict_public_buckets  = true

  attach_elb_log_delivery_policy        = true
  attach_lb_log_delivery_policy         = true
  attach_deny_insecure_transport_policy = true

  server_side_encryption_configuration = {
    rule = {
      apply_server_side_encryption_by_default = {
        sse_algorithm = "AES256"
      }
    }
  }

  lifecycle_rule = [
    {
      id         = "expire-alb-logs"
      enabled    = true
      expiration = { days = var.alb_log_retention_days }
      # Parts of an upload ELB never completed are billed until deleted (Checkov CKV_AWS_300).
      abort_incomplete_multipart_upload_days = 7
    }
  ]

  tags = var.tags
}
