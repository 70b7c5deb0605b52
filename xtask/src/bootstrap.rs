//! `cargo xtask bootstrap <env>`: makes a fresh EKS cluster ready for the GitOps releases.
//! Writes its kubeconfig context; installs, at pinned chart versions, Argo CD, Argo Rollouts,
//! metrics-server (the HPA's CPU metrics), kube-prometheus-stack (Prometheus, which the rollout
//! analysis and the alerts query; Grafana) and prometheus-adapter (the HPA's
//! `pixelmill_renders_in_flight`); registers the cluster in Argo CD under the name the
//! Application's destination uses; then applies the Argo CD projects and the root Application.
//!
//! Every `helm upgrade --install` is idempotent: running bootstrap again upgrades to the pins.

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::Environment;
use crate::flags::Args;
use crate::preflight::{self, Tool};
use crate::report::{StepError, Steps};

/// A chart installed by bootstrap.
pub(crate) struct Chart {
    pub(crate) release: &'static str,
    pub(crate) chart: &'static str,
    pub(crate) repo: &'static str,
    pub(crate) version: &'static str,
    pub(crate) namespace: &'static str,
    pub(crate) set: &'static [&'static str],
}

const ARGO_HELM: &str = "https://argoproj.github.io/argo-helm";
const PROMETHEUS_COMMUNITY: &str = "https://prometheus-community.github.io/helm-charts";

/// In install order: Argo CD's CRDs first, Prometheus before the adapter that reads it. The
/// Prometheus release is named `kube-prometheus-stack` in `monitoring` because the chart's
/// analysis queries `kube-prometheus-stack-prometheus.monitoring.svc` and its ServiceMonitor
/// carries `release: kube-prometheus-stack`.
pub(crate) const CHARTS: &[Chart] = &[
    Chart { release: "argocd", chart: "argo-cd", repo: ARGO_HELM, version: "8.3.9", namespace: "argocd", set: &[] },
    Chart {
        release: "argo-rollouts",
        chart: "argo-rollouts",
        repo: ARGO_HELM,
        version: "2.40.3",
        namespace: "argo-rollouts",
        set: &[],
    },
    Chart {
        release: "metrics-server",
        chart: "metrics-server",
        repo: "https://kubernetes-sigs.github.io/metrics-server/",
        version: "3.13.0",
        namespace: "kube-system",
        set: &[],
    },
    Chart {
        release: "kube-prometheus-stack",
        chart: "kube-prometheus-stack",
        repo: PROMETHEUS_COMMUNITY,
        version: "77.9.1",
        namespace: "monitoring",
        set: &[],
    },
    Chart {
        release: "prometheus-adapter",
        chart: "prometheus-adapter",
        repo: PROMETHEUS_COMMUNITY,
        version: "5.1.0",
        namespace: "monitoring",
        set: &["prometheus.url=http://kube-prometheus-stack-prometheus.monitoring.svc", "prometheus.port=9090"],
    },
];

pub(crate) struct Bootstrap {
    env: String,
}

impl Bootstrap {
    pub(crate) fn parse(mut args: Args) -> Result<Bootstrap, String> {
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(Bootstrap { env })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("bootstrap {}: {e}", self.env))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let env = steps.run("preflight", || {
            let env = Environment::load(ctx, &self.env)?;
            preflight::tools(ctx, &[Tool::Aws, Tool::Helm, Tool::Kubectl])?;
            preflight::account(ctx, &env)?;
            Ok(env)
        })?;
        steps.run("kubeconfig", || preflight::kubeconfig(ctx, &env))?;
        steps.run("charts", || CHARTS.iter().try_for_each(|chart| ctx.run(&install(&env, chart))))?;
        steps.run("argocd", || {
            ctx.run(&kubectl_apply(&env).arg("-").stdin(cluster_secret(&env).into_bytes(), &secret_shown(&env)))?;
            for file in ["deploy/argocd/appproject.yaml", "deploy/argocd/root.yaml"] {
                ctx.run(&kubectl_apply(&env).arg(file))?;
            }
            Ok(())
        })?;
        ctx.say(&format!(
            "next: log in to Argo CD ({}) with `argocd login {} --sso --grpc-web`, then `cargo xtask deploy {}`",
            env.argocd.server, env.argocd.server, env.name
        ));
        Ok(())
    }
}

fn install(env: &Environment, chart: &Chart) -> Cmd {
    let mut cmd = Cmd::new("helm")
        .args(["upgrade", "--install", chart.release, chart.chart])
        .args(["--repo", chart.repo, "--version", chart.version, "--namespace", chart.namespace])
        .args(["--create-namespace", "--wait", "--timeout", "10m", "--kube-context", &env.cluster.name]);
    for value in chart.set {
        cmd = cmd.args(["--set", value]);
    }
    cmd
}

fn kubectl_apply(env: &Environment) -> Cmd {
    Cmd::new("kubectl").arg("apply").args(env.kube_context()).arg("-f")
}

/// The cluster Argo CD runs in, registered under the name the Application's destination uses
/// (`destination.name`), through Argo CD's declarative cluster Secret.
pub(crate) fn cluster_secret(env: &Environment) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: cluster-{name}
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: cluster
    app.kubernetes.io/part-of: pixelmill
type: Opaque
stringData:
  name: {name}
  server: https://kubernetes.default.svc
  config: '{{\"tlsClientConfig\":{{\"insecure\":false}}}}'
",
        name = env.argocd.cluster
    )
}

fn secret_shown(env: &Environment) -> String {
    format!("(Secret argocd/cluster-{}: this cluster as `{}` in Argo CD)", env.argocd.cluster, env.argocd.cluster)
}
