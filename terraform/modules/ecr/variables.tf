variable "name" {
  description = "Name of the repository, e.g. \"pixelmill\" (one repository serves every environment)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name)) && length(var.name) <= 200
    error_message = "name must be a valid ECR repository name (lower case, digits, '.', '_', '-', '/')."
  }
}

variable "images_to_keep" {
  description = "How many images (the newest) to keep; older ones expire. Keep enough to roll back across several releases."
  type        = number
  default     = 100

  validation {
    condition     = var.images_to_keep >= 10 && floor(var.images_to_keep) == var.images_to_keep
    error_message = "images_to_keep must be a whole number of at least 10, to leave room for rollbacks."
  }
}

variable "untagged_image_expiry_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_image_expiry_days >= 1 && floor(var.untagged_image_expiry_days) == var.untagged_image_expiry_days
    error_message = "untagged_image_expiry_days must be a whole number of days, at least 1."
  }
}
