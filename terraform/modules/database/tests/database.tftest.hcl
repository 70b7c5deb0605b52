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

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/pixelmill-test-rds-monitoring"
    }
  }

  mock_resource "aws_security_group" {
    defaults = {
      id = "sg-0db0db0db0db0db00"
    }
  }

  mock_resource "aws_db_parameter_group" {
    defaults = {}
  }

  mock_resource "aws_db_instance" {
    defaults = {
      master_user_secret = [{
        secret_arn    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-abcdef"
        kms_key_id    = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
        secret_status = "active"
      }]
    }
  }
}

variables {
  name                      = "pixelmill-test"
  vpc_id                    = "vpc-0123456789abcdef0"
  subnet_ids                = ["subnet-a", "subnet-b", "subnet-c"]
  client_security_group_ids = ["sg-0c1u5te40000000000"]
  instance_class            = "db.t4g.medium"
}

run "production_defaults_are_multi_az_protected_and_backed_up" {
  command = plan

  assert {
    condition     = aws_db_instance.this.multi_az && output.multi_az
    error_message = "The default (production) settings must run Multi-AZ."
  }

  assert {
    condition     = aws_db_instance.this.deletion_protection && output.deletion_protection
    error_message = "The default (production) settings must protect the instance from deletion."
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period == 35 && !aws_db_instance.this.skip_final_snapshot && aws_db_instance.this.copy_tags_to_snapshot
    error_message = "The default (production) settings keep 35 days of backups and a final snapshot."
  }
}

run "smaller_environments_can_turn_the_safeguards_down" {
  command = plan

  variables {
    multi_az              = false
    deletion_protection   = false
    backup_retention_days = 7
  }

  assert {
    condition     = !aws_db_instance.this.multi_az && !aws_db_instance.this.deletion_protection && aws_db_instance.this.backup_retention_period == 7
    error_message = "multi_az, deletion_protection and backup_retention_days must follow the variables."
  }
}

run "turning_backups_off_is_refused" {
  command = plan

  variables {
    backup_retention_days = 0
  }

  expect_failures = [var.backup_retention_days]
}

run "everything_is_encrypted_and_the_password_is_managed" {
  command = plan

  assert {
    condition     = aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == aws_kms_key.this.arn
    error_message = "Storage must be encrypted with the module's key."
  }

  assert {
    condition     = aws_db_instance.this.manage_master_user_password && aws_db_instance.this.master_user_secret_kms_key_id == aws_kms_key.this.arn && aws_db_instance.this.password == null
    error_message = "The master password must be managed by RDS in Secrets Manager, encrypted with the module's key."
  }

  assert {
    condition     = output.master_user_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-abcdef"
    error_message = "The secret ARN must be exposed for the service."
  }

  assert {
    condition     = aws_db_instance.this.performance_insights_enabled && aws_db_instance.this.performance_insights_kms_key_id == aws_kms_key.this.arn
    error_message = "Performance Insights must be on and encrypted."
  }

  assert {
    condition     = alltrue([for group in aws_cloudwatch_log_group.this : group.kms_key_id == aws_kms_key.this.arn && group.retention_in_days == 365]) && keys(aws_cloudwatch_log_group.this) == ["postgresql", "upgrade"]
    error_message = "Exported logs must land in encrypted log groups with retention."
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The database key must rotate."
  }
}

run "connections_must_use_tls" {
  command = plan

  assert {
    condition     = aws_db_parameter_group.this.family == "postgres16" && aws_db_instance.this.engine == "postgres" && aws_db_instance.this.engine_version == "16"
    error_message = "The instance must run PostgreSQL 16 with a postgres16 parameter group."
  }

  assert {
    condition     = [for p in aws_db_parameter_group.this.parameter : p.value if p.name == "rds.force_ssl"] == ["1"]
    error_message = "The parameter group must set rds.force_ssl = 1."
  }

  assert {
    condition     = aws_db_instance.this.parameter_group_name == aws_db_parameter_group.this.name
    error_message = "The instance must use the module's parameter group."
  }
}

run "only_the_cluster_can_reach_the_database" {
  command = plan

  assert {
    condition     = !aws_db_instance.this.publicly_accessible && aws_db_instance.this.vpc_security_group_ids == toset([aws_security_group.this.id])
    error_message = "The instance must be private and carry only its own security group."
  }

  assert {
    condition = length(aws_vpc_security_group_ingress_rule.this) == 1 && alltrue([for rule in aws_vpc_security_group_ingress_rule.this :
      rule.referenced_security_group_id == "sg-0c1u5te40000000000" && rule.cidr_ipv4 == null && rule.cidr_ipv6 == null && rule.from_port == 5432 && rule.to_port == 5432 && rule.ip_protocol == "tcp"
    ])
    error_message = "Only the client security group may connect, on 5432/tcp, and no address range."
  }
}

run "enhanced_monitoring_has_its_role" {
  command = plan

  assert {
    condition     = aws_db_instance.this.monitoring_interval == 60 && aws_db_instance.this.monitoring_role_arn == aws_iam_role.this.arn
    error_message = "Enhanced monitoring must be on with the module's role."
  }

  assert {
    condition     = one(data.aws_iam_policy_document.monitoring_trust.statement[0].principals).identifiers == toset(["monitoring.rds.amazonaws.com"])
    error_message = "Only the RDS monitoring service may assume the monitoring role."
  }

  assert {
    condition     = endswith(aws_iam_role_policy_attachment.this.policy_arn, ":policy/service-role/AmazonRDSEnhancedMonitoringRole")
    error_message = "The monitoring role must carry the enhanced monitoring policy and nothing else."
  }
}

run "other_major_versions_are_refused" {
  command = plan

  variables {
    engine_version = "15.7"
  }

  expect_failures = [var.engine_version]
}
