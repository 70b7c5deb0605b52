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

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
}

variables {
  name = "pixelmill-test"
}

run "repository_is_immutable_scanned_and_encrypted" {
  command = plan

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE"
    error_message = "Tags must be immutable."
  }

  assert {
    condition     = aws_ecr_repository.this.image_scanning_configuration[0].scan_on_push
    error_message = "Images must be scanned on push."
  }

  assert {
    condition     = aws_ecr_repository.this.encryption_configuration[0].encryption_type == "KMS" && aws_ecr_repository.this.encryption_configuration[0].kms_key == aws_kms_key.this.arn
    error_message = "Images must be encrypted with the module's KMS key."
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation && !aws_ecr_repository.this.force_delete
    error_message = "The key must rotate and the repository must not be deletable while it holds images."
  }
}

run "lifecycle_expires_untagged_and_keeps_the_newest" {
  command = plan

  variables {
    images_to_keep             = 30
    untagged_image_expiry_days = 3
  }

  assert {
    condition = [for rule in jsondecode(aws_ecr_lifecycle_policy.this.policy).rules : rule.selection if rule.selection.tagStatus == "untagged"] == [{
      tagStatus   = "untagged"
      countType   = "sinceImagePushed"
      countUnit   = "days"
      countNumber = 3
    }]
    error_message = "Untagged images must expire after untagged_image_expiry_days."
  }

  assert {
    condition = [for rule in jsondecode(aws_ecr_lifecycle_policy.this.policy).rules : rule.selection if rule.selection.tagStatus == "any"] == [{
      tagStatus   = "any"
      countType   = "imageCountMoreThan"
      countNumber = 30
    }]
    error_message = "Only the newest images_to_keep images must be kept."
  }

  assert {
    condition     = alltrue([for rule in jsondecode(aws_ecr_lifecycle_policy.this.policy).rules : rule.action.type == "expire"])
    error_message = "Lifecycle rules only expire images."
  }
}

run "too_few_images_kept_is_refused" {
  command = plan

  variables {
    images_to_keep = 2
  }

  expect_failures = [var.images_to_keep]
}
