# What `cargo xtask` and the Helm values read after an apply
# (terraform output -json).

output "region" {
  description = "AWS region of the environment."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name)."
  value       = module.eks.cluster_name
}

output "vpc_id" {
  description = "VPC of the cluster (the load balancer controller needs it, as IMDS is closed to pods)."
  value       = module.network.vpc_id
}

output "ecr_repository_url" {
  description = "The repository shared by all environments: CI pushes to it, every cluster pulls from it."
  value       = local.ecr_repository_url
}

output "image_bucket" {
  description = "Image bucket (PIXELMILL_STORAGE=s3://<image_bucket>)."
  value       = module.storage.bucket_name
}

output "database_endpoint" {
  description = "Host name of the PostgreSQL database."
  value       = module.database.endpoint
}

output "database_port" {
  description = "Port of the PostgreSQL database."
  value       = module.database.port
}

output "database_name" {
  description = "Name of the service's database."
  value       = module.database.database_name
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the database credentials (managed and rotated by RDS); the External Secrets Operator reads it."
  value       = module.database.master_user_secret_arn
}

output "irsa_role_arn" {
  description = "IAM role of the pixelmill/pixelmill service account (eks.amazonaws.com/role-arn annotation)."
  value       = module.iam.service_role_arn
}

output "lb_controller_role_arn" {
  description = "IRSA role of the AWS Load Balancer Controller (kube-system/aws-load-balancer-controller); `cargo xtask bootstrap` reads it and passes it to the controller's Helm install."
  value       = module.iam.lb_controller_role_arn
}

output "external_secrets_role_arn" {
  description = "IRSA role of the External Secrets Operator (external-secrets/external-secrets); `cargo xtask bootstrap` reads it and passes it to the operator's Helm install."
  value       = module.iam.external_secrets_role_arn
}

output "ci_role_arn" {
  description = "IAM role GitHub Actions assumes to push images."
  value       = module.iam.ci_role_arn
}

output "waf_acl_arn" {
  description = "WAF web ACL for the ingress annotation alb.ingress.kubernetes.io/wafv2-acl-arn."
  value       = module.waf.web_acl_arn
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the environment's alarms."
  value       = module.observability.alarm_topic_arn
}
