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

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:pixelmill-test-alarms"
    }
  }
}

variables {
  name                   = "pixelmill-test"
  db_instance_identifier = "pixelmill-test"
}

run "alarm_topic_and_logs_are_encrypted" {
  command = plan

  assert {
    condition     = aws_sns_topic.this.kms_master_key_id == aws_kms_key.this.arn && aws_kms_key.this.enable_key_rotation
    error_message = "The alarm topic must be encrypted with the module's rotating key."
  }

  assert {
    condition = anytrue([for statement in data.aws_iam_policy_document.kms.statement :
      one(statement.principals).identifiers == toset(["cloudwatch.amazonaws.com"]) && contains(statement.actions, "kms:Decrypt")
    ])
    error_message = "CloudWatch must be allowed to use the key, or alarms cannot reach the encrypted topic."
  }

  assert {
    condition     = keys(aws_cloudwatch_log_group.this) == ["application"] && aws_cloudwatch_log_group.this["application"].name == "/pixelmill/pixelmill-test/application"
    error_message = "The application log group must be created under /pixelmill/<name>/."
  }

  assert {
    condition     = alltrue([for group in aws_cloudwatch_log_group.this : group.retention_in_days == 365 && group.kms_key_id == aws_kms_key.this.arn])
    error_message = "Log groups must have retention and be encrypted."
  }
}

run "database_alarms_watch_cpu_storage_and_connections" {
  command = plan

  variables {
    rds_free_storage_threshold_gib = 5
  }

  assert {
    condition     = toset([for alarm in aws_cloudwatch_metric_alarm.rds : alarm.metric_name]) == toset(["CPUUtilization", "FreeStorageSpace", "DatabaseConnections"])
    error_message = "CPU, free storage and connection alarms are expected for the database."
  }

  assert {
    condition = alltrue([for alarm in aws_cloudwatch_metric_alarm.rds :
      alarm.namespace == "AWS/RDS" && alarm.dimensions == tomap({ DBInstanceIdentifier = "pixelmill-test" }) &&
      alarm.alarm_actions == toset([aws_sns_topic.this.arn]) && alarm.ok_actions == toset([aws_sns_topic.this.arn])
    ])
    error_message = "Database alarms must watch the instance and notify the topic."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.rds["free-storage"].threshold == 5 * 1024 * 1024 * 1024 && aws_cloudwatch_metric_alarm.rds["free-storage"].comparison_operator == "LessThanThreshold"
    error_message = "The free storage alarm must fire below the threshold, in bytes."
  }
}

run "no_load_balancer_alarms_before_the_load_balancer_exists" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.load_balancer) == 0
    error_message = "Without a load balancer, no load balancer alarm can be created."
  }
}

run "load_balancer_alarms_watch_5xx_and_latency" {
  command = plan

  variables {
    load_balancer_arn_suffix = "app/k8s-pixelmill-0123456789/0123456789abcdef"
  }

  assert {
    condition     = toset([for alarm in aws_cloudwatch_metric_alarm.load_balancer : alarm.metric_name]) == toset(["HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "TargetResponseTime"])
    error_message = "5xx (load balancer and targets) and response time alarms are expected."
  }

  assert {
    condition = alltrue([for alarm in aws_cloudwatch_metric_alarm.load_balancer :
      alarm.namespace == "AWS/ApplicationELB" && alarm.dimensions == tomap({ LoadBalancer = "app/k8s-pixelmill-0123456789/0123456789abcdef" }) &&
      alarm.alarm_actions == toset([aws_sns_topic.this.arn])
    ])
    error_message = "Load balancer alarms must watch the given ALB and notify the topic."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.load_balancer["target-response-time"].extended_statistic == "p99" && aws_cloudwatch_metric_alarm.load_balancer["target-response-time"].threshold == 1
    error_message = "Response time must alarm on p99."
  }
}

run "email_subscriptions_are_made_for_each_address" {
  command = plan

  variables {
    alarm_emails = ["oncall@example.com"]
  }

  assert {
    condition     = [for subscription in aws_sns_topic_subscription.this : "${subscription.protocol}:${subscription.endpoint}"] == ["email:oncall@example.com"]
    error_message = "Each alarm e-mail address must be subscribed."
  }
}

run "malformed_load_balancer_suffix_is_refused" {
  command = plan

  variables {
    load_balancer_arn_suffix = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/x/1"
  }

  expect_failures = [var.load_balancer_arn_suffix]
}
