output "instance_identifier" {
  description = "Identifier of the DB instance (the DBInstanceIdentifier of its CloudWatch metrics)."
  value       = aws_db_instance.this.identifier
}

output "endpoint" {
  description = "Host name of the database."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of the service's database."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user name."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the master credentials (JSON with username and password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "KMS key encrypting storage, backups, the credentials secret, Performance Insights and logs."
  value       = aws_kms_key.this.arn
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}

output "multi_az" {
  description = "Whether a standby runs in a second zone."
  value       = aws_db_instance.this.multi_az
}

output "deletion_protection" {
  description = "Whether the instance is protected from deletion."
  value       = aws_db_instance.this.deletion_protection
}

output "backup_retention_days" {
  description = "Days of automated backups."
  value       = aws_db_instance.this.backup_retention_period
}
