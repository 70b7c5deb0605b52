# One environment of Pixelmill. staging and prod use this same file; they
# differ only in terraform.tfvars (and backend.hcl).

provider "aws" {
  region              = var.region
  allowed_account_ids = length(var.allowed_account_ids) > 0 ? var.allowed_account_ids : null

  default_tags {
    tags = {
      Project     = "pixelmill"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "pixelmill-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  image_bucket_name = coalesce(var.image_bucket_name, "${local.name}-images-${local.account_id}")

  cluster_admin_role_arns = [for role in var.cluster_admin_role_names : "arn:${local.partition}:iam::${local.account_id}:role/${role}"]

  # The shared repository, whether this environment created it or looked it up.
  ecr_repository_arn = var.ecr_create_repository ? module.ecr[0].repository_arn : data.aws_ecr_repository.shared[0].arn
  ecr_repository_url = var.ecr_create_repository ? module.ecr[0].repository_url : data.aws_ecr_repository.shared[0].repository_url
}

module "network" {
  source = "../../modules/network"

  name                    = local.name
  cidr_block              = var.vpc_cidr
  availability_zones      = var.availability_zones
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
}

module "eks" {
  source = "../../modules/eks"

  name                   = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.cluster_endpoint_public_access
  public_access_cidrs    = var.cluster_public_access_cidrs
  admin_role_arns        = local.cluster_admin_role_arns
  node_groups            = var.node_groups
  log_retention_days     = var.log_retention_days
}

# One repository serves every environment: a promotion from staging to prod
# moves an image digest, which only works if both pull from the same place.
# The environment with ecr_create_repository = true (staging, applied first)
# owns the repository, its key and its lifecycle; the others look it up.
module "ecr" {
  source = "../../modules/ecr"
  count  = var.ecr_create_repository ? 1 : 0

  name           = var.ecr_repository_name
  images_to_keep = var.ecr_images_to_keep
}

# module.ecr had no count while each environment made its own repository
# (pixelmill-<environment>). This carries the objects in state over to the
# new address, so the owner keeps its KMS key. The old repositories still go:
# staging's is replaced (its name changes), prod's is destroyed with its key;
# ECR refuses either while the old repository holds images.
moved {
  from = module.ecr
  to   = module.ecr[0]
}

data "aws_ecr_repository" "shared" {
  count = var.ecr_create_repository ? 0 : 1

  name = var.ecr_repository_name
}

module "storage" {
  source = "../../modules/storage"

  bucket_name             = local.image_bucket_name
  variant_expiration_days = var.variant_expiration_days
}

module "database" {
  source = "../../modules/database"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.database_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class            = var.db_instance_class
  allocated_storage_gib     = var.db_allocated_storage_gib
  max_allocated_storage_gib = var.db_max_allocated_storage_gib
  multi_az                  = var.db_multi_az
  deletion_protection       = var.db_deletion_protection
  backup_retention_days     = var.db_backup_retention_days
  log_retention_days        = var.log_retention_days
}

module "iam" {
  source = "../../modules/iam"

  name                        = local.name
  eks_oidc_provider_arn       = module.eks.oidc_provider_arn
  eks_oidc_issuer_url         = module.eks.oidc_issuer_url
  image_bucket_arn            = module.storage.bucket_arn
  image_bucket_prefix         = module.storage.object_prefix
  image_bucket_kms_key_arn    = module.storage.kms_key_arn
  database_secret_arn         = module.database.master_user_secret_arn
  database_secret_kms_key_arn = module.database.kms_key_arn
  github_repository           = var.github_repository
  ci_allowed_branches         = var.ci_allowed_branches
  ci_allowed_environments     = var.ci_allowed_environments
  github_oidc_provider_arn    = var.github_oidc_provider_arn
  ecr_repository_arn          = local.ecr_repository_arn
  vpc_id                      = module.network.vpc_id
}

module "waf" {
  source = "../../modules/waf"

  name                     = local.name
  rate_limit_per_5_minutes = var.waf_rate_limit_per_5_minutes
  log_retention_days       = var.log_retention_days
}

module "observability" {
  source = "../../modules/observability"

  name                      = local.name
  log_retention_days        = var.log_retention_days
  alarm_emails              = var.alarm_emails
  db_instance_identifier    = module.database.instance_identifier
  rds_connections_threshold = var.db_connections_alarm_threshold
  load_balancer_arn_suffix  = var.load_balancer_arn_suffix
}
