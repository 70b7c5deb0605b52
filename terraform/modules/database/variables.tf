variable "name" {
  description = "Identifier of the DB instance, also the prefix of its key alias, groups and role."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")
    error_message = "name must be 3-42 characters of lower-case letters, digits and single hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the database's security group belongs to."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (no route out of the VPC), one per zone."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432: the cluster's security group (which the managed nodes, and so the pods, carry). Nothing else can reach the database."
  type        = list(string)

  validation {
    condition     = length(var.client_security_group_ids) > 0
    error_message = "At least one client security group is needed, or nothing can use the database."
  }
}

variable "engine_version" {
  description = "PostgreSQL version: \"16\" follows the newest 16.x minor; a full version such as \"16.9\" pins one."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 16 (\"16\" or \"16.<minor>\"), matching the parameter group family."
  }
}

variable "instance_class" {
  description = "DB instance class, e.g. \"db.t4g.medium\" or \"db.r7g.large\"."
  type        = string

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS class (db.*)."
  }
}

variable "database_name" {
  description = "Name of the database created for the service."
  type        = string
  default     = "pixelmill"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lower-case PostgreSQL identifier."
  }
}

variable "master_username" {
  description = "Master user name. Its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "pixelmill"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must be a lower-case identifier of at most 16 characters and not a reserved name."
  }
}

variable "allocated_storage_gib" {
  description = "Initial storage in GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.allocated_storage_gib >= 20
    error_message = "allocated_storage_gib must be at least 20 (the gp3 minimum)."
  }
}

variable "max_allocated_storage_gib" {
  description = "Ceiling in GiB up to which RDS grows the storage by itself."
  type        = number
  default     = 500

  validation {
    condition     = var.max_allocated_storage_gib >= var.allocated_storage_gib
    error_message = "max_allocated_storage_gib must not be below allocated_storage_gib."
  }
}

variable "multi_az" {
  description = "Keep a synchronous standby in another zone (production)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off (production)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window), 1 to 35."
  type        = number
  default     = 35

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35 && floor(var.backup_retention_days) == var.backup_retention_days
    error_message = "backup_retention_days must be a whole number from 1 to 35 (0 would turn backups off)."
  }
}

variable "backup_window" {
  description = "Daily backup window, UTC (hh24:mi-hh24:mi)."
  type        = string
  default     = "02:00-03:00"
}

variable "maintenance_window" {
  description = "Weekly maintenance window, UTC (ddd:hh24:mi-ddd:hh24:mi); must not overlap the backup window."
  type        = string
  default     = "sun:03:30-sun:04:30"
}

variable "apply_immediately" {
  description = "Apply changes at once instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "performance_insights_retention_days" {
  description = "Days of Performance Insights history: 7 (free) or a multiple of 31 up to 731."
  type        = number
  default     = 7

  validation {
    condition     = var.performance_insights_retention_days == 7 || (var.performance_insights_retention_days % 31 == 0 && var.performance_insights_retention_days <= 731) || var.performance_insights_retention_days == 731
    error_message = "performance_insights_retention_days must be 7, a multiple of 31, or 731."
  }
}

variable "monitoring_interval_seconds" {
  description = "Enhanced monitoring interval in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.monitoring_interval_seconds)
    error_message = "monitoring_interval_seconds must be one of 1, 5, 10, 15, 30, 60 (enhanced monitoring stays on)."
  }
}

variable "log_min_duration_statement_ms" {
  description = "Statements slower than this many milliseconds are logged."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Days to keep the exported PostgreSQL logs in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, ...)."
  }
}
