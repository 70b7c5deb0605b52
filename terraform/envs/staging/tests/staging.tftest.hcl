# Plans the whole environment, with this directory's terraform.tfvars, against
# a mocked AWS. Computed values get realistic shapes so that the modules'
# input validations see what AWS would return.
mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:role/pixelmill-admin"
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

  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_resource "aws_eks_cluster" {
    defaults = {
      arn                   = "arn:aws:eks:eu-west-1:123456789012:cluster/pixelmill"
      endpoint              = "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
      identity              = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" }] }]
      certificate_authority = [{ data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t" }]
      vpc_config = {
        cluster_security_group_id = "sg-0c1u5te40000000000"
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
      arn = "arn:aws:iam::123456789012:role/pixelmill-role"
    }
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:pixelmill"
    }
  }

  mock_resource "aws_launch_template" {
    defaults = {
      id             = "lt-0123456789abcdef0"
      latest_version = 1
    }
  }

  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::pixelmill-images"
    }
  }

  mock_resource "aws_vpc" {
    defaults = {
      id = "vpc-0123456789abcdef0"
    }
  }

  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:eu-west-1:123456789012:repository/pixelmill"
      repository_url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill"
    }
  }

  mock_resource "aws_db_instance" {
    defaults = {
      address = "pixelmill.abcdefghijkl.eu-west-1.rds.amazonaws.com"
      master_user_secret = [{
        secret_arn    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-abcdef"
        kms_key_id    = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
        secret_status = "active"
      }]
    }
  }

  mock_resource "aws_wafv2_web_acl" {
    defaults = {
      arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/pixelmill/00000000-0000-0000-0000-000000000000"
    }
  }

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:pixelmill-alarms"
    }
  }

  mock_resource "aws_nat_gateway" {
    defaults = {}
  }
}

run "staging_plans_with_its_settings" {
  command = plan

  assert {
    condition     = length(module.network.nat_gateway_ids) == 1
    error_message = "staging shares one NAT gateway between its zones."
  }

  assert {
    condition     = !module.database.multi_az && !module.database.deletion_protection && module.database.backup_retention_days == 7
    error_message = "staging runs a single-zone database without deletion protection and a week of backups."
  }

  assert {
    condition     = module.eks.endpoint_public_access == false
    error_message = "The staging Kubernetes API must be private."
  }

  assert {
    condition     = output.cluster_name == "pixelmill-staging" && output.region == "eu-west-1" && output.image_bucket == "pixelmill-staging-images-123456789012"
    error_message = "Resources must be named after the environment (and the bucket after the account)."
  }

  assert {
    condition     = jsonencode(module.iam.ci_subjects) == jsonencode(["repo:pixelmill/pixelmill:ref:refs/heads/main", "repo:pixelmill/pixelmill:environment:staging"])
    error_message = "staging's CI role is for the main branch and the staging environment."
  }

  assert {
    condition = alltrue([for value in [
      output.cluster_name, output.region, output.ecr_repository_url, output.image_bucket, output.database_endpoint,
      output.database_secret_arn, output.irsa_role_arn, output.ci_role_arn, output.waf_acl_arn, output.alarm_topic_arn,
      output.vpc_id, output.lb_controller_role_arn, output.external_secrets_role_arn,
    ] : value != null && value != ""])
    error_message = "Every output the delivery tool reads must be set."
  }
}

run "staging_creates_the_shared_repository" {
  command = plan

  assert {
    condition     = var.ecr_create_repository && length(module.ecr) == 1 && length(data.aws_ecr_repository.shared) == 0
    error_message = "staging creates the shared repository and looks nothing up."
  }

  assert {
    condition     = module.ecr[0].repository_name == "pixelmill"
    error_message = "The shared repository is named pixelmill, not after the environment."
  }

  assert {
    condition     = output.ecr_repository_url == module.ecr[0].repository_url
    error_message = "The repository URL must be the created repository's."
  }

  assert {
    condition     = var.ecr_images_to_keep == 200
    error_message = "The owner's lifecycle must keep enough images for prod's releases too."
  }
}

run "an_environment_that_does_not_create_the_repository_looks_it_up" {
  command = plan

  variables {
    ecr_create_repository = false
  }

  override_data {
    target = data.aws_ecr_repository.shared
    values = {
      arn            = "arn:aws:ecr:eu-west-1:123456789012:repository/pixelmill"
      repository_url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill"
    }
  }

  assert {
    condition     = length(module.ecr) == 0
    error_message = "No aws_ecr_repository (nor its key) may be planned when ecr_create_repository is false."
  }

  assert {
    condition     = length(data.aws_ecr_repository.shared) == 1 && data.aws_ecr_repository.shared[0].name == "pixelmill"
    error_message = "The repository must be looked up by its shared name."
  }

  assert {
    condition     = output.ecr_repository_url == data.aws_ecr_repository.shared[0].repository_url && output.ecr_repository_url == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill"
    error_message = "The repository URL must come from the lookup."
  }
}

run "controller_roles_are_output_for_bootstrap" {
  command = plan

  assert {
    condition     = output.lb_controller_role_arn == module.iam.lb_controller_role_arn && output.external_secrets_role_arn == module.iam.external_secrets_role_arn
    error_message = "The controllers' roles must be output as lb_controller_role_arn and external_secrets_role_arn."
  }

  assert {
    condition = alltrue([for value in [output.lb_controller_role_arn, output.external_secrets_role_arn] :
      can(regex("^arn:aws:iam::[0-9]{12}:role/.+$", value))
    ])
    error_message = "lb_controller_role_arn and external_secrets_role_arn must be set to role ARNs."
  }
}
