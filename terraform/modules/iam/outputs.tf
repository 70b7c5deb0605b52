output "service_role_arn" {
  description = "IRSA role of the service; goes into the service account annotation eks.amazonaws.com/role-arn."
  value       = aws_iam_role.irsa["service"].arn
}

output "service_role_name" {
  description = "Name of the service's role."
  value       = aws_iam_role.irsa["service"].name
}

output "lb_controller_role_arn" {
  description = "IRSA role of the AWS Load Balancer Controller (its service account's eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.irsa["lb_controller"].arn
}

output "external_secrets_role_arn" {
  description = "IRSA role of the External Secrets Operator (its service account's eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.irsa["external_secrets"].arn
}

output "ci_role_arn" {
  description = "Role GitHub Actions assumes (aws-actions/configure-aws-credentials role-to-assume) to push images."
  value       = aws_iam_role.ci.arn
}

output "github_oidc_provider_arn" {
  description = "ARN of the GitHub Actions OIDC provider used by the CI role."
  value       = local.github_oidc_provider_arn
}

output "ci_subjects" {
  description = "The token subjects (sub claims) allowed to assume the CI role."
  value       = local.github_subjects
}
