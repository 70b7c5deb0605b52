mock_provider "aws" {
  override_during = plan

  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    }
  }

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

  # Resources listed here get their computed attributes (ids, ARNs) during
  # plan, so assertions can compare them.
  mock_resource "aws_vpc" {
    defaults = {}
  }

  mock_resource "aws_internet_gateway" {
    defaults = {}
  }

  mock_resource "aws_subnet" {
    defaults = {}
  }

  mock_resource "aws_eip" {
    defaults = {}
  }

  mock_resource "aws_nat_gateway" {
    defaults = {}
  }

  mock_resource "aws_route_table" {
    defaults = {}
  }

  mock_resource "aws_security_group" {
    defaults = {}
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vpc/pixelmill-test/flow-logs"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/pixelmill-test-flow-logs"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  name               = "pixelmill-test"
  cidr_block         = "10.20.0.0/16"
  availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

run "one_nat_gateway_per_zone_when_not_shared" {
  command = plan

  variables {
    single_nat_gateway = false
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3 && length(aws_eip.this) == 3
    error_message = "Expected three NAT gateways (one per zone) with an address each."
  }

  assert {
    condition     = length(distinct(aws_route.private_nat[*].nat_gateway_id)) == 3
    error_message = "Each zone's private route table must use the NAT gateway of its own zone."
  }

  assert {
    condition     = [for i in range(3) : aws_nat_gateway.this[i].subnet_id] == aws_subnet.public[*].id
    error_message = "NAT gateway i must sit in public subnet i."
  }
}

run "single_nat_gateway_is_shared_by_all_zones" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.this) == 1
    error_message = "Expected exactly one NAT gateway."
  }

  assert {
    condition     = length(aws_route.private_nat) == 3 && toset(aws_route.private_nat[*].nat_gateway_id) == toset([aws_nat_gateway.this[0].id])
    error_message = "All three private route tables must use the single NAT gateway."
  }
}

run "subnets_span_three_zones_and_are_tagged_for_load_balancers" {
  command = plan

  assert {
    condition     = alltrue([for tier in [aws_subnet.public, aws_subnet.private, aws_subnet.database] : join(",", tier[*].availability_zone) == "eu-west-1a,eu-west-1b,eu-west-1c"])
    error_message = "Each tier must have subnet i in zone i of the three zones."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.tags["kubernetes.io/role/elb"] == "1" && !s.map_public_ip_on_launch])
    error_message = "Public subnets must carry the elb role tag and never hand out public addresses."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/role/internal-elb"] == "1" && !contains(keys(s.tags), "kubernetes.io/role/elb")])
    error_message = "Private subnets must carry only the internal-elb role tag."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.database : !contains(keys(s.tags), "kubernetes.io/role/elb") && !contains(keys(s.tags), "kubernetes.io/role/internal-elb")])
    error_message = "No load balancer may be placed in the database subnets."
  }

  assert {
    condition     = aws_subnet.private[0].cidr_block == "10.20.0.0/18" && aws_subnet.public[0].cidr_block == "10.20.192.0/22" && aws_subnet.database[2].cidr_block == "10.20.216.0/22"
    error_message = "Unexpected subnet layout."
  }
}

run "database_subnets_have_no_route_out" {
  command = plan

  assert {
    condition = (
      !contains(aws_route.private_nat[*].route_table_id, aws_route_table.database.id) &&
      aws_route.public_internet.route_table_id != aws_route_table.database.id &&
      toset(aws_route_table_association.database[*].route_table_id) == toset([aws_route_table.database.id])
    )
    error_message = "Database subnets must use a route table without internet or NAT routes."
  }
}

run "vpc_endpoints_cover_s3_ecr_sts_and_logs" {
  command = plan

  assert {
    condition     = aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway" && aws_vpc_endpoint.s3.service_name == "com.amazonaws.eu-west-1.s3"
    error_message = "S3 must be reached through a gateway endpoint."
  }

  assert {
    condition     = toset(aws_vpc_endpoint.s3.route_table_ids) == toset(concat(aws_route_table.private[*].id, [aws_route_table.database.id]))
    error_message = "The S3 endpoint must serve the private and database route tables."
  }

  assert {
    condition     = toset([for e in aws_vpc_endpoint.interface : e.service_name]) == toset(["com.amazonaws.eu-west-1.ecr.api", "com.amazonaws.eu-west-1.ecr.dkr", "com.amazonaws.eu-west-1.sts", "com.amazonaws.eu-west-1.logs"])
    error_message = "Interface endpoints for ECR (api, dkr), STS and CloudWatch Logs are expected."
  }

  assert {
    condition     = alltrue([for e in aws_vpc_endpoint.interface : e.private_dns_enabled && e.vpc_endpoint_type == "Interface"])
    error_message = "Interface endpoints need private DNS so the SDKs use them unchanged."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.this.cidr_ipv4 == "10.20.0.0/16" && aws_vpc_security_group_ingress_rule.this.from_port == 443 && aws_vpc_security_group_ingress_rule.this.to_port == 443
    error_message = "Endpoints must accept HTTPS from the VPC only."
  }
}

run "flow_logs_capture_all_traffic_encrypted" {
  command = plan

  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_flow_log.this.log_destination == aws_cloudwatch_log_group.this.arn
    error_message = "Flow logs must record all traffic into the module's log group."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.kms_key_id == aws_kms_key.this.arn && aws_kms_key.this.enable_key_rotation
    error_message = "The flow log group must be encrypted with a rotating KMS key."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 365
    error_message = "Flow logs must be kept for the configured retention."
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must have no rules."
  }
}

run "rejects_a_vpc_range_too_large" {
  command = plan

  variables {
    cidr_block = "10.0.0.0/8"
  }

  expect_failures = [var.cidr_block]
}

run "requires_three_distinct_zones" {
  command = plan

  variables {
    availability_zones = ["eu-west-1a", "eu-west-1a", "eu-west-1b"]
  }

  expect_failures = [var.availability_zones]
}

run "fails_when_a_named_zone_is_not_available" {
  command = plan

  override_data {
    target = data.aws_availability_zones.this
    values = {
      names = ["eu-west-1a", "eu-west-1b"]
    }
  }

  expect_failures = [data.aws_availability_zones.this]
}
