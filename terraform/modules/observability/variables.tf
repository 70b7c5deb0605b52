variable "name" {
  description = "Environment name used in alarm, topic and log group names, e.g. \"pixelmill-prod\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "name must be 2-41 characters of lower-case letters, digits and hyphens."
  }
}

variable "log_groups" {
  description = "Log groups to create under /pixelmill/<name>/ (for example for the application's container logs)."
  type        = set(string)
  default     = ["application"]

  validation {
    condition     = alltrue([for group in var.log_groups : can(regex("^[a-zA-Z0-9_.-]+$", group))])
    error_message = "log_groups must be simple names (letters, digits, '_', '.', '-')."
  }
}

variable "log_retention_days" {
  description = "Days to keep the log groups' events."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, ...)."
  }
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "alarm_emails must be e-mail addresses."
  }
}

variable "db_instance_identifier" {
  description = "Identifier of the RDS instance to watch."
  type        = string
}

variable "rds_cpu_threshold_percent" {
  description = "Average database CPU (percent over 15 minutes) above which to alarm."
  type        = number
  default     = 80

  validation {
    condition     = var.rds_cpu_threshold_percent > 0 && var.rds_cpu_threshold_percent <= 100
    error_message = "rds_cpu_threshold_percent must be in (0, 100]."
  }
}

variable "rds_free_storage_threshold_gib" {
  description = "Free database storage (GiB) below which to alarm."
  type        = number
  default     = 10

  validation {
    condition     = var.rds_free_storage_threshold_gib > 0
    error_message = "rds_free_storage_threshold_gib must be positive."
  }
}

variable "rds_connections_threshold" {
  description = "Number of database connections above which to alarm (keep it under the instance's max_connections)."
  type        = number
  default     = 200

  validation {
    condition     = var.rds_connections_threshold > 0
    error_message = "rds_connections_threshold must be positive."
  }
}

variable "load_balancer_arn_suffix" {
  description = "ARN suffix (app/<name>/<id>) of the ALB the in-cluster controller created, or null while it does not exist yet; load balancer alarms exist only when set."
  type        = string
  default     = null

  validation {
    condition     = var.load_balancer_arn_suffix == null || can(regex("^app/[A-Za-z0-9-]+/[0-9a-f]+$", var.load_balancer_arn_suffix))
    error_message = "load_balancer_arn_suffix must look like app/<name>/<id>."
  }
}

variable "lb_5xx_threshold" {
  description = "5xx responses in 5 minutes (from the load balancer itself, or from the targets) above which to alarm."
  type        = number
  default     = 25

  validation {
    condition     = var.lb_5xx_threshold >= 0
    error_message = "lb_5xx_threshold must not be negative."
  }
}

variable "lb_target_response_time_p99_seconds" {
  description = "p99 target response time (seconds, over 5 minutes) above which to alarm."
  type        = number
  default     = 1

  validation {
    condition     = var.lb_target_response_time_p99_seconds > 0
    error_message = "lb_target_response_time_p99_seconds must be positive."
  }
}
