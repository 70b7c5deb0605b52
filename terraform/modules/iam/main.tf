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
  read_database_secret      = var.database_secret_arn != null
  database_secret_key_given = var.database_secret_kms_key_arn != null
}

# --- The service's role (IRSA) ----------------------------------------------------

data "aws_iam_policy_document" "service_trust" {
  statement {
    sid     = "PixelmillServiceAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.eks_issuer_host}:sub"
      values   = ["system:serviceaccount:${var.service_account_namespace}:${var.service_account_name}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.eks_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

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

  dynamic "statement" {
    for_each = local.read_database_secret ? [var.database_secret_arn] : []

    content {
      sid    = "ReadDatabaseSecret"
      effect = "Allow"
      actions = [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
      ]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.read_database_secret && local.database_secret_key_given ? [var.database_secret_kms_key_arn] : []

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

resource "aws_iam_role" "service" {
  name                 = "${var.name}-service"
  description          = "Pixelmill service account ${var.service_account_namespace}/${var.service_account_name} (IRSA)"
  assume_role_policy   = data.aws_iam_policy_document.service_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "service" {
  name   = "image-store"
  role   = aws_iam_role.service.id
  policy = data.aws_iam_policy_document.service.json
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
