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

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_resource "aws_s3_bucket_lifecycle_configuration" {
    defaults = {}
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
}

override_resource {
  target          = aws_s3_bucket.images
  override_during = plan
  values = {
    id  = "pixelmill-test-images"
    arn = "arn:aws:s3:::pixelmill-test-images"
  }
}

override_resource {
  target          = aws_s3_bucket.logs
  override_during = plan
  values = {
    id  = "pixelmill-test-images-access-logs"
    arn = "arn:aws:s3:::pixelmill-test-images-access-logs"
  }
}

variables {
  bucket_name = "pixelmill-test-images"
}

run "images_are_encrypted_with_the_bucket_key" {
  command = plan

  assert {
    condition = (
      aws_s3_bucket_server_side_encryption_configuration.images.rule[*].apply_server_side_encryption_by_default[0].sse_algorithm == tolist(["aws:kms"]) &&
      one(aws_s3_bucket_server_side_encryption_configuration.images.rule).apply_server_side_encryption_by_default[0].kms_master_key_id == aws_kms_key.this.arn &&
      one(aws_s3_bucket_server_side_encryption_configuration.images.rule).bucket_key_enabled
    )
    error_message = "The image bucket must default to SSE-KMS with the module's key and bucket keys."
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The bucket key must rotate."
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.logs.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    error_message = "The log bucket must be encrypted (SSE-S3, the only kind access-log delivery supports)."
  }

  assert {
    condition = alltrue([for statement in data.aws_iam_policy_document.images.statement :
      statement.effect == "Deny" && statement.actions == toset(["s3:PutObject"]) if contains(["DenyOtherEncryption", "DenyOtherKmsKey"], statement.sid)
    ]) && length([for statement in data.aws_iam_policy_document.images.statement : statement if contains(["DenyOtherEncryption", "DenyOtherKmsKey"], statement.sid)]) == 2
    error_message = "The bucket policy must refuse uploads that name another algorithm or key."
  }
}

run "both_buckets_are_closed_to_the_public" {
  command = plan

  assert {
    condition = alltrue([for block in [aws_s3_bucket_public_access_block.images, aws_s3_bucket_public_access_block.logs] :
      block.block_public_acls && block.block_public_policy && block.ignore_public_acls && block.restrict_public_buckets
    ])
    error_message = "All four public-access blocks must be on, on both buckets."
  }

  assert {
    condition = alltrue([for controls in [aws_s3_bucket_ownership_controls.images, aws_s3_bucket_ownership_controls.logs] :
      controls.rule[0].object_ownership == "BucketOwnerEnforced"
    ])
    error_message = "ACLs must be disabled (BucketOwnerEnforced) on both buckets."
  }

  assert {
    condition = alltrue([for versioning in [aws_s3_bucket_versioning.images, aws_s3_bucket_versioning.logs] :
      versioning.versioning_configuration[0].status == "Enabled"
    ])
    error_message = "Both buckets must be versioned."
  }
}

run "bucket_policies_deny_requests_without_tls" {
  command = plan

  assert {
    condition = length([for statement in data.aws_iam_policy_document.images.statement : statement if
      statement.effect == "Deny" &&
      statement.actions == toset(["s3:*"]) &&
      statement.resources == toset(["arn:aws:s3:::pixelmill-test-images", "arn:aws:s3:::pixelmill-test-images/*"]) &&
      anytrue([for c in statement.condition : c.test == "Bool" && c.variable == "aws:SecureTransport" && c.values == tolist(["false"])])
    ]) == 1
    error_message = "The image bucket policy must deny every request made without TLS, on the bucket and its objects."
  }

  assert {
    condition = length([for statement in data.aws_iam_policy_document.logs.statement : statement if
      statement.effect == "Deny" &&
      statement.actions == toset(["s3:*"]) &&
      anytrue([for c in statement.condition : c.variable == "aws:SecureTransport" && c.values == tolist(["false"])])
    ]) == 1
    error_message = "The log bucket policy must deny every request made without TLS."
  }

  assert {
    condition     = aws_s3_bucket_policy.images.bucket == aws_s3_bucket.images.id && aws_s3_bucket_policy.logs.bucket == aws_s3_bucket.logs.id
    error_message = "Each policy must be attached to its bucket."
  }
}

