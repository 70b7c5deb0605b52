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

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:aws-waf-logs-pixelmill-test"
    }
  }

  mock_resource "aws_wafv2_web_acl" {
    defaults = {
      arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/pixelmill-test/00000000-0000-0000-0000-000000000000"
    }
  }
}

variables {
  name = "pixelmill-test"
}

run "regional_acl_uses_the_aws_managed_rule_groups" {
  command = plan

  assert {
    condition     = aws_wafv2_web_acl.this.scope == "REGIONAL" && length(aws_wafv2_web_acl.this.default_action[0].allow) == 1
    error_message = "The ACL must be regional (for an ALB) and allow what no rule blocks."
  }

  assert {
    condition = toset(flatten([for rule in aws_wafv2_web_acl.this.rule : [
      for group in rule.statement[0].managed_rule_group_statement : "${group.vendor_name}/${group.name}"
      ]])) == toset([
      "AWS/AWSManagedRulesCommonRuleSet",
      "AWS/AWSManagedRulesKnownBadInputsRuleSet",
      "AWS/AWSManagedRulesAmazonIpReputationList",
    ])
    error_message = "The three AWS managed rule groups must be in the ACL."
  }

  assert {
    condition = alltrue([for rule in aws_wafv2_web_acl.this.rule :
      length(rule.override_action[0].none) == 1 && length(rule.override_action[0].count) == 0
      if length(rule.statement[0].managed_rule_group_statement) > 0
    ])
    error_message = "Managed rule groups must block (override action none), not merely count."
  }

  assert {
    condition = flatten([for rule in aws_wafv2_web_acl.this.rule : [
      for group in rule.statement[0].managed_rule_group_statement : [for override in group.rule_action_override : override.name]
    ]]) == ["SizeRestrictions_BODY"]
    error_message = "Only the body size rule of the common rule set may be relaxed to count."
  }
}

run "rate_based_rule_blocks_per_address" {
  command = plan

  variables {
    rate_limit_per_5_minutes = 1500
  }

  assert {
    condition = jsonencode([for rule in aws_wafv2_web_acl.this.rule : {
      limit    = rule.statement[0].rate_based_statement[0].limit
      key      = rule.statement[0].rate_based_statement[0].aggregate_key_type
      blocking = length(rule.action[0].block) == 1
      } if length(rule.statement[0].rate_based_statement) > 0]) == jsonencode([{
      limit    = 1500
      key      = "IP"
      blocking = true
    }])
    error_message = "A rate-based rule must block an address above the limit."
  }
}

run "requests_are_logged_encrypted_without_credentials" {
  command = plan

  assert {
    condition     = aws_wafv2_web_acl_logging_configuration.this.resource_arn == aws_wafv2_web_acl.this.arn && aws_wafv2_web_acl_logging_configuration.this.log_destination_configs == toset([aws_cloudwatch_log_group.this.arn])
    error_message = "The ACL must log to the module's log group."
  }

  assert {
    condition     = startswith(aws_cloudwatch_log_group.this.name, "aws-waf-logs-") && aws_cloudwatch_log_group.this.kms_key_id == aws_kms_key.this.arn && aws_cloudwatch_log_group.this.retention_in_days == 365
    error_message = "WAF logs need an aws-waf-logs- group, encrypted, with retention."
  }

  assert {
    condition     = toset([for field in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : field.single_header[0].name]) == toset(["authorization", "cookie"])
    error_message = "Credentials (authorization, cookie) must be redacted from the logs."
  }

  assert {
    condition     = output.web_acl_arn == aws_wafv2_web_acl.this.arn
    error_message = "The ACL ARN must be an output for the ingress annotation."
  }
}

run "rate_limit_below_the_waf_minimum_is_refused" {
  command = plan

  variables {
    rate_limit_per_5_minutes = 10
  }

  expect_failures = [var.rate_limit_per_5_minutes]
}
