data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name

  eks_issuer_host = trimprefix(var.eks_oidc_issuer_url, "https://")

  image_objects_arn = "${var.image_bucket_arn}/${var.image_bucket_prefix}*"

  github_issuer_host        = "token.actions.githubusercontent.com"
  github_oidc_provider_arn  = var.github_oidc_provider_arn == null ? aws_iam_openid_connect_provider.this[0].arn : var.github_oidc_provider_arn
  github_branch_subjects    = [for branch in var.ci_allowed_branches : "repo:${var.github_repository}:ref:refs/heads/${branch}"]
  github_env_subjects       = [for environment in var.ci_allowed_environments : "repo:${var.github_repository}:environment:${environment}"]
  github_subjects           = concat(local.github_branch_subjects, local.github_env_subjects)
  database_secret_key_given = var.database_secret_kms_key_arn != null

  # The cluster's OIDC provider lives in the account of the roles; its ARN
  # gives the account without an STS call.
  account_id     = split(":", var.eks_oidc_provider_arn)[4]
  ec2_arn_prefix = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  elb_arn_prefix = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}"
  vpc_arn        = "${local.ec2_arn_prefix}:vpc/${var.vpc_id}"

  # The load balancer controller tags everything it creates with this key
  # (value: the cluster name); its mutating calls are scoped by it.
  lb_controller_tag = "elbv2.k8s.aws/cluster"

  alb_arns            = "${local.elb_arn_prefix}:loadbalancer/app/*/*"
  target_group_arns   = "${local.elb_arn_prefix}:targetgroup/*/*"
  alb_listener_arns   = "${local.elb_arn_prefix}:listener/app/*/*/*"
  alb_rule_arns       = "${local.elb_arn_prefix}:listener-rule/app/*/*/*/*"
  security_group_arns = "${local.ec2_arn_prefix}:security-group/*"
}

# --- IRSA roles -------------------------------------------------------------------
#
# The service's and the two controllers' roles share their shape: each is
# assumable only by one Kubernetes service account, through the cluster's
# OIDC provider, for audience sts.amazonaws.com. Their permissions are in the
# sections below.

locals {
  irsa = {
    service = {
      suffix          = "service"
      trust_sid       = "PixelmillServiceAccount"
      namespace       = var.service_account_namespace
      service_account = var.service_account_name
      description     = "Pixelmill service account ${var.service_account_namespace}/${var.service_account_name} (IRSA)"
    }
    lb_controller = {
      suffix          = "lb-controller"
      trust_sid       = "LoadBalancerControllerServiceAccount"
      namespace       = var.lb_controller_namespace
      service_account = var.lb_controller_service_account_name
      description     = "AWS Load Balancer Controller ${var.lb_controller_namespace}/${var.lb_controller_service_account_name} (IRSA)"
    }
    external_secrets = {
      suffix          = "external-secrets"
      trust_sid       = "ExternalSecretsServiceAccount"
      namespace       = var.external_secrets_namespace
      service_account = var.external_secrets_service_account_name
      description     = "External Secrets Operator ${var.external_secrets_namespace}/${var.external_secrets_service_account_name} (IRSA): reads the database secret"
    }
  }
}

data "aws_iam_policy_document" "irsa_trust" {
  for_each = local.irsa

  statement {
    sid     = each.value.trust_sid
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.eks_issuer_host}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.value.service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.eks_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa

  name                 = "${var.name}-${each.value.suffix}"
  description          = each.value.description
  assume_role_policy   = data.aws_iam_policy_document.irsa_trust[each.key].json
  max_session_duration = 3600
}

# The roles had one resource each; these keep them in state at their new
# addresses.
moved {
  from = aws_iam_role.service
  to   = aws_iam_role.irsa["service"]
}

moved {
  from = aws_iam_role.lb_controller
  to   = aws_iam_role.irsa["lb_controller"]
}

moved {
  from = aws_iam_role.external_secrets
  to   = aws_iam_role.irsa["external_secrets"]
}

# --- The service's role (IRSA) ----------------------------------------------------

