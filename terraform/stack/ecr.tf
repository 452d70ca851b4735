# The app image repository: scanned on push, old images expired, deletable on teardown.
module "ecr" {
  source  = "terraform-aws-modules/ecr/aws"
  version = "3.2.0"

  repository_name                 = var.name
  repository_image_scan_on_push   = true
  repository_image_tag_mutability = "MUTABLE" # CI moves :latest
  repository_force_delete         = true
  create_repository_policy        = false # access is granted by the deploy role's own policy
  # ecr 3.2.0 attaches a repository policy unless told not to, and with no policy to attach the
  # plan fails ("Missing required argument"): main.tf, aws_ecr_repository_policy.this.
  attach_repository_policy = false

  repository_lifecycle_policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.ecr_keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.ecr_keep_images
      }
      action = { type = "expire" }
    }]
  })

  tags = var.tags
}
