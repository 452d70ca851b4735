# spec.app.storage: the app's documents and index. Private, SSE-KMS (the account's aws/s3 key),
# versioned, TLS-only; its objects may be read and written only by the task role and by the
# identity Terraform runs as (which empties it when the teardown deletes it). The name is
# derived, like the log bucket's, so the task role's policy needs no reference back to the bucket.
data "aws_iam_session_context" "terraform" {
  arn = data.aws_caller_identity.current.arn
}

locals {
  storage_on     = var.storage != null
  storage_bucket = "${var.name}-data-${data.aws_caller_identity.current.account_id}"
  storage_arn    = "arn:${data.aws_partition.current.partition}:s3:::${local.storage_bucket}"
  storage_env    = [for on in [local.storage_on] : { name = var.storage.env, value = local.storage_bucket } if on]
  storage_statements = [for statement in [
    { sid = "AppStorageList", actions = ["s3:ListBucket"], resources = [local.storage_arn] },
    { sid = "AppStorageObjects", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], resources = ["${local.storage_arn}/*"] },
  ] : statement if local.storage_on]
  # What the teardown leaves out of `terraform destroy` (the operator reads this output from the
  # applied record and removes these addresses from the state first): docs/stack.md.
  keep_on_destroy = local.storage_on ? (var.storage.keep_on_delete ? ["module.app_storage"] : []) : []
}

data "aws_iam_policy_document" "app_storage" {
  count = local.storage_on ? 1 : 0
  statement {
    sid       = "OnlyTheAppAndItsTerraform"
    effect    = "Deny"
    actions   = ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:ListBucket*", "s3:RestoreObject"]
    resources = [local.storage_arn, "${local.storage_arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEquals"
      variable = "aws:PrincipalArn"
      values   = [module.ecs_service.tasks_iam_role_arn, data.aws_iam_session_context.terraform.issuer_arn]
    }
  }
}

module "app_storage" {
  source  = "terraform-aws-modules/s3-bucket/aws"
  version = "5.15.4"

  create_bucket = local.storage_on
  bucket        = local.storage_bucket
  # keep_on_delete: the teardown never destroys it (see keep_on_destroy). Otherwise it is emptied,
  # every version of every object, when the LLMApp is deleted.
  force_destroy = local.storage_on ? !var.storage.keep_on_delete : false

  control_object_ownership = true
  object_ownership         = "BucketOwnerEnforced"
  block_public_acls        = true
  block_public_policy      = true
  ignore_public_acls       = true
  restrict_public_buckets  = true

  versioning = { enabled = true }
  server_side_encryption_configuration = {
    rule = {
      apply_server_side_encryption_by_default = { sse_algorithm = "aws:kms" }
      bucket_key_enabled                      = true
    }
  }
  lifecycle_rule = [
    {
      id                                     = "tidy"
      enabled                                = true
      noncurrent_version_expiration          = { days = 30 }
      abort_incomplete_multipart_upload_days = 7
    }
  ]

  attach_deny_insecure_transport_policy = true
  attach_policy                         = true
  policy                                = local.storage_on ? data.aws_iam_policy_document.app_storage[0].json : null

  tags = var.tags
}
