environment = "staging"
region      = "eu-west-1"

availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.20.0.0/16"
single_nat_gateway = true

kubernetes_version       = "1.33"
cluster_admin_role_names = ["pixelmill-admin"]
node_groups = {
  general = {
    instance_types = ["m7i.large"]
    min_size       = 2
    max_size       = 5
    desired_size   = 2
  }
}

# staging is applied first and owns the repository that prod pulls from too:
# its lifecycle keeps enough images for prod's releases and rollbacks.
ecr_create_repository = true
ecr_images_to_keep    = 200

variant_expiration_days = 14

db_instance_class              = "db.t4g.medium"
db_allocated_storage_gib       = 20
db_max_allocated_storage_gib   = 100
db_multi_az                    = false
db_deletion_protection         = false
db_backup_retention_days       = 7
db_connections_alarm_threshold = 300

github_repository       = "pixelmill/pixelmill"
ci_allowed_branches     = ["main"]
ci_allowed_environments = ["staging"]

waf_rate_limit_per_5_minutes = 2000
