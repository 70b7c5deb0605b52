mock_provider "aws" {
  override_during = plan

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

  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {}
  }
}

variables {
  name                     = "pixelmill-test"
  eks_oidc_provider_arn    = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
  eks_oidc_issuer_url      = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
  image_bucket_arn         = "arn:aws:s3:::pixelmill-test-images"
  image_bucket_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-1111-1111-1111-111111111111"
  github_repository        = "pixelmill/pixelmill"
  ecr_repository_arn       = "arn:aws:ecr:eu-west-1:123456789012:repository/pixelmill-test"
  vpc_id                   = "vpc-0123456789abcdef0"
  database_secret_arn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-abcdef"
}

run "creates_the_github_oidc_provider_when_the_account_has_none" {
  command = plan

  assert {
    condition     = length(aws_iam_openid_connect_provider.this) == 1 && aws_iam_openid_connect_provider.this[0].url == "https://token.actions.githubusercontent.com" && aws_iam_openid_connect_provider.this[0].client_id_list == toset(["sts.amazonaws.com"])
    error_message = "The GitHub Actions OIDC provider must be created for audience sts.amazonaws.com."
  }

  assert {
    condition     = one(data.aws_iam_policy_document.ci_trust.statement[0].principals).identifiers == toset([aws_iam_openid_connect_provider.this[0].arn])
    error_message = "The CI role must trust the created provider."
  }

  assert {
    condition     = output.ci_subjects == ["repo:pixelmill/pixelmill:ref:refs/heads/main"]
    error_message = "By default only the main branch may assume the CI role."
  }
}

run "reuses_an_existing_github_oidc_provider" {
  command = plan

  variables {
    github_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.this) == 0 && output.github_oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "An existing provider must be used, not created again."
  }
}

run "each_role_carries_only_its_own_policy" {
  command = plan

  assert {
    condition     = aws_iam_role_policy.service.role == aws_iam_role.irsa["service"].id && aws_iam_role_policy.service.policy == data.aws_iam_policy_document.service.json
    error_message = "The service role must carry the service policy."
  }

  assert {
    condition     = aws_iam_role_policy.ci.role == aws_iam_role.ci.id && aws_iam_role_policy.ci.policy == data.aws_iam_policy_document.ci.json
    error_message = "The CI role must carry the CI policy."
  }

  assert {
    condition     = aws_iam_role_policy.lb_controller.role == aws_iam_role.irsa["lb_controller"].id && aws_iam_role_policy.lb_controller.policy == data.aws_iam_policy_document.lb_controller.json
    error_message = "The load balancer controller's role must carry its policy."
  }

  assert {
    condition     = aws_iam_role_policy.external_secrets.role == aws_iam_role.irsa["external_secrets"].id && aws_iam_role_policy.external_secrets.policy == data.aws_iam_policy_document.external_secrets.json
    error_message = "The External Secrets Operator's role must carry its policy."
  }

  assert {
    condition = alltrue([
      aws_iam_role.irsa["service"].assume_role_policy == data.aws_iam_policy_document.irsa_trust["service"].json,
      aws_iam_role.ci.assume_role_policy == data.aws_iam_policy_document.ci_trust.json,
      aws_iam_role.irsa["lb_controller"].assume_role_policy == data.aws_iam_policy_document.irsa_trust["lb_controller"].json,
      aws_iam_role.irsa["external_secrets"].assume_role_policy == data.aws_iam_policy_document.irsa_trust["external_secrets"].json,
    ])
    error_message = "Each role must use its own trust policy."
  }

  assert {
    condition = alltrue([
      aws_iam_role.irsa["service"].name == "pixelmill-test-service",
      aws_iam_role.ci.name == "pixelmill-test-ci",
      aws_iam_role.irsa["lb_controller"].name == "pixelmill-test-lb-controller",
      aws_iam_role.irsa["external_secrets"].name == "pixelmill-test-external-secrets",
    ])
    error_message = "Roles must be named after the environment."
  }
}

run "controller_trust_follows_the_configured_service_accounts" {
  command = plan

  variables {
    lb_controller_namespace               = "aws-lb"
    lb_controller_service_account_name    = "controller"
    external_secrets_namespace            = "eso"
    external_secrets_service_account_name = "operator"
  }

  assert {
    condition     = [for condition in data.aws_iam_policy_document.irsa_trust["lb_controller"].statement[0].condition : one(condition.values) if endswith(condition.variable, ":sub")] == ["system:serviceaccount:aws-lb:controller"]
    error_message = "The load balancer controller's role must trust the configured service account."
  }

  assert {
    condition     = [for condition in data.aws_iam_policy_document.irsa_trust["external_secrets"].statement[0].condition : one(condition.values) if endswith(condition.variable, ":sub")] == ["system:serviceaccount:eso:operator"]
    error_message = "The External Secrets Operator's role must trust the configured service account."
  }
}
