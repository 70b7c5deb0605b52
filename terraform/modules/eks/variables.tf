variable "name" {
  description = "Name of the EKS cluster, also the prefix of its roles, key alias and log group."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name must be 2-24 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane, e.g. \"1.33\". Node groups follow the control plane."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like \"1.33\"."
  }
}

variable "subnet_ids" {
  description = "Private subnets, one per zone, for the control plane's network interfaces and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two zones; pass the three private subnets."
  }
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint on the internet as well as inside the VPC. Off by default; when on, only public_access_cidrs may reach it."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "IPv4 ranges allowed to reach the public API endpoint when endpoint_public_access is true. Must not be empty then, and never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0)) && !endswith(cidr, "/0")])
    error_message = "public_access_cidrs must be valid IPv4 CIDRs, none of them open to the whole internet (/0)."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.public_access_cidrs) > 0
    error_message = "A public endpoint needs at least one CIDR in public_access_cidrs."
  }
}

variable "admin_role_arns" {
  description = "IAM roles given cluster-admin through EKS access entries (the roles that run the bootstrap and operate the cluster)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "admin_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "node_groups" {
  description = "Managed node groups by name. Each spans all subnets (so all zones). desired_size is only the initial size: the autoscaler moves it between min_size and max_size."
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

  validation {
    condition     = length(var.node_groups) > 0
    error_message = "At least one node group is needed to run workloads."
  }

  validation {
    condition     = alltrue([for group in values(var.node_groups) : group.min_size <= group.desired_size && group.desired_size <= group.max_size && group.max_size > 0])
    error_message = "Each node group needs min_size <= desired_size <= max_size, and max_size > 0."
  }

  validation {
    condition     = alltrue([for group in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], group.capacity_type) && length(group.instance_types) > 0])
    error_message = "capacity_type must be ON_DEMAND or SPOT, and instance_types must not be empty."
  }
}

variable "addon_versions" {
  description = "Pinned versions of the managed add-ons by name (vpc-cni, kube-proxy, eks-pod-identity-agent, coredns, aws-ebs-csi-driver). Unlisted add-ons get EKS's default version for the cluster."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for addon in keys(var.addon_versions) : contains(["vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver"], addon)])
    error_message = "addon_versions may only name the add-ons this module installs."
  }
}

variable "log_retention_days" {
  description = "Days to keep control-plane logs in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, ...)."
  }
}
