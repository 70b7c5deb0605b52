output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "The three zones the subnets are spread over, in subnet order."
  value       = local.zones
}

output "public_subnet_ids" {
  description = "Public subnets (tagged for internet-facing load balancers), one per zone."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (tagged for internal load balancers) for the cluster's nodes and pods, one per zone."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Database subnets, with no route out of the VPC, one per zone."
  value       = aws_subnet.database[*].id
}

output "nat_gateway_ids" {
  description = "NAT gateways: one, or one per zone."
  value       = aws_nat_gateway.this[*].id
}

output "nat_public_ips" {
  description = "Public addresses the private subnets reach the internet from (for allow-lists elsewhere)."
  value       = aws_eip.this[*].public_ip
}

output "vpc_endpoint_ids" {
  description = "IDs of the VPC endpoints, by service (s3, ecr.api, ecr.dkr, sts, logs)."
  value       = merge({ s3 = aws_vpc_endpoint.s3.id }, { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id })
}

output "flow_log_group_name" {
  description = "CloudWatch Logs group receiving the VPC flow logs."
  value       = aws_cloudwatch_log_group.this.name
}
