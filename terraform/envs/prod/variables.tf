variable "environment" {
  description = "Environment name: staging or prod. Resource names are pixelmill-<environment>."
  type        = string

  validation {
    condition     = contains(["staging", "prod"], var.environment)
    error_message = "environment must be staging or prod."
  }
}

variable "region" {
  description = "AWS region of the environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "allowed_account_ids" {
  description = "AWS accounts this environment may be applied to; the provider refuses any other. Empty allows any."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.allowed_account_ids : can(regex("^[0-9]{12}$", id))])
    error_message = "allowed_account_ids must be 12-digit account IDs."
  }
}

variable "availability_zones" {
  description = "The three availability zones of the region to use."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC (/16 to /20)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (staging) instead of one per zone (prod)."
  type        = bool
}

variable "kubernetes_version" {
  description = "Kubernetes version of the EKS cluster."
  type        = string
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API publicly too (restricted to cluster_public_access_cidrs)."
  type        = bool
  default     = false
}

variable "cluster_public_access_cidrs" {
  description = "CIDRs allowed to reach a public Kubernetes API endpoint."
  type        = list(string)
  default     = []
}

variable "cluster_admin_role_names" {
  description = "Names of IAM roles in the account that get cluster-admin (they run `cargo xtask bootstrap` and operate the cluster)."
  type        = list(string)

  validation {
    condition     = alltrue([for role in var.cluster_admin_role_names : can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", role))])
    error_message = "cluster_admin_role_names must be IAM role names (no paths or ARNs)."
  }
}

variable "node_groups" {
  description = "Managed node groups of the cluster, sized for the environment (see the eks module)."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    capacity_type  = optional(string, "ON_DEMAND")
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    disk_size_gib  = optional(number, 50)
    labels         = optional(map(string), {})
  }))
}

variable "ecr_repository_name" {
  description = "Name of the ECR repository shared by all environments (<account>.dkr.ecr.<region>.amazonaws.com/<name>)."
  type        = string
  default     = "pixelmill"

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.ecr_repository_name)) && length(var.ecr_repository_name) <= 200
    error_message = "ecr_repository_name must be a valid ECR repository name (lower case, digits, '.', '_', '-', '/')."
  }
}

variable "ecr_create_repository" {
  description = "Whether this environment creates and owns the shared ECR repository (true in exactly one environment, the one applied first); the others look it up by name."
  type        = bool
}

variable "ecr_images_to_keep" {
  description = "Newest images kept in the shared ECR repository. Applies only to the environment that creates it (ecr_create_repository), and must cover the images every environment may still run or roll back to."
  type        = number
  default     = 100
}

variable "image_bucket_name" {
  description = "Name of the image bucket, or null for pixelmill-<environment>-images-<account id>."
  type        = string
  default     = null
}

variable "variant_expiration_days" {
  description = "Days after which rendered variants expire from the bucket."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class of the database."
  type        = string
}

variable "db_allocated_storage_gib" {
  description = "Initial database storage in GiB."
  type        = number
}

variable "db_max_allocated_storage_gib" {
  description = "Ceiling of database storage autoscaling in GiB."
  type        = number
}

variable "db_multi_az" {
  description = "Run the database with a standby in a second zone."
  type        = bool
}

variable "db_deletion_protection" {
  description = "Protect the database from deletion."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups (1 to 35)."
  type        = number
}

variable "db_connections_alarm_threshold" {
  description = "Database connections above which to alarm."
  type        = number
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may push images."
  type        = string
}

variable "ci_allowed_branches" {
  description = "Branches of github_repository whose workflows may assume the CI role."
  type        = list(string)
}

variable "ci_allowed_environments" {
  description = "GitHub deployment environments of github_repository whose jobs may assume the CI role."
  type        = list(string)
}

variable "github_oidc_provider_arn" {
  description = "Existing GitHub Actions OIDC provider of the account, or null to create it (set it when another environment shares the account)."
  type        = string
  default     = null
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests per client address per 5 minutes before WAF blocks it."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the environment's CloudWatch log groups (flow logs, control plane, database, WAF, application)."
  type        = number
  default     = 365
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = set(string)
  default     = []
}

variable "load_balancer_arn_suffix" {
  description = "ARN suffix (app/<name>/<id>) of the ALB created by the in-cluster controller; null until it exists (its alarms are created once set)."
  type        = string
  default     = null
}
