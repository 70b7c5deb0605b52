environment = "prod"
region      = "eu-west-1"

availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.30.0.0/16"
single_nat_gateway = false

kubernetes_version       = "1.33"
cluster_admin_role_names = ["pixelmill-admin"]
node_groups = {
  general = {
    instance_types = ["m7i.xlarge"]
    min_size       = 3
    max_size       = 12
    desired_size   = 3
  }
}

# The repository is staging's (a release is promoted by digest); prod only
# looks it up.
ecr_create_repository = false

variant_expiration_days = 90

db_instance_class              = "db.r7g.large"
db_allocated_storage_gib       = 100
db_max_allocated_storage_gib   = 1000
db_multi_az                    = true
db_deletion_protection         = true
db_backup_retention_days       = 35
db_connections_alarm_threshold = 800

github_repository       = "pixelmill/pixelmill"
ci_allowed_branches     = []
ci_allowed_environments = ["production"]

waf_rate_limit_per_5_minutes = 5000
