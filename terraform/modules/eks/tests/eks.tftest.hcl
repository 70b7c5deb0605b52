mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_resource "aws_eks_cluster" {
    defaults = {
      arn                   = "arn:aws:eks:eu-west-1:123456789012:cluster/pixelmill-test"
      endpoint              = "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
      identity              = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" }] }]
      certificate_authority = [{ data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t" }]
      vpc_config = {
        cluster_security_group_id = "sg-0123456789abcdef0"
      }
    }
  }

  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/pixelmill-test-role"
    }
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/eks/pixelmill-test/cluster"
    }
  }

  mock_resource "aws_launch_template" {
    defaults = {
      id             = "lt-0123456789abcdef0"
      latest_version = 1
    }
  }
}

variables {
  name       = "pixelmill-test"
  subnet_ids = ["subnet-a", "subnet-b", "subnet-c"]
  node_groups = {
    general = {
      instance_types = ["m7i.large"]
      min_size       = 2
      max_size       = 6
      desired_size   = 3
    }
  }
}

run "api_endpoint_is_private_by_default" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access && !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "The API endpoint must be private unless asked otherwise."
  }

  assert {
    condition     = output.endpoint_public_access == false
    error_message = "The endpoint_public_access output must report the private endpoint."
  }
}

run "public_endpoint_is_limited_to_given_cidrs" {
  command = plan

  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access && toset(aws_eks_cluster.this.vpc_config[0].public_access_cidrs) == toset(["203.0.113.0/24"])
    error_message = "A public endpoint must be restricted to exactly the given CIDRs."
  }
}

run "public_endpoint_open_to_the_internet_is_refused" {
  command = plan

  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["0.0.0.0/0"]
  }

  expect_failures = [var.public_access_cidrs]
}

run "public_endpoint_without_cidrs_is_refused" {
  command = plan

  variables {
    endpoint_public_access = true
  }

  expect_failures = [var.public_access_cidrs]
}

run "secrets_and_logs_are_encrypted" {
  command = plan

  assert {
    condition     = one(aws_eks_cluster.this.encryption_config).resources == toset(["secrets"]) && one(one(aws_eks_cluster.this.encryption_config).provider).key_arn == aws_kms_key.this.arn
    error_message = "Kubernetes secrets must be encrypted with the module's KMS key."
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The cluster key must rotate."
  }

  assert {
    condition     = toset(aws_eks_cluster.this.enabled_cluster_log_types) == toset(["api", "audit", "authenticator", "controllerManager", "scheduler"])
    error_message = "All control-plane log types must be enabled."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/aws/eks/pixelmill-test/cluster" && aws_cloudwatch_log_group.this.retention_in_days == 365 && aws_cloudwatch_log_group.this.kms_key_id == aws_kms_key.this.arn
    error_message = "Control-plane logs must go to the cluster's encrypted log group with the retention set."
  }
}

run "access_is_by_access_entries_for_admin_roles" {
  command = plan

  variables {
    admin_role_arns = ["arn:aws:iam::123456789012:role/pixelmill-admin"]
  }

  assert {
    condition     = aws_eks_cluster.this.access_config[0].authentication_mode == "API" && !aws_eks_cluster.this.access_config[0].bootstrap_cluster_creator_admin_permissions
    error_message = "Authentication must use access entries only, with no implicit admin for the creator."
  }

  assert {
    condition     = keys(aws_eks_access_entry.this) == ["arn:aws:iam::123456789012:role/pixelmill-admin"]
    error_message = "Exactly the admin role must get an access entry."
  }

  assert {
    condition = alltrue([for association in aws_eks_access_policy_association.this :
      endswith(association.policy_arn, ":cluster-access-policy/AmazonEKSClusterAdminPolicy") && association.access_scope[0].type == "cluster"
    ])
    error_message = "The admin role must be associated with the cluster-admin policy at cluster scope."
  }
}

run "admin_roles_must_be_role_arns" {
  command = plan

  variables {
    admin_role_arns = ["arn:aws:iam::123456789012:user/somebody"]
  }

  expect_failures = [var.admin_role_arns]
}

run "node_groups_span_all_zones_with_imdsv2_and_encrypted_disks" {
  command = plan

  assert {
    condition     = aws_eks_node_group.this["general"].subnet_ids == toset(["subnet-a", "subnet-b", "subnet-c"])
    error_message = "A node group must span all the given subnets (all zones)."
  }

  assert {
    condition = (
      aws_eks_node_group.this["general"].scaling_config[0].min_size == 2 &&
      aws_eks_node_group.this["general"].scaling_config[0].max_size == 6 &&
      aws_eks_node_group.this["general"].scaling_config[0].desired_size == 3
    )
    error_message = "Node group sizes must come from node_groups."
  }

  assert {
    condition = (
      aws_launch_template.this["general"].metadata_options[0].http_tokens == "required" &&
      aws_launch_template.this["general"].metadata_options[0].http_put_response_hop_limit == 1
    )
    error_message = "Nodes must require IMDSv2 with a hop limit of 1, so pods cannot use the node's credentials."
  }

  assert {
    condition     = aws_launch_template.this["general"].block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "Node root volumes must be encrypted."
  }

  assert {
    condition     = keys(aws_iam_role_policy_attachment.node) == ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy"]
    error_message = "The node role must only join the cluster and pull images (no CNI or broader policies)."
  }
}

run "node_group_sizes_must_be_ordered" {
  command = plan

  variables {
    node_groups = {
      general = {
        instance_types = ["m7i.large"]
        min_size       = 3
        max_size       = 6
        desired_size   = 2
      }
    }
  }

  expect_failures = [var.node_groups]
}

run "core_addons_are_managed_with_irsa_where_needed" {
  command = plan

  assert {
    condition     = setunion(keys(aws_eks_addon.before_nodes), keys(aws_eks_addon.after_nodes)) == toset(["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"])
    error_message = "The five core add-ons must be installed."
  }

  assert {
    condition     = contains(keys(aws_eks_addon.after_nodes), "coredns") && contains(keys(aws_eks_addon.before_nodes), "vpc-cni")
    error_message = "vpc-cni must come before the nodes and coredns after them."
  }

  assert {
    condition = (
      aws_eks_addon.before_nodes["vpc-cni"].service_account_role_arn == aws_iam_role.addon["vpc-cni"].arn &&
      aws_eks_addon.after_nodes["aws-ebs-csi-driver"].service_account_role_arn == aws_iam_role.addon["aws-ebs-csi-driver"].arn
    )
    error_message = "vpc-cni and the EBS CSI driver must run with their own IRSA roles."
  }

  assert {
    condition = anytrue([
      for c in data.aws_iam_policy_document.addon_trust["vpc-cni"].statement[0].condition :
      c.variable == "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:sub" && c.values == tolist(["system:serviceaccount:kube-system:aws-node"])
    ])
    error_message = "The vpc-cni role must be assumable only by the aws-node service account of this cluster."
  }

  assert {
    condition     = aws_iam_openid_connect_provider.this.url == "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" && aws_iam_openid_connect_provider.this.client_id_list == toset(["sts.amazonaws.com"])
    error_message = "The IRSA OIDC provider must trust the cluster's issuer for STS."
  }
}
