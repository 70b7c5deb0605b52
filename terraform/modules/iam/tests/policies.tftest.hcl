# The policy documents are rendered by the real provider, offline: the
# aws_iam_policy_document data source needs no AWS call, and these settings
# keep the provider from making any. The JSON that IAM would receive is
# decoded and checked.
provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  max_retries                 = 1
}

variables {
  name                     = "pixelmill-test"
  eks_oidc_provider_arn    = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
  eks_oidc_issuer_url      = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
  image_bucket_arn         = "arn:aws:s3:::pixelmill-test-images"
  image_bucket_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-1111-1111-1111-111111111111"
  github_repository        = "pixelmill/pixelmill"
  ci_allowed_branches      = ["main"]
  ci_allowed_environments  = ["staging", "production"]
  github_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  ecr_repository_arn       = "arn:aws:ecr:eu-west-1:123456789012:repository/pixelmill-test"
  vpc_id                   = "vpc-0123456789abcdef0"

  database_secret_arn         = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-abcdef"
  database_secret_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/22222222-2222-2222-2222-222222222222"
}

run "service_role_trusts_only_the_pixelmill_service_account" {
  command = plan

  assert {
    condition     = length(jsondecode(data.aws_iam_policy_document.irsa_trust["service"].json).Statement) == 1
    error_message = "The service trust policy must have a single statement."
  }

  assert {
    condition = alltrue([for statement in jsondecode(data.aws_iam_policy_document.irsa_trust["service"].json).Statement :
      statement.Effect == "Allow" &&
      toset(flatten([statement.Action])) == toset(["sts:AssumeRoleWithWebIdentity"]) &&
      statement.Principal == { Federated = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" } &&
      statement.Condition == {
        StringEquals = {
          "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:sub" = "system:serviceaccount:pixelmill:pixelmill"
          "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:aud" = "sts.amazonaws.com"
        }
      }
    ])
    error_message = "Only system:serviceaccount:pixelmill:pixelmill of this cluster, for STS, may assume the service role: ${data.aws_iam_policy_document.irsa_trust["service"].json}"
  }
}

run "service_policy_is_limited_to_the_image_bucket_and_its_key" {
  command = plan

  assert {
    # Compared as JSON: lists from the decoded policy and literal tuples are
    # different types to HCL even when they hold the same strings.
    condition = jsonencode({
      for statement in jsondecode(data.aws_iam_policy_document.service.json).Statement :
      statement.Sid => { actions = sort(flatten([statement.Action])), resources = sort(flatten([statement.Resource])) }
      }) == jsonencode({
      ListImagePrefix = {
        actions   = ["s3:ListBucket"]
        resources = ["arn:aws:s3:::pixelmill-test-images"]
      }
      ReadWriteImageObjects = {
        actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
        resources = ["arn:aws:s3:::pixelmill-test-images/*"]
      }
      UseImageBucketKey = {
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = ["arn:aws:kms:eu-west-1:123456789012:key/11111111-1111-1111-1111-111111111111"]
      }
    })
    error_message = "The service may only list the bucket, read/write/delete its objects and use its key: ${data.aws_iam_policy_document.service.json}"
  }

  assert {
    condition = alltrue([for statement in jsondecode(data.aws_iam_policy_document.service.json).Statement :
      statement.Effect == "Allow" && !anytrue([for action in flatten([statement.Action]) : strcontains(action, "*")])
    ])
    error_message = "No wildcard actions may be granted to the service."
  }

  assert {
    condition = [for statement in jsondecode(data.aws_iam_policy_document.service.json).Statement :
      statement.Condition if statement.Sid == "UseImageBucketKey"
    ] == [{ StringEquals = { "kms:ViaService" = "s3.eu-west-1.amazonaws.com" } }]
    error_message = "The bucket key may only be used through S3 in the region."
  }
}

run "service_policy_stays_inside_its_prefix" {
  command = plan

  variables {
    image_bucket_prefix = "pixelmill/"
  }

  assert {
    condition = [for statement in jsondecode(data.aws_iam_policy_document.service.json).Statement :
      statement.Resource if statement.Sid == "ReadWriteImageObjects"
    ] == ["arn:aws:s3:::pixelmill-test-images/pixelmill/*"]
    error_message = "Object access must be limited to the prefix."
  }

  assert {
    condition = [for statement in jsondecode(data.aws_iam_policy_document.service.json).Statement :
      statement.Condition if statement.Sid == "ListImagePrefix"
    ] == [{ StringLike = { "s3:prefix" = "pixelmill/*" } }]
    error_message = "Listing must be limited to the prefix."
  }
}

run "service_role_no_longer_reads_secrets_manager" {
  command = plan

  # The pods get DATABASE_URL from the Kubernetes Secret the External
  # Secrets Operator builds; only the operator's role reads the secret.
  assert {
    condition = !anytrue([for statement in jsondecode(data.aws_iam_policy_document.service.json).Statement :
      anytrue([for action in flatten([statement.Action]) : startswith(action, "secretsmanager:")])
    ])
    error_message = "The service role must not read Secrets Manager: ${data.aws_iam_policy_document.service.json}"
  }
}

run "lb_controller_role_trusts_only_its_service_account" {
  command = plan

  assert {
    condition = length(jsondecode(data.aws_iam_policy_document.irsa_trust["lb_controller"].json).Statement) == 1 && alltrue([
      for statement in jsondecode(data.aws_iam_policy_document.irsa_trust["lb_controller"].json).Statement :
      statement.Effect == "Allow" &&
      toset(flatten([statement.Action])) == toset(["sts:AssumeRoleWithWebIdentity"]) &&
      statement.Principal == { Federated = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" } &&
      statement.Condition == {
        StringEquals = {
          "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:sub" = "system:serviceaccount:kube-system:aws-load-balancer-controller"
          "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:aud" = "sts.amazonaws.com"
        }
      }
    ])
    error_message = "Only system:serviceaccount:kube-system:aws-load-balancer-controller, for STS, may assume the controller's role: ${data.aws_iam_policy_document.irsa_trust["lb_controller"].json}"
  }
}

run "lb_controller_policy_scopes_its_changes" {
  command = plan

  assert {
    condition = alltrue([for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement :
      statement.Effect == "Allow" && !anytrue([for action in flatten([statement.Action]) : strcontains(action, "*")])
    ])
    error_message = "The controller's policy names its actions, without wildcards."
  }

  assert {
    # Only reads, and the calls that have no resource-level permissions,
    # may use "*".
    condition = alltrue(flatten([for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement : [
      for action in flatten([statement.Action]) :
      can(regex("^(ec2|elasticloadbalancing):Describe", action)) || contains(["acm:ListCertificates", "shield:GetSubscriptionState", "elasticloadbalancing:SetWebAcl"], action)
    ] if contains(flatten([statement.Resource]), "*")]))
    error_message = "Only Describe calls and calls without resource-level permissions may use Resource \"*\": ${data.aws_iam_policy_document.lb_controller.json}"
  }

  assert {
    # Resources it creates must carry the cluster tag in the request.
    condition = alltrue([for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement :
      try(statement.Condition.Null["aws:RequestTag/elbv2.k8s.aws/cluster"], null) == "false"
      if length(setintersection(toset(flatten([statement.Action])), toset(["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"]))) > 0
    ])
    error_message = "Load balancers and target groups may only be created with the elbv2.k8s.aws/cluster tag."
  }

  assert {
    # Deleting or reconfiguring load balancers, target groups and security
    # groups needs the cluster tag on the resource.
    condition = alltrue([for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement :
      try(statement.Condition.Null["aws:ResourceTag/elbv2.k8s.aws/cluster"], null) == "false"
      if length(setintersection(toset(flatten([statement.Action])), toset([
        "ec2:DeleteSecurityGroup",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:SetSecurityGroups",
      ]))) > 0
    ])
    error_message = "The controller may only delete or change load balancers, target groups and security groups it tagged."
  }

  assert {
    condition = [for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement :
      statement.Condition if contains(flatten([statement.Action]), "ec2:AuthorizeSecurityGroupIngress")
    ] == [{ ArnEquals = { "ec2:Vpc" = "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0123456789abcdef0" } }]
    error_message = "Security group rules may only be changed in the cluster's VPC."
  }

  assert {
    condition = [for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement :
      { resource = statement.Resource, condition = statement.Condition } if contains(flatten([statement.Action]), "iam:CreateServiceLinkedRole")
      ] == [{
        resource  = "arn:aws:iam::123456789012:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"
        condition = { StringEquals = { "iam:AWSServiceName" = "elasticloadbalancing.amazonaws.com" } }
    }]
    error_message = "The controller may only create the ELB service-linked role."
  }

  assert {
    condition = alltrue([for action in ["wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "elasticloadbalancing:SetWebAcl", "acm:DescribeCertificate", "acm:ListCertificates", "shield:GetSubscriptionState"] :
      anytrue([for statement in jsondecode(data.aws_iam_policy_document.lb_controller.json).Statement : contains(flatten([statement.Action]), action)])
    ])
    error_message = "The controller needs WAFv2 association, certificate discovery and the Shield subscription state."
  }
}

run "external_secrets_role_trusts_only_its_service_account" {
  command = plan

  assert {
    condition = length(jsondecode(data.aws_iam_policy_document.irsa_trust["external_secrets"].json).Statement) == 1 && alltrue([
      for statement in jsondecode(data.aws_iam_policy_document.irsa_trust["external_secrets"].json).Statement :
      statement.Effect == "Allow" &&
      toset(flatten([statement.Action])) == toset(["sts:AssumeRoleWithWebIdentity"]) &&
      statement.Principal == { Federated = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" } &&
      statement.Condition == {
        StringEquals = {
          "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:sub" = "system:serviceaccount:external-secrets:external-secrets"
          "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF:aud" = "sts.amazonaws.com"
        }
      }
    ])
    error_message = "Only system:serviceaccount:external-secrets:external-secrets, for STS, may assume the operator's role: ${data.aws_iam_policy_document.irsa_trust["external_secrets"].json}"
  }
}

run "external_secrets_may_read_only_the_database_secret" {
  command = plan

  assert {
    condition = jsonencode({
      for statement in jsondecode(data.aws_iam_policy_document.external_secrets.json).Statement :
      statement.Sid => { actions = sort(flatten([statement.Action])), resources = flatten([statement.Resource]), condition = try(statement.Condition, null) }
      }) == jsonencode({
      ReadDatabaseSecret = {
        actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
        resources = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-abcdef"]
        condition = null
      }
      DecryptDatabaseSecret = {
        actions   = ["kms:Decrypt"]
        resources = ["arn:aws:kms:eu-west-1:123456789012:key/22222222-2222-2222-2222-222222222222"]
        condition = { StringEquals = { "kms:ViaService" = "secretsmanager.eu-west-1.amazonaws.com" } }
      }
    })
    error_message = "The operator may read exactly the database secret and decrypt it only through Secrets Manager: ${data.aws_iam_policy_document.external_secrets.json}"
  }
}

run "external_secrets_without_a_customer_key_gets_no_kms_grant" {
  command = plan

  variables {
    database_secret_kms_key_arn = null
  }

  assert {
    condition     = [for statement in jsondecode(data.aws_iam_policy_document.external_secrets.json).Statement : statement.Sid] == ["ReadDatabaseSecret"]
    error_message = "Without a customer managed key only the secret itself is granted."
  }
}

run "a_secret_that_is_not_a_secrets_manager_arn_is_refused" {
  command = plan

  variables {
    database_secret_arn = "*"
  }

  expect_failures = [var.database_secret_arn]
}

run "ci_role_trusts_only_allowed_branches_and_environments_of_the_repository" {
  command = plan

  assert {
    condition = alltrue([for statement in jsondecode(data.aws_iam_policy_document.ci_trust.json).Statement :
      statement.Effect == "Allow" &&
      statement.Action == "sts:AssumeRoleWithWebIdentity" &&
      statement.Principal == { Federated = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" } &&
      keys(statement.Condition) == ["StringEquals"] &&
      statement.Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com" &&
      toset(statement.Condition.StringEquals["token.actions.githubusercontent.com:sub"]) == toset([
        "repo:pixelmill/pixelmill:ref:refs/heads/main",
        "repo:pixelmill/pixelmill:environment:staging",
        "repo:pixelmill/pixelmill:environment:production",
      ])
    ]) && length(jsondecode(data.aws_iam_policy_document.ci_trust.json).Statement) == 1
    error_message = "Only exact subjects of this repository (allowed branches and environments) may assume the CI role: ${data.aws_iam_policy_document.ci_trust.json}"
  }
}

run "ci_role_may_only_push_to_the_repository" {
  command = plan

  assert {
    condition = jsonencode({
      for statement in jsondecode(data.aws_iam_policy_document.ci.json).Statement :
      statement.Sid => { actions = sort(flatten([statement.Action])), resources = flatten([statement.Resource]) }
      }) == jsonencode({
      RegistryLogin = {
        actions   = ["ecr:GetAuthorizationToken"]
        resources = ["*"]
      }
      PushToTheRepository = {
        actions = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:CompleteLayerUpload",
          "ecr:DescribeImages",
          "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload",
          "ecr:PutImage",
          "ecr:UploadLayerPart",
        ]
        resources = ["arn:aws:ecr:eu-west-1:123456789012:repository/pixelmill-test"]
      }
    })
    error_message = "CI may log in to ECR and push to the one repository, nothing else: ${data.aws_iam_policy_document.ci.json}"
  }
}

run "wildcard_branches_are_refused" {
  command = plan

  variables {
    ci_allowed_branches = ["release/*"]
  }

  expect_failures = [var.ci_allowed_branches]
}

run "a_ci_role_nobody_may_assume_is_refused" {
  command = plan

  variables {
    ci_allowed_branches     = []
    ci_allowed_environments = []
  }

  expect_failures = [var.ci_allowed_environments]
}
