data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  log_group_prefix = "/pixelmill/${var.name}/"

  rds_alarms = {
    cpu = {
      description = "Database CPU above ${var.rds_cpu_threshold_percent}% for 15 minutes"
      metric_name = "CPUUtilization"
      statistic   = "Average"
      operator    = "GreaterThanThreshold"
      threshold   = var.rds_cpu_threshold_percent
      periods     = 3
    }
    free-storage = {
      description = "Database free storage below ${var.rds_free_storage_threshold_gib} GiB"
      metric_name = "FreeStorageSpace"
      statistic   = "Minimum"
      operator    = "LessThanThreshold"
      threshold   = var.rds_free_storage_threshold_gib * 1024 * 1024 * 1024
      periods     = 1
    }
    connections = {
      description = "More than ${var.rds_connections_threshold} database connections for 10 minutes"
      metric_name = "DatabaseConnections"
      statistic   = "Maximum"
      operator    = "GreaterThanThreshold"
      threshold   = var.rds_connections_threshold
      periods     = 2
    }
  }

  # The ALB belongs to the in-cluster controller and may not exist yet; its
  # alarms appear once its ARN suffix is known.
  load_balancer_alarms = var.load_balancer_arn_suffix == null ? {} : {
    elb-5xx = {
      description        = "Load balancer answered more than ${var.lb_5xx_threshold} 5xx itself in 5 minutes"
      metric_name        = "HTTPCode_ELB_5XX_Count"
      statistic          = "Sum"
      extended_statistic = null
      threshold          = var.lb_5xx_threshold
    }
    target-5xx = {
      description        = "Pixelmill answered more than ${var.lb_5xx_threshold} 5xx in 5 minutes"
      metric_name        = "HTTPCode_Target_5XX_Count"
      statistic          = "Sum"
      extended_statistic = null
      threshold          = var.lb_5xx_threshold
    }
    target-response-time = {
      description        = "p99 target response time above ${var.lb_target_response_time_p99_seconds} s"
      metric_name        = "TargetResponseTime"
      statistic          = null
      extended_statistic = "p99"
      threshold          = var.lb_target_response_time_p99_seconds
    }
  }
}

# --- Key (alarm topic and log groups) ----------------------------------------------

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the root statement hands control to IAM policies.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the root statement hands control to IAM policies.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself, not every resource.
  statement {
    sid       = "AccountAdministration"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch publishes alarms to the encrypted topic.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid    = "LogGroupEncryption"
    effect = "Allow"
    actions = [
      "kms:Decrypt*",
      "kms:Describe*",
      "kms:Encrypt*",
      "kms:GenerateDataKey*",
      "kms:ReEncrypt*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_prefix}*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name} alarms and application logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-observability"
  target_key_id = aws_kms_key.this.key_id
}

# --- Log groups -------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  for_each = var.log_groups

  name              = "${local.log_group_prefix}${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# --- Alarm topic ------------------------------------------------------------------------

resource "aws_sns_topic" "this" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "this" {
  for_each = var.alarm_emails

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.value
}

# --- Alarms -------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "rds" {
  for_each = local.rds_alarms

  alarm_name          = "${var.name}-rds-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  period              = 300
  evaluation_periods  = each.value.periods
  treat_missing_data  = "missing"

  dimensions = {
    DBInstanceIdentifier = var.db_instance_identifier
  }

  alarm_actions = [aws_sns_topic.this.arn]
  ok_actions    = [aws_sns_topic.this.arn]
}

resource "aws_cloudwatch_metric_alarm" "load_balancer" {
  for_each = local.load_balancer_alarms

  alarm_name          = "${var.name}-lb-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  extended_statistic  = each.value.extended_statistic
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  period              = 300
  evaluation_periods  = 1
  # No traffic is not an error.
  treat_missing_data = "notBreaching"

  dimensions = {
    LoadBalancer = var.load_balancer_arn_suffix
  }

  alarm_actions = [aws_sns_topic.this.arn]
  ok_actions    = [aws_sns_topic.this.arn]
}
