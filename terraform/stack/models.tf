# spec.app.models: the task role may invoke exactly the named Bedrock models in the app's region,
# so the app needs no model API key. A foundation model is one ARN; a system-defined inference
# profile (us.…, eu.…) is its own ARN in this account and region, plus the foundation model in the
# regions the profile routes to, allowed only through that profile (bedrock:InferenceProfileArn).
data "aws_partition" "current" {}

locals {
  bedrock_actions          = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
  bedrock_profile_prefixes = ["us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"]
  bedrock = [for id in var.bedrock_models : {
    id      = id
    profile = contains(local.bedrock_profile_prefixes, split(".", id)[0])
    model   = contains(local.bedrock_profile_prefixes, split(".", id)[0]) ? join(".", slice(split(".", id), 1, length(split(".", id)))) : id
  }]
  bedrock_arn_base        = "arn:${data.aws_partition.current.partition}:bedrock"
  bedrock_foundation_arns = [for m in local.bedrock : "${local.bedrock_arn_base}:${var.aws_region}::foundation-model/${m.id}" if !m.profile]
  bedrock_statements = concat(
    [for arns in [local.bedrock_foundation_arns] : {
      sid       = "InvokeFoundationModels"
      actions   = local.bedrock_actions
      resources = arns
    } if length(arns) > 0],
    [for index, m in local.bedrock : {
      sid       = "InvokeProfile${index}"
      actions   = local.bedrock_actions
      resources = ["${local.bedrock_arn_base}:${var.aws_region}:${data.aws_caller_identity.current.account_id}:inference-profile/${m.id}"]
    } if m.profile],
    [for index, m in local.bedrock : {
      sid       = "InvokeThroughProfile${index}"
      actions   = local.bedrock_actions
      resources = ["${local.bedrock_arn_base}:*::foundation-model/${m.model}"]
      condition = [{
        test     = "StringEquals"
        variable = "bedrock:InferenceProfileArn"
        values   = ["${local.bedrock_arn_base}:${var.aws_region}:${data.aws_caller_identity.current.account_id}:inference-profile/${m.id}"]
      }]
    } if m.profile],
  )
}
