//! `cargo xtask bootstrap <env>`: makes a fresh EKS cluster ready for the GitOps releases.
//! Reads the environment's Terraform outputs (the VPC and the controllers' IAM roles); writes
//! its kubeconfig context; installs, at pinned chart versions, Argo CD, Argo Rollouts, the AWS
//! Load Balancer Controller (the ALB of the chart's Ingress and the canary's traffic split), the
//! External Secrets Operator (the service's DATABASE_URL from Secrets Manager), metrics-server
//! (the HPA's CPU metrics), kube-prometheus-stack (Prometheus, which the rollout analysis and
//! the alerts query; Grafana) and prometheus-adapter (the HPA's `pixelmill_renders_in_flight`);
//! creates the ClusterSecretStore the chart's ExternalSecret names; registers the cluster in
//! Argo CD under the name the Application's destination uses; then applies the Argo CD projects
//! and the environment's root Application.
//!
//! Every `helm upgrade --install` and `kubectl apply` is idempotent: running bootstrap again
//! upgrades to the pins.

use serde::Deserialize;

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
    /// `--set` values; `{cluster}`, `{region}` and the Terraform outputs `{vpc_id}`,
    /// `{lb_controller_role_arn}` and `{external_secrets_role_arn}` are filled in.
    pub(crate) set: &'static [&'static str],
}

const ARGO_HELM: &str = "https://argoproj.github.io/argo-helm";
const PROMETHEUS_COMMUNITY: &str = "https://prometheus-community.github.io/helm-charts";

/// In install order: Argo CD's CRDs first; the load balancer controller before anything makes a
/// Service (its webhook mutates them); Prometheus before the adapter that reads it. The
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
    // Its service account is the one the Terraform IAM role trusts (iam module,
    // kube-system/aws-load-balancer-controller).
    Chart {
        release: "aws-load-balancer-controller",
        chart: "aws-load-balancer-controller",
        repo: "https://aws.github.io/eks-charts",
        version: "1.13.4",
        namespace: "kube-system",
        set: &[
            "clusterName={cluster}",
            "region={region}",
            "vpcId={vpc_id}",
            "serviceAccount.name=aws-load-balancer-controller",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn={lb_controller_role_arn}",
        ],
    },
    // Release external-secrets in external-secrets: its service account is
    // external-secrets/external-secrets, the one the Terraform IAM role trusts.
    Chart {
        release: "external-secrets",
        chart: "external-secrets",
        repo: "https://charts.external-secrets.io",
        version: "0.19.2",
        namespace: "external-secrets",
        set: &[
            "installCRDs=true",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn={external_secrets_role_arn}",
        ],
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
    /// Print every command in order, with placeholders for what Terraform would say, and run none.
    pub(crate) dry_run: bool,
}

impl Bootstrap {
    pub(crate) fn parse(mut args: Args) -> Result<Bootstrap, String> {
        let dry_run = args.flag("--dry-run");
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(Bootstrap { env, dry_run })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("bootstrap {}: {e}", self.env))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let env = steps.run("preflight", || {
            let env = Environment::load(ctx, &self.env)?;
            preflight::tools(ctx, &[Tool::Aws, Tool::Terraform, Tool::Helm, Tool::Kubectl])?;
            preflight::account(ctx, &env)?;
            Ok(env)
        })?;
        let outputs = steps.run("terraform outputs", || Outputs::read(ctx, &env))?;
        steps.run("kubeconfig", || preflight::kubeconfig(ctx, &env))?;
        steps.run("charts", || CHARTS.iter().try_for_each(|chart| ctx.run(&install(&env, &outputs, chart))))?;
        steps.run("secret store", || {
            let shown = format!("(ClusterSecretStore {SECRET_STORE}: Secrets Manager in {})", env.aws.region);
            ctx.run(&kubectl_apply(&env).arg("-").stdin(secret_store(&env).into_bytes(), &shown))
        })?;
        steps.run("argocd", || {
            ctx.run(&kubectl_apply(&env).arg("-").stdin(cluster_secret(&env).into_bytes(), &secret_shown(&env)))?;
            for file in ["deploy/argocd/appproject.yaml".to_owned(), root_application(&env)] {
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

/// What bootstrap needs of the environment's Terraform (terraform/envs/<env>/outputs.tf).
#[derive(Debug, Deserialize)]
struct Outputs {
    vpc_id: Output,
    lb_controller_role_arn: Output,
    external_secrets_role_arn: Output,
}

#[derive(Debug, Deserialize)]
struct Output {
    value: String,
}

impl Outputs {
    /// `terraform output -json` of the environment's root module, with its backend.
    fn read(ctx: &Context, env: &Environment) -> Result<Outputs, String> {
        crate::infra::init(ctx, env)?;
        let cmd = Cmd::new("terraform").args([crate::infra::chdir(env).as_str(), "output", "-json"]);
        let placeholder = r#"{"vpc_id":{"value":"<vpc_id>"},"lb_controller_role_arn":{"value":"<lb_controller_role_arn>"},"external_secrets_role_arn":{"value":"<external_secrets_role_arn>"}}"#;
        let json = ctx.output(&cmd, placeholder)?;
        serde_json::from_str(&json).map_err(|e| {
            format!(
                "`{cmd}` does not give the outputs bootstrap needs ({e}): run `cargo xtask infra apply {}` first",
                env.name
            )
        })
    }

    fn fill(&self, env: &Environment, template: &str) -> String {
        template
            .replace("{cluster}", &env.cluster.name)
            .replace("{region}", &env.aws.region)
            .replace("{vpc_id}", &self.vpc_id.value)
            .replace("{lb_controller_role_arn}", &self.lb_controller_role_arn.value)
            .replace("{external_secrets_role_arn}", &self.external_secrets_role_arn.value)
    }
}

fn install(env: &Environment, outputs: &Outputs, chart: &Chart) -> Cmd {
    let mut cmd = Cmd::new("helm")
        .args(["upgrade", "--install", chart.release, chart.chart])
        .args(["--repo", chart.repo, "--version", chart.version, "--namespace", chart.namespace])
        .args(["--create-namespace", "--wait", "--timeout", "10m", "--kube-context", &env.cluster.name]);
    for value in chart.set {
        cmd = cmd.args(["--set".to_owned(), outputs.fill(env, value)]);
    }
    cmd
}

fn kubectl_apply(env: &Environment) -> Cmd {
    Cmd::new("kubectl").arg("apply").args(env.kube_context()).arg("-f")
}

/// The environment's app-of-apps, which creates its Application (deploy/<env>/application.yaml).
/// Each cluster runs its own Argo CD, which only knows its own environment.
pub(crate) fn root_application(env: &Environment) -> String {
    format!("deploy/{}/root.yaml", env.name)
}

/// The store the chart's ExternalSecret names (helm/pixelmill/values.yaml:
/// secrets.externalSecret.secretStoreRef). It reads Secrets Manager with the operator's own
/// IRSA role, which may read the database secret and nothing else, and only ExternalSecrets of
/// the release's namespace may use it.
pub(crate) const SECRET_STORE: &str = "aws-secrets-manager";

pub(crate) fn secret_store(env: &Environment) -> String {
    format!(
        "apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: {SECRET_STORE}
  labels:
    app.kubernetes.io/part-of: pixelmill
spec:
  conditions:
    - namespaces:
        - {namespace}
  provider:
    aws:
      service: SecretsManager
      region: {region}
",
        namespace = env.cluster.namespace,
        region = env.aws.region
    )
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
