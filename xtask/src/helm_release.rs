//! The Helm driver of a release: `helm upgrade --install --wait` on the current kubeconfig
//! context, undone with `helm rollback` to the revision before (or `helm uninstall` after a
//! first install) when the pods never become Ready or the smoke test fails. `deploy` of a
//! `helm` environment (deploy/local) and `cargo xtask e2e` ship through it, by the same
//! [`release::ship`](crate::release::ship) as the Argo CD environments.

use crate::cmd::Cmd;
use crate::context::Context;
use crate::release::Driver;
use crate::values::Digest;
use crate::{smoke, verified};

/// One Helm release of the chart.
pub(crate) struct HelmRelease {
    /// The helm program.
    pub(crate) helm: String,
    pub(crate) release: String,
    pub(crate) namespace: String,
    /// The chart's Deployment (its full name).
    pub(crate) deployment: String,
    /// The chart's directory, relative to the repository root.
    pub(crate) chart: String,
    /// `-f` files, in order.
    pub(crate) values: Vec<String>,
    /// `--set-string` assignments, after the files.
    pub(crate) sets: Vec<String>,
    /// Budget of the upgrade's `--wait`, and of the rollback's.
    pub(crate) timeout_seconds: u64,
    pub(crate) smoke: SmokeTarget,
    /// The API key of the smoke test's writes; else `PIXELMILL_API_KEY`, else one made in a
    /// pod of the release (`pixelmill keys create`).
    pub(crate) api_key: Option<String>,
    /// What a release that passed records, if anything.
    pub(crate) record: Option<Record>,
    progress: Progress,
}

/// Where the smoke test goes.
pub(crate) enum SmokeTarget {
    Url(String),
    /// The ClusterIP and `http` port of this Service (a cluster whose Services route from the
    /// host).
    Service(String),
}

/// The verified record a passed release writes (verified.rs).
pub(crate) struct Record {
    pub(crate) env: String,
    pub(crate) commit: String,
    pub(crate) digest: Digest,
}

#[derive(Default)]
struct Progress {
    /// The upgrade was started (a failed one still leaves a revision).
    started: bool,
    /// The release's revision before it: none for a first install.
    before: Option<u64>,
}