run "only_the_logging_service_writes_access_logs" {
  command = plan

  assert {
    condition     = aws_s3_bucket_logging.this.bucket == aws_s3_bucket.images.id && aws_s3_bucket_logging.this.target_bucket == aws_s3_bucket.logs.id
    error_message = "The image bucket must log to the log bucket."
  }

  assert {
    condition = length([for statement in data.aws_iam_policy_document.logs.statement : statement if statement.effect == "Allow"]) == 1 && alltrue([
      for statement in data.aws_iam_policy_document.logs.statement : (
        one(statement.principals).identifiers == toset(["logging.s3.amazonaws.com"]) &&
        statement.actions == toset(["s3:PutObject"]) &&
        anytrue([for c in statement.condition : c.variable == "aws:SourceArn" && c.values == tolist(["arn:aws:s3:::pixelmill-test-images"])])
      ) if statement.effect == "Allow"
    ])
    error_message = "Only the S3 logging service, on behalf of the image bucket, may write to the log bucket."
  }
}

run "lifecycle_expires_variants_and_keeps_originals" {
  command = plan

  variables {
    variant_expiration_days            = 14
    noncurrent_version_expiration_days = 21
  }

  assert {
    condition     = [for rule in aws_s3_bucket_lifecycle_configuration.images.rule : rule.expiration[0].days if rule.filter[0].prefix == "variants/"] == [14]
    error_message = "Objects under variants/ must expire after variant_expiration_days."
  }

  assert {
    condition = alltrue([for rule in aws_s3_bucket_lifecycle_configuration.images.rule :
      length(rule.expiration) == 0 && one(rule.transition).storage_class == "STANDARD_IA" if rule.filter[0].prefix == "originals/"
    ]) && length([for rule in aws_s3_bucket_lifecycle_configuration.images.rule : rule if rule.filter[0].prefix == "originals/"]) == 1
    error_message = "Objects under originals/ must never expire by default (only move to STANDARD_IA)."
  }

  assert {
    condition = alltrue([for rule in aws_s3_bucket_lifecycle_configuration.images.rule :
      alltrue([for e in rule.expiration : coalesce(e.days, 0) == 0 || rule.filter[0].prefix == "variants/"])
    ])
    error_message = "No rule other than the variants rule may expire current objects."
  }

  assert {
    condition     = [for rule in aws_s3_bucket_lifecycle_configuration.images.rule : rule.noncurrent_version_expiration[0].noncurrent_days if length(rule.noncurrent_version_expiration) > 0] == [21]
    error_message = "Noncurrent versions must expire after noncurrent_version_expiration_days."
  }

  assert {
    condition = anytrue([for rule in aws_s3_bucket_lifecycle_configuration.images.rule :
      rule.status == "Enabled" && rule.abort_incomplete_multipart_upload[0].days_after_initiation == 7 if length(rule.abort_incomplete_multipart_upload) > 0
    ])
    error_message = "Incomplete multipart uploads must be aborted."
  }
}

run "originals_may_expire_only_after_three_years" {
  command = plan

  variables {
    originals_expiration_days = 1825
  }

  assert {
    condition     = [for rule in aws_s3_bucket_lifecycle_configuration.images.rule : rule.expiration[0].days if rule.filter[0].prefix == "originals/"] == [1825]
    error_message = "originals_expiration_days must set the expiration of originals/."
  }
}

run "originals_expiring_within_three_years_is_refused" {
  command = plan

  variables {
    originals_expiration_days = 365
  }

  expect_failures = [var.originals_expiration_days]
}

run "lifecycle_follows_the_object_prefix" {
  command = plan

  variables {
    object_prefix = "pixelmill/"
  }

  assert {
    condition     = toset([for rule in aws_s3_bucket_lifecycle_configuration.images.rule : rule.filter[0].prefix if rule.id != "all-objects"]) == toset(["pixelmill/variants/", "pixelmill/originals/"])
    error_message = "Lifecycle filters must sit under object_prefix."
  }
}
