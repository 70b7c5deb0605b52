variable "name" {
  description = "Prefix of the role names, e.g. \"pixelmill-prod\" gives pixelmill-prod-service, pixelmill-prod-ci, pixelmill-prod-lb-controller and pixelmill-prod-external-secrets."
  type        = string

  validation {
    # 64 characters at most per role name, the longest suffix being
    # "-external-secrets" (17).
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9+=,.@_-]{1,46}$", var.name))
    error_message = "name must be 2-47 characters valid in an IAM role name."
  }
}

# --- The cluster's OIDC provider (all IRSA roles) and the service role ----------------

variable "eks_oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.eks_oidc_provider_arn))
    error_message = "eks_oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "eks_oidc_issuer_url" {
  description = "The cluster's OIDC issuer URL (https://oidc.eks.<region>.amazonaws.com/id/<id>)."
  type        = string

  validation {
    condition     = startswith(var.eks_oidc_issuer_url, "https://")
    error_message = "eks_oidc_issuer_url must be an https:// URL."
  }
}

variable "service_account_namespace" {
  description = "Namespace of the service's Kubernetes service account."
  type        = string
  default     = "pixelmill"
}

variable "service_account_name" {
  description = "Name of the service's Kubernetes service account."
  type        = string
  default     = "pixelmill"
}

variable "image_bucket_arn" {
  description = "ARN of the image bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", var.image_bucket_arn))
    error_message = "image_bucket_arn must be an S3 bucket ARN (no key part)."
  }
}

variable "image_bucket_prefix" {
  description = "Key prefix the service may use in the bucket: empty for the whole bucket, or ending in \"/\"."
  type        = string
  default     = ""

  validation {
    condition     = var.image_bucket_prefix == "" || (endswith(var.image_bucket_prefix, "/") && !startswith(var.image_bucket_prefix, "/") && !strcontains(var.image_bucket_prefix, "*"))
    error_message = "image_bucket_prefix must be empty or end with \"/\", without a leading \"/\" or wildcards."
  }
}

variable "image_bucket_kms_key_arn" {
  description = "ARN of the KMS key encrypting the image bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.image_bucket_kms_key_arn))
    error_message = "image_bucket_kms_key_arn must be a KMS key ARN."
  }
}

# --- AWS Load Balancer Controller role ---------------------------------------------

variable "vpc_id" {
  description = "VPC of the cluster: the load balancer controller may create security groups and change ingress rules only in it."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID (vpc-...)."
  }
}

variable "lb_controller_namespace" {
  description = "Namespace the AWS Load Balancer Controller is installed into."
  type        = string
  default     = "kube-system"
}

variable "lb_controller_service_account_name" {
  description = "Name of the AWS Load Balancer Controller's Kubernetes service account (the only one that may assume its role)."
  type        = string
  default     = "aws-load-balancer-controller"
}

# --- External Secrets Operator role ------------------------------------------------

variable "external_secrets_namespace" {
  description = "Namespace the External Secrets Operator is installed into."
  type        = string
  default     = "external-secrets"
}

variable "external_secrets_service_account_name" {
  description = "Name of the External Secrets Operator's Kubernetes service account (the only one that may assume its role)."
  type        = string
  default     = "external-secrets"
}

variable "database_secret_arn" {
  description = "Secrets Manager secret with the database credentials; the External Secrets Operator may read it (and no other secret)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.database_secret_arn))
    error_message = "database_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "database_secret_kms_key_arn" {
  description = "KMS key encrypting database_secret_arn if it is a customer managed key, else null; the External Secrets Operator may decrypt with it only through Secrets Manager."
  type        = string
  default     = null

  validation {
    condition     = var.database_secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.database_secret_kms_key_arn))
    error_message = "database_secret_kms_key_arn must be a KMS key ARN or null."
  }
}

# --- CI role --------------------------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository whose workflows may assume the CI role, as \"owner/name\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be \"owner/name\"."
  }
}

variable "ci_allowed_branches" {
  description = "Branches whose workflow runs may assume the CI role, e.g. [\"main\"]."
  type        = list(string)
  default     = ["main"]

  validation {
    condition     = alltrue([for branch in var.ci_allowed_branches : length(branch) > 0 && !strcontains(branch, "*") && !strcontains(branch, "?")])
    error_message = "ci_allowed_branches must be exact branch names, without wildcards."
  }
}

variable "ci_allowed_environments" {
  description = "GitHub deployment environments whose jobs may assume the CI role, e.g. [\"staging\", \"production\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for environment in var.ci_allowed_environments : length(environment) > 0 && !strcontains(environment, "*") && !strcontains(environment, "?")])
    error_message = "ci_allowed_environments must be exact environment names, without wildcards."
  }

  validation {
    condition     = length(var.ci_allowed_branches) + length(var.ci_allowed_environments) > 0
    error_message = "At least one branch or environment must be allowed, or no workflow can use the CI role."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing GitHub Actions OIDC provider in the account, or null to create it here (an account holds one per issuer)."
  type        = string
  default     = null

  validation {
    condition     = var.github_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.github_oidc_provider_arn))
    error_message = "github_oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository CI pushes to."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", var.ecr_repository_arn))
    error_message = "ecr_repository_arn must be an ECR repository ARN."
  }
}
