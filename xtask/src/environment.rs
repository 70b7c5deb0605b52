//! An *environment* (staging, prod, local) as `cargo xtask` sees it:
//! `deploy/<env>/environment.toml`, parsed once into a typed value. Its `release.driver` says
//! how it is released:
//!
//! - `argocd` (the default; staging, prod): an [`Environment`], released through git and Argo CD
//!   on EKS. Its values agree with the files they come from (the Terraform env, the Argo CD
//!   Application, the Helm values); the tests check that they do.
//! - `helm` (local): a [`HelmEnvironment`], released with `helm upgrade --install` on the
//!   cluster of the current kubeconfig context, its image loaded onto the nodes instead of
//!   pushed to a registry. Only `deploy` takes it.

use serde::Deserialize;

use crate::context::{self, Context};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Environment {
    /// Name of the environment: the folder under deploy/ and terraform/envs/.
    pub(crate) name: String,
    pub(crate) aws: Aws,
    pub(crate) cluster: Cluster,
    pub(crate) image: Image,
    pub(crate) argocd: ArgoCd,
    pub(crate) release: Release,
    pub(crate) terraform: Terraform,
    pub(crate) smoke: Smoke,
    pub(crate) hpa_test: HpaTest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Aws {
    /// The only account whose credentials may act on this environment.
    pub(crate) account_id: String,
    pub(crate) region: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cluster {
    /// EKS cluster name; also the kubeconfig context name xtask creates and uses.
    pub(crate) name: String,
    /// Namespace of the release.
    pub(crate) namespace: String,
    /// Helm release name Argo CD renders the chart with.
    pub(crate) release: String,
    /// Name of the Argo Rollout (and of the HPA) the chart makes.
    pub(crate) rollout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Image {
    /// Repository URL (registry/name), pushed to by xtask and pulled from by the chart.
    pub(crate) repository: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArgoCd {
    /// Argo CD API server the argocd CLI talks to (gRPC-web).
    pub(crate) server: String,
    /// The environment's Application.
    pub(crate) app: String,
    /// Name of the cluster as registered in Argo CD (the Application's destination.name).
    pub(crate) cluster: String,
}

/// How an environment is released.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Driver {
    /// Git and Argo CD: the values commit is the release.
    #[default]
    Argocd,
    /// `helm upgrade --install` on the current cluster.
    Helm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    /// How the environment is released; `argocd` here (see [`HelmEnvironment`] for `helm`).
    #[serde(default)]
    pub(crate) driver: Driver,
    /// Branches a deploy may be made from.
    pub(crate) allowed_branches: Vec<String>,
    /// Budget for each wait (Rollout, Argo CD health), in seconds.
    pub(crate) timeout_seconds: u64,
    /// Promote a Rollout that waits for a promotion (`kubectl argo rollouts promote`) once its
    /// analysis passed; false leaves the promotion to a person until the timeout.
    pub(crate) auto_promote: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Terraform {
    /// The env's root module, relative to the repository root.
    pub(crate) dir: String,
    /// Backend settings file (bucket, key, region), relative to `dir`.
    pub(crate) backend_config: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Smoke {
    /// Public base URL of the service.
    pub(crate) url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HpaTest {
    /// Load stages of the test Job, "DURATION:RATE,..." as pixelmill-load takes them.
    pub(crate) stages: String,
    /// p99 latency the service must be back under once it has scaled, in milliseconds.
    pub(crate) slo_p99_ms: f64,
    /// Prometheus as "namespace/service:port", queried through the API server's proxy.
    pub(crate) prometheus: String,
}

/// An environment released with Helm on the current kubeconfig context (`release.driver =
/// "helm"`): a cluster without Argo CD, a laptop's or a CI job's. Its image goes to the nodes
/// with a load command instead of a registry push.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HelmEnvironment {
    pub(crate) name: String,
    pub(crate) cluster: HelmCluster,
    pub(crate) image: LoadedImage,
    pub(crate) release: HelmRelease,
    pub(crate) smoke: HelmSmoke,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HelmCluster {
    /// Namespace of the release (created when missing).
    pub(crate) namespace: String,
    /// Helm release name.
    pub(crate) release: String,
    /// The chart's Deployment: its full name for that release.
    pub(crate) deployment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadedImage {
    /// The name the image gets on the nodes (the values file's image.repository).
    pub(crate) repository: String,
    /// The command that imports an image archive into the nodes' container runtime; the
    /// archive's path is its last argument (`kind load image-archive`, `k3d image import`).
    /// `PIXELMILL_IMAGE_LOAD` overrides it.
    pub(crate) load: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HelmRelease {
    pub(crate) driver: Driver,
    /// Branches a deploy may be made from; `*` allows any.
    pub(crate) allowed_branches: Vec<String>,
    /// Budget of `helm upgrade --wait` and of a rollback, in seconds.
    pub(crate) timeout_seconds: u64,
    /// Values files, relative to the repository root, in order.
    pub(crate) values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HelmSmoke {
    /// Base URL of the service, when the host reaches it at a fixed address.
    pub(crate) url: Option<String>,
    /// Else the Service whose ClusterIP and `http` port the smoke test goes to (a cluster
    /// whose Services route from the host).
    pub(crate) service: Option<String>,
}

/// An environment of either driver, for `deploy`.
pub(crate) enum Target {
    Argocd(Box<Environment>),
    Helm(Box<HelmEnvironment>),
}

/// Reads `deploy/<name>/environment.toml` as whichever driver it names.
pub(crate) fn load(ctx: &Context, name: &str) -> Result<Target, String> {
    let (path, text) = read(ctx, name)?;
    if driver_of(&text, &path)? == Driver::Argocd {
        return Environment::load(ctx, name).map(|env| Target::Argocd(Box::new(env)));
    }
    let env: HelmEnvironment = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    env.check().map_err(|e| format!("{path}: {e}"))?;
    if env.name != name {
        return Err(format!("{path}: name is `{}`, expected `{name}`", env.name));
    }
    Ok(Target::Helm(Box::new(env)))
}

fn read(ctx: &Context, name: &str) -> Result<(String, String), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("`{name}` is not an environment name (lowercase letters, digits, -)"));
    }
    let path = format!("deploy/{name}/environment.toml");
    if !ctx.root.join(&path).is_file() {
        return Err(format!("unknown environment `{name}`: {path} does not exist"));
    }
    let text = context::read_file(ctx, &path)?;
    Ok((path, text))
}

fn driver_of(text: &str, path: &str) -> Result<Driver, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("{path}: {e}"))?;
    match table.get("release").and_then(|release| release.get("driver")) {
        None => Ok(Driver::Argocd),
        Some(value) => value.clone().try_into().map_err(|e| format!("{path}: release.driver: {e}")),
    }
}

impl HelmEnvironment {
    fn check(&self) -> Result<(), String> {
        if self.release.driver != Driver::Helm {
            return Err("release.driver must be \"helm\" here".to_owned());
        }
        match (&self.smoke.url, &self.smoke.service) {
            (Some(url), None) if url.starts_with("https://") || url.starts_with("http://") => {}
            (Some(url), None) => return Err(format!("smoke.url `{url}` is not an http(s) URL")),
            (None, Some(service)) if !service.is_empty() => {}
            _ => return Err("set exactly one of smoke.url and smoke.service".to_owned()),
        }
        if self.release.allowed_branches.is_empty() {
            return Err("release.allowed_branches is empty (`*` allows any branch)".to_owned());
        }
        if self.release.timeout_seconds == 0 {
            return Err("release.timeout_seconds must be positive".to_owned());
        }
        if self.release.values.is_empty() {
            return Err("release.values names no values file".to_owned());
        }
        if self.image.repository.is_empty() || self.image.load.trim().is_empty() {
            return Err("image.repository and image.load must be set".to_owned());
        }
        Ok(())
    }
}

impl Environment {
    /// Reads and checks `deploy/<name>/environment.toml` of an Argo CD environment; an
    /// environment of another driver is refused with what does take it.
    pub(crate) fn load(ctx: &Context, name: &str) -> Result<Environment, String> {
        let (path, text) = read(ctx, name)?;
        if driver_of(&text, &path)? == Driver::Helm {
            return Err(format!(
                "{name} is released with Helm (release.driver = \"helm\" in {path}): only `deploy` takes it; promote, rollback, bootstrap, infra and hpa-test work on Argo CD environments"
            ));
        }
        let env: Environment = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        env.check().map_err(|e| format!("{path}: {e}"))?;
        if env.name != name {
            return Err(format!("{path}: name is `{}`, expected `{name}`", env.name));
        }
        Ok(env)
    }

    fn check(&self) -> Result<(), String> {
        if self.release.driver != Driver::Argocd {
            return Err("release.driver must be \"argocd\" here".to_owned());
        }
        if self.aws.account_id.len() != 12 || !self.aws.account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("aws.account_id `{}` is not a 12-digit account id", self.aws.account_id));
        }
        if !self.image.repository.contains('/') {
            return Err(format!("image.repository `{}` is not registry/name", self.image.repository));
        }
        if !(self.smoke.url.starts_with("https://") || self.smoke.url.starts_with("http://")) {
            return Err(format!("smoke.url `{}` is not an http(s) URL", self.smoke.url));
        }
        if self.release.allowed_branches.is_empty() {
            return Err("release.allowed_branches is empty".to_owned());
        }
        if self.release.timeout_seconds == 0 {
            return Err("release.timeout_seconds must be positive".to_owned());
        }
        self.prometheus_service()?;
        Ok(())
    }

    /// deploy/<env>/values.yaml, the file Argo CD renders the chart with.
    pub(crate) fn values_path(&self) -> String {
        format!("deploy/{}/values.yaml", self.name)
    }

    /// The registry host of the repository (what `docker login` takes).
    pub(crate) fn registry(&self) -> &str {
        self.image.repository.split_once('/').map_or("", |(registry, _)| registry)
    }

    /// The repository's name inside the registry (what `aws ecr` takes).
    pub(crate) fn repository_name(&self) -> &str {
        self.image.repository.split_once('/').map_or("", |(_, name)| name)
    }

    /// (namespace, service, port) of Prometheus.
    pub(crate) fn prometheus_service(&self) -> Result<(&str, &str, &str), String> {
        let bad = || format!("hpa_test.prometheus `{}` is not namespace/service:port", self.hpa_test.prometheus);
        let (namespace, rest) = self.hpa_test.prometheus.split_once('/').ok_or_else(bad)?;
        let (service, port) = rest.split_once(':').ok_or_else(bad)?;
        Ok((namespace, service, port))
    }

    /// `--context <cluster>`: every kubectl call names the environment's cluster, so a
    /// kubeconfig pointing elsewhere can never receive a promote or an abort.
    pub(crate) fn kube_context(&self) -> [&str; 2] {
        ["--context", &self.cluster.name]
    }

    /// `--server <server> --grpc-web` for every argocd call.
    pub(crate) fn argocd_server(&self) -> [&str; 3] {
        ["--server", &self.argocd.server, "--grpc-web"]
    }
}
