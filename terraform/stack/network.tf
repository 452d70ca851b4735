# VPC: public subnets for the ALB and NAT, private subnets for the tasks, over az_count AZs.
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  # 4 new bits: 16 equal subnets of the VPC; public take 0..5, private 8..13 (az_count <= 6).
  public_subnets  = [for index in range(var.az_count) : cidrsubnet(var.vpc_cidr, 4, index)]
  private_subnets = [for index in range(var.az_count) : cidrsubnet(var.vpc_cidr, 4, index + 8)]

  enable_nat_gateway      = true
  single_nat_gateway      = var.single_nat_gateway
  one_nat_gateway_per_az  = !var.single_nat_gateway
  enable_dns_hostnames    = true
  enable_dns_support      = true
  map_public_ip_on_launch = false

  tags = var.tags
}
