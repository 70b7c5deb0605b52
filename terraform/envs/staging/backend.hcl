# Backend settings of staging, passed at init:
#   terraform -chdir=terraform/envs/staging init -backend-config=backend.hcl
# The state bucket is made once per account, outside this configuration
# (versioned, SSE, public access blocked); put its name here.
bucket = "pixelmill-terraform-state"
key    = "pixelmill/staging/terraform.tfstate"
region = "eu-west-1"