impl HelmRelease {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        helm: &str,
        release: &str,
        namespace: &str,
        deployment: &str,
        values: Vec<String>,
        sets: Vec<String>,
        timeout_seconds: u64,
        smoke: SmokeTarget,
        record: Option<Record>,
    ) -> HelmRelease {
        HelmRelease {
            helm: helm.to_owned(),
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            deployment: deployment.to_owned(),
            chart: "helm/pixelmill".to_owned(),
            values,
            sets,
            timeout_seconds,
            smoke,
            api_key: None,
            record,
            progress: Progress::default(),
        }
    }

    fn timeout(&self) -> String {
        format!("{}s", self.timeout_seconds)
    }

    fn helm(&self, args: &[&str]) -> Cmd {
        Cmd::new(&self.helm).args(args.iter().copied()).args(["-n", &self.namespace])
    }

    /// The release's current revision, or none when it is not installed.
    fn revision(&self, ctx: &Context) -> Result<Option<u64>, String> {
        let history = self.helm(&["history", &self.release, "--max", "1", "-o", "json"]);
        let text = match ctx.output(&history, "[]") {
            Ok(text) => text,
            Err(e) if e.contains("not found") => return Ok(None),
            Err(e) => return Err(e),
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("helm history printed no JSON ({e}): {text}"))?;
        Ok(json.as_array().and_then(|revisions| revisions.last()).and_then(|last| last["revision"].as_u64()))
    }

    /// Waits until the rollout is complete and the pods it replaced are gone. `helm upgrade
    /// --wait` returns once the new pods are ready, while the old ones still serve through the
    /// Service for their preStop pause and drain: a smoke test then could pass on the old
    /// release (seen on a real cluster: a release whose uploads all failed passed its smoke
    /// test 0.3 s after the upgrade). Once no old pod exists, every answer is the new one's.
    fn old_pods_gone(&self, ctx: &Context) -> Result<(), String> {
        let kubectl = || Cmd::new("kubectl").args(["-n", &self.namespace]);
        let timeout = format!("--timeout={}", self.timeout());
        ctx.run(&kubectl().args(["rollout", "status", &format!("deployment/{}", self.deployment), &timeout]))?;
        let selector = format!("app.kubernetes.io/name=pixelmill,app.kubernetes.io/instance={}", self.release);
        let terminating = ctx.output(
            &kubectl().args([
                "get",
                "pods",
                "-l",
                &selector,
                "-o",
                "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name}{\"\\n\"}{end}",
            ]),
            "",
        )?;
        let pods: Vec<String> = terminating.split_whitespace().map(|name| format!("pod/{name}")).collect();
        if pods.is_empty() {
            return Ok(());
        }
        ctx.run(&kubectl().args(["wait", "--for=delete", &timeout]).args(pods))
    }

    /// The base URL of the smoke test.
    fn base_url(&self, ctx: &Context) -> Result<String, String> {
        match &self.smoke {
            SmokeTarget::Url(url) => Ok(url.clone()),
            SmokeTarget::Service(service) => {
                let path = "jsonpath={.spec.clusterIP}:{.spec.ports[?(@.name==\"http\")].port}";
                let cmd = Cmd::new("kubectl").args(["-n", &self.namespace, "get", "service", service, "-o", path]);
                let address = ctx.output(&cmd, "<cluster-ip>:80")?;
                if address.starts_with(':') || address.ends_with(':') {
                    return Err(format!("service {service} has no ClusterIP or no port named http: `{address}`"));
                }
                Ok(format!("http://{address}"))
            }
        }
    }

    /// The API key of the smoke test: given, from the environment, or made in a pod.
    fn api_key(&self, ctx: &Context) -> Result<Option<String>, String> {
        if let Some(key) = self.api_key.clone().or_else(|| ctx.var("PIXELMILL_API_KEY")).filter(|k| !k.is_empty()) {
            return Ok(Some(key));
        }
        let SmokeTarget::Service(service) = &self.smoke else { return Ok(None) };
        let deployment = format!("deploy/{service}");
        let cmd = Cmd::new("kubectl").args(["-n", &self.namespace, "exec", &deployment, "--"]).args([
            "pixelmill",
            "keys",
            "create",
            "--name",
            "smoke",
        ]);
        let printed = ctx.output(&cmd, "<key>")?;
        let key = printed.lines().last().unwrap_or_default().trim().to_owned();
        if key.is_empty() {
            return Err(format!("`{cmd}` printed no key"));
        }
        Ok(Some(key))
    }
}

impl Driver for HelmRelease {
    fn release(&mut self, ctx: &Context) -> Result<(), String> {
        self.progress.before = self.revision(ctx)?;
        let mut cmd = self.helm(&["upgrade", "--install", &self.release, &self.chart, "--create-namespace"]);
        for file in &self.values {
            cmd = cmd.args(["-f", file]);
        }
        for set in &self.sets {
            cmd = cmd.args(["--set-string", set]);
        }
        cmd = cmd.args(["--wait", "--timeout", &self.timeout()]);
        self.progress.started = true;
        ctx.run(&cmd)
    }

    fn verify(&self, ctx: &Context) -> Result<(), String> {
        self.old_pods_gone(ctx)?;
        let base = self.base_url(ctx)?;
        let key = self.api_key(ctx)?;
        smoke::run_with_key(ctx, &base, key.as_deref())
    }

    fn roll_back(&self, ctx: &Context) -> Result<String, String> {
        if !self.progress.started {
            return Ok("nothing was released".to_owned());
        }
        match self.progress.before {
            Some(revision) => {
                let revision = revision.to_string();
                let cmd = self.helm(&["rollback", &self.release, &revision, "--wait", "--timeout", &self.timeout()]);
                ctx.run(&cmd)?;
                Ok(format!("rolled {} back to revision {revision}", self.release))
            }
            None => {
                ctx.run(&self.helm(&["uninstall", &self.release, "--wait", "--timeout", &self.timeout()]))?;
                Ok(format!("uninstalled {} (it was its first install)", self.release))
            }
        }
    }

    fn record(&self, ctx: &Context) -> Result<(), String> {
        let Some(record) = &self.record else {
            ctx.say("nothing to record");
            return Ok(());
        };
        let tag = verified::record_here(ctx, &record.env, &record.commit, &record.digest)?;
        ctx.say(&format!("recorded {} as verified in {} ({tag})", record.digest, record.env));
        Ok(())
    }
}