data "aws_iam_policy_document" "service" {
  statement {
    sid       = "ListImagePrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.image_bucket_arn]

    dynamic "condition" {
      for_each = var.image_bucket_prefix == "" ? [] : [var.image_bucket_prefix]

      content {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${condition.value}*"]
      }
    }
  }

  statement {
    sid    = "ReadWriteImageObjects"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = [local.image_objects_arn]
  }

  statement {
    sid    = "UseImageBucketKey"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    resources = [var.image_bucket_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "service" {
  name   = "image-store"
  role   = aws_iam_role.irsa["service"].id
  policy = data.aws_iam_policy_document.service.json
}

# --- AWS Load Balancer Controller (IRSA) ------------------------------------------
#
# The controller turns the chart's Ingress (and the Argo Rollouts ALB traffic
# routing) into an ALB with its listeners, rules, target groups and security
# groups, and associates the WAF web ACL named by the ingress. Reads are
# unrestricted (Describe calls have no resource-level permissions). Load
# balancers, target groups and security groups may only be created with the
# controller's cluster tag, and changed or deleted only while they carry it;
# listeners and rules are limited to ALBs of the account and region, and
# security group rules to the cluster's VPC.

data "aws_iam_policy_document" "lb_controller" {
  # EC2 and ELB Describe calls have no resource-level permissions.
  statement {
    sid    = "DescribeNetworkAndLoadBalancers"
    effect = "Allow"
    actions = [
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeAddresses",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInstances",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeRouteTables",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeTags",
      "ec2:DescribeVpcPeeringConnections",
      "ec2:DescribeVpcs",
      "elasticloadbalancing:DescribeCapacityReservation",
      "elasticloadbalancing:DescribeListenerAttributes",
      "elasticloadbalancing:DescribeListenerCertificates",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeLoadBalancerAttributes",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeSSLPolicies",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:DescribeTrustStores",
    ]
    resources = ["*"]
  }

  # Certificate discovery for HTTPS listeners (by host name), and whether the
  # account subscribes to Shield Advanced (the controller skips Shield
  # protection when it does not).
  statement {
    sid    = "DiscoverCertificatesAndShield"
    effect = "Allow"
    actions = [
      "acm:ListCertificates",
      "shield:GetSubscriptionState",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "DescribeCertificates"
    effect    = "Allow"
    actions   = ["acm:DescribeCertificate"]
    resources = ["arn:${local.partition}:acm:${local.region}:${local.account_id}:certificate/*"]
  }

  statement {
    sid       = "ListVpcSecurityGroups"
    effect    = "Allow"
    actions   = ["ec2:GetSecurityGroupsForVpc"]
    resources = [local.vpc_arn]
  }

  # The ELB service-linked role, if the account has none yet (first ALB).
  statement {
    sid       = "CreateElbServiceLinkedRole"
    effect    = "Allow"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticloadbalancing.amazonaws.com"]
    }
  }

  # --- Security groups: created in the cluster's VPC, changed only if owned --

  statement {
    sid       = "CreateSecurityGroupsInTheVpc"
    effect    = "Allow"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = [local.vpc_arn, local.security_group_arns]
  }

  statement {
    sid       = "TagSecurityGroupsOnCreate"
    effect    = "Allow"
    actions   = ["ec2:CreateTags"]
    resources = [local.security_group_arns]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  # Other tags of its own security groups; the cluster tag itself stays.
  statement {
    sid    = "RetagOwnSecurityGroups"
    effect = "Allow"
    actions = [
      "ec2:CreateTags",
      "ec2:DeleteTags",
    ]
    resources = [local.security_group_arns]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.lb_controller_tag}"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  # Ingress rules on its own groups and on the node groups' (which it opens to
  # the ALB's traffic), which it did not create: scoped to the VPC instead.
  statement {
    sid    = "ManageSecurityGroupRulesInTheVpc"
    effect = "Allow"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupIngress",
    ]
    resources = [local.security_group_arns]

    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = [local.vpc_arn]
    }
  }

  statement {
    sid       = "DeleteOwnSecurityGroups"
    effect    = "Allow"
    actions   = ["ec2:DeleteSecurityGroup"]
    resources = [local.security_group_arns]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  # --- Load balancers and target groups: created tagged, changed if owned ----

  statement {
    sid    = "CreateLoadBalancersAndTargetGroups"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
    ]
    resources = [local.alb_arns, local.target_group_arns]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid       = "TagLoadBalancersAndTargetGroupsOnCreate"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:AddTags"]
    resources = [local.alb_arns, local.target_group_arns]

    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateLoadBalancer", "CreateTargetGroup"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid    = "RetagOwnLoadBalancersAndTargetGroups"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:AddTags",
      "elasticloadbalancing:RemoveTags",
    ]
    resources = [local.alb_arns, local.target_group_arns]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.lb_controller_tag}"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid    = "ManageOwnLoadBalancersAndTargetGroups"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:ModifyLoadBalancerAttributes",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:SetIpAddressType",
      "elasticloadbalancing:SetSecurityGroups",
      "elasticloadbalancing:SetSubnets",
    ]
    resources = [local.alb_arns, local.target_group_arns]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.lb_controller_tag}"
      values   = ["false"]
    }
  }

  # Pod IPs in and out of target groups; TargetGroupBindings may name a group
  # the controller did not create, so no tag condition.
  statement {
    sid    = "RegisterTargets"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:DeregisterTargets",
      "elasticloadbalancing:RegisterTargets",
    ]
    resources = [local.target_group_arns]
  }

  # --- Listeners and rules of ALBs --------------------------------------------

  # Listeners and rules are reconciled as children of the ALB; IAM cannot
  # condition on the parent's tags, so they are scoped to ALBs of the
  # account and region.
  statement {
    sid    = "ManageAlbListenersAndRules"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:AddListenerCertificates",
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:CreateRule",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:DeleteRule",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:ModifyListenerAttributes",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:RemoveListenerCertificates",
      "elasticloadbalancing:SetRulePriorities",
    ]
    resources = [local.alb_arns, local.alb_listener_arns, local.alb_rule_arns]
  }

  # Listeners and rules are tagged when created and kept in step; the ALBs'
  # own tags are handled above.
  statement {
    sid    = "TagAlbListenersAndRules"
    effect = "Allow"
    actions = [
      "elasticloadbalancing:AddTags",
      "elasticloadbalancing:RemoveTags",
    ]
    resources = [local.alb_listener_arns, local.alb_rule_arns]
  }

  # --- WAF ----------------------------------------------------------------------

  # The ingress names a web ACL (alb.ingress.kubernetes.io/wafv2-acl-arn),
  # which the controller keeps associated with the ALB.
  statement {
    sid    = "AssociateWebAcl"
    effect = "Allow"
    actions = [
      "wafv2:AssociateWebACL",
      "wafv2:DisassociateWebACL",
      "wafv2:GetWebACL",
      "wafv2:GetWebACLForResource",
    ]
    resources = [
      local.alb_arns,
      "arn:${local.partition}:wafv2:${local.region}:${local.account_id}:regional/webacl/*/*",
    ]
  }

  # WAF checks that the caller may also set the ALB's web ACL, an action
  # without resource-level permissions.
  statement {
    sid       = "SetAlbWebAcl"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:SetWebAcl"]
    resources = ["*"]
  }
}

