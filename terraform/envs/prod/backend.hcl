# Backend settings of prod, passed at init:
#   terraform -chdir=terraform/envs/prod init -backend-config=backend.hcl
# The state bucket is made once per account, outside this configuration
# (versioned, SSE, public access blocked); put its name here.
bucket = "pixelmill-terraform-state"
key    = "pixelmill/prod/terraform.tfstate"
region = "eu-west-1"
