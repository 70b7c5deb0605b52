output "alarm_topic_arn" {
  description = "SNS topic that receives every alarm (KMS-encrypted)."
  value       = aws_sns_topic.this.arn
}

output "log_group_names" {
  description = "Names of the log groups, by short name."
  value       = { for name, group in aws_cloudwatch_log_group.this : name => group.name }
}

output "kms_key_arn" {
  description = "KMS key encrypting the alarm topic and the log groups."
  value       = aws_kms_key.this.arn
}

output "alarm_names" {
  description = "Names of the alarms created."
  value       = concat([for alarm in aws_cloudwatch_metric_alarm.rds : alarm.alarm_name], [for alarm in aws_cloudwatch_metric_alarm.load_balancer : alarm.alarm_name])
}