# Inline: the document is longer than a managed policy may be (6,144
# characters without white space); a role's inline policies may have 10,240.
resource "aws_iam_role_policy" "lb_controller" {
  name   = "manage-load-balancers"
  role   = aws_iam_role.irsa["lb_controller"].id
  policy = data.aws_iam_policy_document.lb_controller.json
}

# --- External Secrets Operator (IRSA) ---------------------------------------------
#
# The operator builds the service's Kubernetes Secret (DATABASE_URL) from the
# RDS master-user secret, through a ClusterSecretStore that uses the
# operator's own credentials. It may read that one secret and nothing else;
# the service pods never call Secrets Manager themselves.

data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid    = "ReadDatabaseSecret"
    effect = "Allow"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
    ]
    resources = [var.database_secret_arn]
  }

  dynamic "statement" {
    for_each = local.database_secret_key_given ? [var.database_secret_kms_key_arn] : []

    content {
      sid       = "DecryptDatabaseSecret"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "read-database-secret"
  role   = aws_iam_role.irsa["external_secrets"].id
  policy = data.aws_iam_policy_document.external_secrets.json
}

# --- CI (GitHub Actions OIDC) -----------------------------------------------------

# One provider per account and issuer: an account that already has it (for
# example because another environment lives there) passes its ARN instead.
resource "aws_iam_openid_connect_provider" "this" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.github_issuer_host}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "ci_trust" {
  statement {
    sid     = "GitHubActionsOfThisRepository"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exact subjects only: a listed branch of this repository, or a job
    # running in a listed deployment environment of it.
    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer_host}:sub"
      values   = local.github_subjects
    }
  }
}

data "aws_iam_policy_document" "ci" {
  # GetAuthorizationToken has no resource-level permissions; the token only
  # opens what the statement below allows.
  statement {
    sid       = "RegistryLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "PushToTheRepository"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.ecr_repository_arn]
  }
}

resource "aws_iam_role" "ci" {
  name                 = "${var.name}-ci"
  description          = "GitHub Actions of ${var.github_repository}: push images to ECR"
  assume_role_policy   = data.aws_iam_policy_document.ci_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "ci" {
  name   = "push-images"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci.json
}
