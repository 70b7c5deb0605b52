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

  # The repository staging created, as the lookup by name returns it.
  mock_data "aws_ecr_repository" {
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

run "prod_plans_with_its_settings" {
  command = plan

  assert {
    condition     = length(module.network.nat_gateway_ids) == 3
    error_message = "prod has one NAT gateway per zone."
  }

  assert {
    condition     = module.database.multi_az && module.database.deletion_protection && module.database.backup_retention_days == 35
    error_message = "prod runs a Multi-AZ database with deletion protection and 35 days of backups."
  }

  assert {
    condition     = module.eks.endpoint_public_access == false
    error_message = "The prod Kubernetes API must be private."
  }

  assert {
    condition     = output.cluster_name == "pixelmill-prod" && output.region == "eu-west-1" && output.image_bucket == "pixelmill-prod-images-123456789012"
    error_message = "Resources must be named after the environment (and the bucket after the account)."
  }

  assert {
    condition     = jsonencode(module.iam.ci_subjects) == jsonencode(["repo:pixelmill/pixelmill:environment:production"])
    error_message = "Only jobs in the production environment may push prod images."
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

run "prod_uses_the_repository_staging_created" {
  command = plan

  assert {
    condition     = !var.ecr_create_repository && length(module.ecr) == 0
    error_message = "prod must not create a repository (staging owns the shared one)."
  }

  assert {
    condition     = data.aws_ecr_repository.shared[0].name == "pixelmill" && output.ecr_repository_url == data.aws_ecr_repository.shared[0].repository_url
    error_message = "prod must look the shared repository up by name and output its URL."
  }
}
