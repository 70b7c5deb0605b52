output "bucket_name" {
  description = "Name of the image bucket."
  value       = aws_s3_bucket.images.bucket
}

output "bucket_arn" {
  description = "ARN of the image bucket."
  value       = aws_s3_bucket.images.arn
}

output "object_prefix" {
  description = "Key prefix the service stores under (may be empty)."
  value       = var.object_prefix
}

output "kms_key_arn" {
  description = "KMS key encrypting the image bucket; the service role needs it to read and write objects."
  value       = aws_kms_key.this.arn
}

output "log_bucket_name" {
  description = "Name of the bucket receiving the image bucket's server access logs."
  value       = aws_s3_bucket.logs.bucket
}
