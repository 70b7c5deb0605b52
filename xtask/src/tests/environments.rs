//! deploy/<env>/environment.toml agrees with the files its values come from, and the real
//! Terraform accepts each environment's root module (offline: no backend, providers from the
//! local mirror).

use super::*;
use crate::environment::Environment;

const ENVS: [&str; 2] = ["staging", "prod"];

fn repo_context() -> Context {
    Context::new(crate::cmd::project_root(), BTreeMap::new(), Output::Memory(RefCell::default()))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(crate::cmd::project_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The scalar at `path` in a YAML file of two-space indented mappings.
fn yaml(text: &str, path: &[&str]) -> String {
    let mut depth = 0;
    for line in text.lines() {
        let indent = "  ".repeat(depth);
        let rest = line.strip_prefix(&indent).and_then(|rest| rest.strip_prefix(path[depth]));
        if let Some(value) = rest.and_then(|rest| rest.strip_prefix(':')) {
            if depth + 1 == path.len() {
                return value.trim().trim_matches('"').to_owned();
            }
            depth += 1;
        }
    }
    panic!("no {path:?}")
}

/// `key = "value"` of an HCL or tfvars file.
fn hcl(text: &str, key: &str) -> String {
    optional_hcl(text, key).unwrap_or_else(|| panic!("no {key}"))
}

fn optional_hcl(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The text of `variable "<name>" { ... }` in a variables.tf (up to the next block).
fn variable_block<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text.find(&format!("variable \"{name}\" {{")).unwrap_or_else(|| panic!("no variable {name}"));
    let block = &text[start..];
    &block[..block.find("\n}").unwrap_or(block.len())]
}

#[test]
fn environment_files_agree_with_terraform_helm_and_argo_cd() {
    let ctx = repo_context();
    for name in ENVS {
        let env = Environment::load(&ctx, name).unwrap();
        let application = read(&format!("deploy/{name}/application.yaml"));
        assert_eq!(env.argocd.app, yaml(&application, &["metadata", "name"]), "{name}");
        assert_eq!(env.cluster.namespace, yaml(&application, &["spec", "destination", "namespace"]), "{name}");
        assert_eq!(env.argocd.cluster, yaml(&application, &["spec", "destination", "name"]), "{name}");
        assert_eq!(env.cluster.release, yaml(&application, &["spec", "source", "helm", "releaseName"]), "{name}");
        assert!(application.contains(&format!("- ../../deploy/{name}/values.yaml")), "{name}");

        let values = read(&format!("deploy/{name}/values.yaml"));
        assert_eq!(env.image.repository, crate::values::repository(&values).unwrap(), "{name}");
        crate::values::digest(&values).unwrap();
        assert_eq!(env.smoke.url, format!("https://{}", yaml(&values, &["ingress", "host"])), "{name}");
        assert!(env.image.repository.starts_with(&format!("{}.dkr.ecr.{}.", env.aws.account_id, env.aws.region)));
        if yaml(&values, &["rollouts", "strategy"]) == "blueGreen" {
            let automatic = yaml(&values, &["rollouts", "blueGreen", "autoPromotionEnabled"]) == "true";
            assert_eq!(env.release.auto_promote, automatic, "{name}: xtask promotes as the Rollout would");
        }

        let tfvars = read(&format!("terraform/envs/{name}/terraform.tfvars"));
        assert_eq!(env.aws.region, hcl(&tfvars, "region"), "{name}");
        assert_eq!(env.cluster.name, format!("pixelmill-{}", hcl(&tfvars, "environment")), "{name}");
        assert_eq!(env.terraform.dir, format!("terraform/envs/{name}"));
        let backend = read(&format!("{}/{}", env.terraform.dir, env.terraform.backend_config));
        assert_eq!(hcl(&backend, "region"), env.aws.region, "{name}");

        // The service stores into the bucket Terraform makes (no image_bucket_name: the default
        // name), at the top, where the lifecycle rules and the IAM policy apply.
        assert!(!tfvars.contains("image_bucket_name"), "{name}");
        let bucket = format!("s3://pixelmill-{}-images-{}", hcl(&tfvars, "environment"), env.aws.account_id);
        assert_eq!(yaml(&values, &["config", "storage"]), bucket, "{name}");
        // Every environment pulls from the one repository Terraform makes or looks up.
        let variables = read(&format!("terraform/envs/{name}/variables.tf"));
        let repository = optional_hcl(&tfvars, "ecr_repository_name")
            .unwrap_or_else(|| hcl(variable_block(&variables, "ecr_repository_name"), "default"));
        assert_eq!(env.image.repository.rsplit_once('/').unwrap().1, repository, "{name}");
        assert_eq!(hcl(&backend, "key"), format!("pixelmill/{name}/terraform.tfstate"));
        assert!(!hcl(&backend, "bucket").is_empty());
    }
    // One environment creates the shared repository: the one deployed first.
    let creators: Vec<&str> = ENVS
        .into_iter()
        .filter(|name| {
            hcl(&read(&format!("terraform/envs/{name}/terraform.tfvars")), "ecr_create_repository") == "true"
        })
        .collect();
    assert_eq!(creators, ["staging"]);
    let appproject = read("deploy/argocd/appproject.yaml");
    for name in ENVS {
        let env = Environment::load(&ctx, name).unwrap();
        assert!(
            appproject.contains(&format!("- name: {}\n      namespace: {}", env.argocd.cluster, env.cluster.namespace))
        );
    }
}

#[test]
fn environment_files_are_checked_when_loaded() {
    let fixture = Fixture::new("env-check");
    let ctx = fixture.context();
    assert!(Environment::load(&ctx, "../prod").unwrap_err().contains("is not an environment name"));
    let path = fixture.repo.join("deploy/staging/environment.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("account_id = \"123456789012\"", "account_id = \"1234\"")).unwrap();
    assert!(
        Environment::load(&ctx, "staging").unwrap_err().contains("aws.account_id `1234` is not a 12-digit account id")
    );
    std::fs::write(&path, text.replace("[smoke]", "colour = \"blue\"\n[smoke]")).unwrap();
    let error = Environment::load(&ctx, "staging").unwrap_err();
    assert!(
        error.starts_with("deploy/staging/environment.toml: ") && error.contains("unknown field `colour`"),
        "{error}"
    );
}

fn terraform() -> PathBuf {
    which("terraform")
        .or_else(|| Some(PathBuf::from("/usr/local/bin/terraform")).filter(|path| path.is_file()))
        .unwrap_or_else(|| {
            panic!("terraform is not installed: these tests need Terraform 1.11 with the aws provider in /opt/tf-plugins (README: set up)")
        })
}

#[test]
fn terraform_validates_the_root_module_of_each_environment() {
    let plugins = Path::new("/opt/tf-plugins");
    assert!(plugins.is_dir(), "the Terraform provider mirror /opt/tf-plugins is missing (see .ci/terraform.sh)");
    let ctx = repo_context();
    for name in ENVS {
        let env = Environment::load(&ctx, name).unwrap();
        let data = TempDir::new(&format!("tf-{name}"));
        let run = |args: &[&str]| {
            let out = Command::new(terraform())
                .arg(format!("-chdir={}", env.terraform.dir))
                .args(args)
                .current_dir(crate::cmd::project_root())
                .env("TF_DATA_DIR", data.path())
                .env("CHECKPOINT_DISABLE", "1")
                .env("TF_IN_AUTOMATION", "1")
                .env("TF_CLI_CONFIG_FILE", "/dev/null")
                .output()
                .unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "terraform {args:?} in {}: {said}", env.terraform.dir);
            said
        };
        run(&[
            "init",
            "-backend=false",
            "-plugin-dir=/opt/tf-plugins",
            "-lockfile=readonly",
            "-input=false",
            "-no-color",
        ]);
        let validated = run(&["validate", "-no-color"]);
        assert!(validated.contains("The configuration is valid."), "{validated}");
    }
}

#[test]
fn bootstrap_makes_the_secret_store_the_chart_names() {
    let chart = read("helm/pixelmill/values.yaml");
    let store = ["secrets", "externalSecret", "secretStoreRef"];
    assert_eq!(yaml(&chart, &[&store[..], &["name"]].concat()), crate::bootstrap::SECRET_STORE);
    assert_eq!(yaml(&chart, &[&store[..], &["kind"]].concat()), "ClusterSecretStore");
    for name in ENVS {
        assert!(!read(&format!("deploy/{name}/values.yaml")).contains("secretStoreRef"), "{name} names another store");
    }
}
