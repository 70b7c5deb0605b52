variable "bucket_name" {
  description = "Name of the image bucket (globally unique). The access-log bucket is named \"<bucket_name>-access-logs\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,49}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-51 characters of lower-case letters, digits and hyphens (room is left for the -access-logs suffix)."
  }
}

variable "object_prefix" {
  description = "Key prefix the service stores under (the prefix of PIXELMILL_STORAGE=s3://bucket/prefix), empty or ending in \"/\". Lifecycle rules apply to <prefix>originals/ and <prefix>variants/."
  type        = string
  default     = ""

  validation {
    condition     = var.object_prefix == "" || (endswith(var.object_prefix, "/") && !startswith(var.object_prefix, "/"))
    error_message = "object_prefix must be empty or end with \"/\" (and not start with one)."
  }
}

variable "variant_expiration_days" {
  description = "Days after which a rendered variant expires; a later request renders it again."
  type        = number
  default     = 30

  validation {
    condition     = var.variant_expiration_days >= 1 && floor(var.variant_expiration_days) == var.variant_expiration_days
    error_message = "variant_expiration_days must be a whole number of days, at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a deleted or overwritten object version stays recoverable."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

variable "originals_transition_days" {
  description = "Days after which originals move to STANDARD_IA (they are read only to render new variants)."
  type        = number
  default     = 90

  validation {
    condition     = var.originals_transition_days >= 30 && floor(var.originals_transition_days) == var.originals_transition_days
    error_message = "originals_transition_days must be a whole number of at least 30 (the STANDARD_IA minimum)."
  }
}

variable "originals_expiration_days" {
  description = "Days after which originals expire, or null to keep them until deleted through the API. Never less than three years (1095 days)."
  type        = number
  default     = null

  validation {
    condition     = var.originals_expiration_days == null || try(var.originals_expiration_days >= 1095, false)
    error_message = "Originals are kept at least three years: originals_expiration_days must be null or at least 1095."
  }
}

variable "access_log_retention_days" {
  description = "Days to keep the bucket's server access logs."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 1 && floor(var.access_log_retention_days) == var.access_log_retention_days
    error_message = "access_log_retention_days must be a whole number of days, at least 1."
  }
}
