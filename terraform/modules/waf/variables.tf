variable "name" {
  description = "Name of the web ACL, also used for its log group, key alias and metric names."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,60}$", var.name))
    error_message = "name must be 1-60 letters, digits or hyphens."
  }
}

variable "rate_limit_per_5_minutes" {
  description = "Requests one client address may make in a 5-minute window before it is blocked."
  type        = number
  default     = 2000

  validation {
    condition     = var.rate_limit_per_5_minutes >= 100 && var.rate_limit_per_5_minutes <= 2000000000
    error_message = "rate_limit_per_5_minutes must be between 100 and 2,000,000,000 (the WAF limits)."
  }
}

variable "common_rule_set_count_only" {
  description = "Rules of AWSManagedRulesCommonRuleSet that only count instead of block. SizeRestrictions_BODY is here because image uploads exceed its 8 KB body limit."
  type        = set(string)
  default     = ["SizeRestrictions_BODY"]
}

variable "log_retention_days" {
  description = "Days to keep WAF logs in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, ...)."
  }
}
