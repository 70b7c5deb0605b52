//! `bootstrap`, `infra`, `image`, `load` and `hpa-test` against the fakes.

use super::*;
use crate::bootstrap::Bootstrap;
use crate::flags::Args;
use crate::hpa_test::HpaTest;
use crate::image::Image;
use crate::infra::Infra;
use crate::load::Load;

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

#[test]
fn bootstrap_installs_the_pinned_charts_then_the_argo_cd_applications() {
    let fixture = Fixture::new("bootstrap");
    let ctx = fixture.context();
    Bootstrap::parse(Args::new("bootstrap", &args(&["staging"]))).unwrap().run(&ctx).unwrap();
    let helm = |release: &str, chart: &str, repo: &str, version: &str, namespace: &str, extra: &str| {
        format!(
            "helm upgrade --install {release} {chart} --repo {repo} --version {version} --namespace {namespace} \
             --create-namespace --wait --timeout 10m --kube-context pixelmill-staging{extra}"
        )
    };
    let argo = "https://argoproj.github.io/argo-helm";
    let community = "https://prometheus-community.github.io/helm-charts";
    let role = "--set serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role";
    assert_eq!(
        fixture.calls(),
        [
            "aws --version".to_owned(),
            "terraform --version".to_owned(),
            "helm version --short".to_owned(),
            "kubectl version --client".to_owned(),
            "aws sts get-caller-identity --query Account --output text".to_owned(),
            "terraform -chdir=terraform/envs/staging init -input=false -backend-config=backend.hcl".to_owned(),
            "terraform -chdir=terraform/envs/staging output -json".to_owned(),
            "aws eks update-kubeconfig --name pixelmill-staging --region eu-west-1 --alias pixelmill-staging"
                .to_owned(),
            helm("argocd", "argo-cd", argo, "8.3.9", "argocd", ""),
            helm("argo-rollouts", "argo-rollouts", argo, "2.40.3", "argo-rollouts", ""),
            helm(
                "aws-load-balancer-controller",
                "aws-load-balancer-controller",
                "https://aws.github.io/eks-charts",
                "1.13.4",
                "kube-system",
                &format!(
                    " --set clusterName=pixelmill-staging --set region=eu-west-1 --set vpcId=vpc-0a1b2c3d4e5f67890 \
                     --set serviceAccount.name=aws-load-balancer-controller {role}/pixelmill-staging-lb-controller"
                )
            ),
            helm(
                "external-secrets",
                "external-secrets",
                "https://charts.external-secrets.io",
                "0.19.2",
                "external-secrets",
                &format!(" --set installCRDs=true {role}/pixelmill-staging-external-secrets")
            ),
            helm(
                "metrics-server",
                "metrics-server",
                "https://kubernetes-sigs.github.io/metrics-server/",
                "3.13.0",
                "kube-system",
                ""
            ),
            helm("kube-prometheus-stack", "kube-prometheus-stack", community, "77.9.1", "monitoring", ""),
            helm(
                "prometheus-adapter",
                "prometheus-adapter",
                community,
                "5.1.0",
                "monitoring",
                " --set prometheus.url=http://kube-prometheus-stack-prometheus.monitoring.svc --set prometheus.port=9090"
            ),
            "kubectl apply --context pixelmill-staging -f -".to_owned(),
            "kubectl apply --context pixelmill-staging -f -".to_owned(),
            "kubectl apply --context pixelmill-staging -f deploy/argocd/appproject.yaml".to_owned(),
            "kubectl apply --context pixelmill-staging -f deploy/staging/root.yaml".to_owned(),
        ]
    );
    let stdin = fixture.stdin_of("kubectl");
    let (store, secret) = stdin.split_once("----\n").unwrap();
    assert!(store.contains("kind: ClusterSecretStore\nmetadata:\n  name: aws-secrets-manager\n"), "{store}");
    assert!(store.contains("    - namespaces:\n        - pixelmill\n"), "{store}");
    assert!(store.contains("      service: SecretsManager\n      region: eu-west-1\n"), "{store}");
    assert!(!store.contains("auth:"), "the operator's own IRSA role, not a key: {store}");
    assert!(secret.contains("kind: Secret\n"), "{secret}");
    assert!(secret.contains("    argocd.argoproj.io/secret-type: cluster\n"), "{secret}");
    assert!(secret.contains("  name: pixelmill-staging\n  server: https://kubernetes.default.svc\n"), "{secret}");
}

#[test]
fn bootstrap_needs_the_terraform_outputs_before_touching_the_cluster() {
    let fixture = Fixture::new("bootstrap-outputs");
    fixture.rule("terraform -chdir=* output -json", 0, "{}");
    let ctx = fixture.context();
    let error = Bootstrap::parse(Args::new("bootstrap", &args(&["prod"]))).unwrap().run(&ctx).unwrap_err();
    assert!(error.contains("does not give the outputs bootstrap needs (missing field `vpc_id`"), "{error}");
    assert!(error.contains("run `cargo xtask infra apply prod` first"), "{error}");
    assert!(!fixture.calls().iter().any(|call| call.starts_with("helm upgrade") || call.starts_with("aws eks")));
}

#[test]
fn bootstrap_dry_run_shows_where_the_outputs_go() {
    let fixture = Fixture::new("bootstrap-dry");
    let bootstrap = Bootstrap::parse(Args::new("bootstrap", &args(&["prod", "--dry-run"]))).unwrap();
    let mut ctx = fixture.context();
    ctx.dry_run = bootstrap.dry_run;
    bootstrap.run(&ctx).unwrap();
    let printed = ctx.output.lines().join("\n");
    assert!(printed.contains("$ terraform -chdir=terraform/envs/prod output -json"), "{printed}");
    assert!(printed.contains(" --set 'vpcId=<vpc_id>' "), "{printed}");
    assert!(printed.contains("role-arn=<external_secrets_role_arn>"), "{printed}");
    assert!(printed.contains("$ kubectl apply --context pixelmill-prod -f deploy/prod/root.yaml"), "{printed}");
    let changes = ["helm upgrade", "kubectl apply", "aws eks", "terraform -chdir"];
    assert!(!fixture.calls().iter().any(|call| changes.iter().any(|change| call.starts_with(change))));
}

#[test]
fn bootstrap_refuses_the_wrong_account_before_touching_the_cluster() {
    let fixture = Fixture::new("bootstrap-account");
    fixture.rule("aws sts get-caller-identity *", 0, "210987654321");
    let ctx = fixture.context();
    let error = Bootstrap::parse(Args::new("bootstrap", &args(&["prod"]))).unwrap().run(&ctx).unwrap_err();
    assert!(
        error.contains("the AWS credentials are for account 210987654321, but prod is account 123456789012"),
        "{error}"
    );
    assert!(!fixture.calls().iter().any(|call| call.starts_with("helm upgrade") || call.starts_with("aws eks")));
}

fn infra(fixture: &Fixture, words: &[&str], answers: &[&str]) -> Result<(), String> {
    let ctx = fixture.context();
    ctx.answers.as_ref().unwrap().borrow_mut().extend(answers.iter().map(|a| (*a).to_owned()));
    Infra::parse(Args::new("infra", &args(words))).unwrap().run(&ctx)
}

const INIT: &str = "terraform -chdir=terraform/envs/prod init -input=false -backend-config=backend.hcl";

fn terraform_calls(fixture: &Fixture) -> Vec<String> {
    fixture.calls().into_iter().filter(|call| call.starts_with("terraform -chdir")).collect()
}

#[test]
fn infra_plan_and_apply_use_the_backend_and_one_plan_file() {
    let fixture = Fixture::new("infra");
    infra(&fixture, &["plan", "prod"], &[]).unwrap();
    let plan = "terraform -chdir=terraform/envs/prod plan -input=false -out=<scratch>/prod.tfplan";
    assert_eq!(terraform_calls(&fixture), [INIT, plan]);
    assert_eq!(
        fixture.calls()[..3],
        ["terraform --version", "aws --version", "aws sts get-caller-identity --query Account --output text"]
    );
    fixture.clear_calls();
    infra(&fixture, &["apply", "prod"], &[]).unwrap();
    let apply = "terraform -chdir=terraform/envs/prod apply -input=false <scratch>/prod.tfplan";
    assert_eq!(terraform_calls(&fixture), [INIT, plan, apply]);
}

#[test]
fn infra_destroy_asks_for_the_environment_name_unless_yes() {
    let fixture = Fixture::new("destroy");
    let plan = "terraform -chdir=terraform/envs/prod plan -input=false -destroy -out=<scratch>/prod.tfplan";
    let apply = "terraform -chdir=terraform/envs/prod apply -input=false <scratch>/prod.tfplan";

    let error = infra(&fixture, &["destroy", "prod"], &["yes"]).unwrap_err();
    assert!(error.contains("step `confirm` failed: not confirmed: nothing of prod was destroyed"), "{error}");
    assert_eq!(terraform_calls(&fixture), [INIT, plan]);

    fixture.clear_calls();
    let error = infra(&fixture, &["destroy", "prod"], &[]).unwrap_err();
    assert!(error.contains("confirm on a terminal or pass --yes"), "{error}");
    assert_eq!(terraform_calls(&fixture), [INIT, plan]);

    fixture.clear_calls();
    infra(&fixture, &["destroy", "prod"], &["prod"]).unwrap();
    assert_eq!(terraform_calls(&fixture), [INIT, plan, apply]);

    fixture.clear_calls();
    infra(&fixture, &["destroy", "--yes", "prod"], &[]).unwrap();
    assert_eq!(terraform_calls(&fixture), [INIT, plan, apply]);
}

#[test]
fn infra_stops_when_terraform_fails() {
    let fixture = Fixture::new("infra-fails");
    fixture.rule("terraform *init*", 1, "Error: Failed to get existing workspaces: S3 bucket does not exist.");
    let error = infra(&fixture, &["apply", "staging"], &[]).unwrap_err();
    assert!(error.starts_with("infra staging: step `init` failed: "), "{error}");
    assert!(error.contains("S3 bucket does not exist"), "{error}");
    assert_eq!(terraform_calls(&fixture).len(), 1);
}

#[test]
fn image_build_prefers_docker_then_buildah_then_podman() {
    let fixture = Fixture::new("image");
    let short = fixture.short_head();
    let build = |fixture: &Fixture| {
        fixture.clear_calls();
        Image::parse(Args::new("image", &args(&["build"]))).unwrap().run(&fixture.context()).unwrap();
        fixture.calls()
    };
    let labels = format!(
        "--label org.opencontainers.image.revision={} --label org.opencontainers.image.source=https://github.com/pixelmill/pixelmill \
         --label org.opencontainers.image.created=<time> .",
        fixture.git(&["rev-parse", "HEAD"])
    );
    assert_eq!(
        build(&fixture),
        ["docker --version".to_owned(), format!("docker build --file Dockerfile --tag pixelmill:{short} {labels}")]
    );
    fixture.uninstall("docker");
    assert_eq!(
        build(&fixture),
        [
            "buildah --version".to_owned(),
            format!("buildah bud --layers --file Dockerfile --tag pixelmill:{short} {labels}")
        ]
    );
    fixture.uninstall("buildah");
    assert_eq!(
        build(&fixture),
        [
            "podman --version".to_owned(),
            format!("podman build --layers --file Dockerfile --tag pixelmill:{short} {labels}")
        ]
    );
}

#[test]
fn image_push_logs_in_pushes_and_resolves_the_digest() {
    let fixture = Fixture::new("image-push");
    let short = fixture.short_head();
    let ctx = fixture.context();
    Image::parse(Args::new("image", &args(&["push", "staging"]))).unwrap().run(&ctx).unwrap();
    assert_eq!(
        fixture.calls()[3..],
        [
            format!("docker tag pixelmill:{short} {REPOSITORY}:{short}"),
            "aws ecr get-login-password --region eu-west-1".to_owned(),
            "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_owned(),
            format!("docker push {REPOSITORY}:{short}"),
            format!(
                "aws ecr describe-images --region eu-west-1 --repository-name pixelmill --image-ids imageTag={short} \
                 --query imageDetails[0].imageDigest --output text"
            ),
        ]
    );
    assert!(ctx.output.lines().contains(&format!("pushed {REPOSITORY}@{DIGEST}")));
}

#[test]
fn image_push_refuses_an_answer_that_is_not_a_digest() {
    let fixture = Fixture::new("image-digest");
    fixture.rule("aws ecr describe-images *", 0, "None");
    let error =
        Image::parse(Args::new("image", &args(&["push", "staging"]))).unwrap().run(&fixture.context()).unwrap_err();
    assert!(error.contains("ECR answered no digest for"), "{error}");
    let unknown = Image::parse(Args::new("image", &args(&["run"]))).err().unwrap();
    assert_eq!(unknown, "unknown `image` subcommand `run`: expected one of build, push, smoke");
}

#[test]
fn load_runs_the_bundled_generator_with_the_arguments_as_given() {
    let fixture = Fixture::new("load");
    fixture.vars.borrow_mut().insert("CARGO".into(), "cargo".into());
    let words = ["--target-base", "http://127.0.0.1:8080", "--scenario", "mixed", "--stages", "30s:50"];
    Load::parse(Args::new("load", &args(&words))).unwrap().run(&fixture.context()).unwrap();
    assert_eq!(
        fixture.calls(),
        [
            "cargo run --release --quiet --package pixelmill-load -- --target-base http://127.0.0.1:8080 --scenario mixed --stages 30s:50"
        ]
    );
}

#[test]
fn load_serve_builds_starts_a_server_and_points_the_generator_at_it() {
    let fixture = Fixture::new("load-serve");
    fixture.vars.borrow_mut().insert("CARGO".into(), "cargo".into());
    let words = ["--serve", "--scenario", "render-hit", "--rate", "50", "--duration", "10s"];
    let ctx = fixture.context();
    Load::parse(Args::new("load", &args(&words))).unwrap().run(&ctx).unwrap();
    // The server runs in the background and is stopped when the generator ends, maybe before
    // its fake has logged its call: what was started is read from the printed command instead.
    let serve = "cargo run --release --quiet --package pixelmill -- serve";
    let printed = ctx.output.lines();
    assert!(printed.iter().any(|line| line.starts_with("$ ") && line.contains(serve)), "{printed:?}");
    let calls: Vec<String> = fixture.calls().into_iter().filter(|call| call != serve).collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "cargo build --release --quiet --package pixelmill --package pixelmill-load");
    let load = &calls[1];
    let port = load
        .strip_prefix("cargo run --release --quiet --package pixelmill-load -- --target-base http://127.0.0.1:")
        .and_then(|rest| rest.split_once(' '))
        .map(|(port, rest)| (port.parse::<u16>().unwrap(), rest));
    assert_eq!(port.map(|(_, rest)| rest), Some("--scenario render-hit --rate 50 --duration 10s"), "{load}");
}

const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: pixelmill-load-test
  namespace: pixelmill
spec:
  backoffLimit: 0
";

fn hpa(current: u32, desired: u32, cpu: u32) -> String {
    format!(
        r#"{{"spec":{{"minReplicas":2,"maxReplicas":6}},"status":{{"currentReplicas":{current},"desiredReplicas":{desired},
"currentMetrics":[{{"type":"Resource","resource":{{"name":"cpu","current":{{"averageUtilization":{cpu},"averageValue":"700m"}}}}}}]}}}}"#
    )
}

fn p99(seconds: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1735689600.5,"{seconds}"]}}]}}}}"#
    )
}

const PODS: &str = r#"{"items":[
{"metadata":{"name":"a"},"status":{"conditions":[{"type":"Ready","status":"True"}]}},
{"metadata":{"name":"b"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
{"metadata":{"name":"c","deletionTimestamp":"2025-01-01T00:00:00Z"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}]}"#;

pub(crate) fn hpa_fixture(name: &str, replicas: &[u32], p99s: &[&str]) -> Fixture {
    let fixture = Fixture::new(name);
    fixture.file("rendered-job.yaml", JOB);
    fixture.rule("helm template *", 0, "@rendered-job.yaml");
    let hpas: Vec<String> = replicas.iter().map(|&r| hpa(r, r, 40 + 10 * r)).collect();
    fixture.sequence("kubectl get hpa *", "hpa", &hpas.iter().map(|h| (0, h.as_str())).collect::<Vec<_>>());
    let answers: Vec<String> = p99s.iter().map(|s| p99(s)).collect();
    fixture.sequence("kubectl get --raw *", "p99", &answers.iter().map(|a| (0, a.as_str())).collect::<Vec<_>>());
    fixture.file("pods.json", PODS);
    fixture.rule("kubectl get pods *", 0, "@pods.json");
    let running = r#"{"status":{"active":1}}"#;
    let done = r#"{"status":{"succeeded":1}}"#;
    let mut jobs = vec![(0, running); replicas.len() - 1];
    jobs.push((0, done));
    fixture.sequence("kubectl get job *", "job", &jobs);
    fixture.rule("kubectl logs *", 0, "pixelmill-load: 21000 requests, p99 612 ms");
    fixture
}

#[test]
fn hpa_test_samples_until_the_job_ends_and_writes_csv_and_chart() {
    let fixture = hpa_fixture("hpa", &[2, 4, 6, 6], &["NaN", "0.910", "0.450", "0.180"]);
    let ctx = fixture.context();
    HpaTest::parse(Args::new("hpa-test", &args(&["staging"]))).unwrap().run(&ctx).unwrap();

    let context = "--context pixelmill-staging";
    let query = "histogram_quantile(0.99, sum by (le) (rate(pixelmill_http_request_duration_seconds_bucket{namespace=\"pixelmill\"}[1m])))";
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let sample = [
        format!("kubectl get hpa pixelmill -o json -n pixelmill {context}"),
        format!(
            "kubectl get pods -l app.kubernetes.io/name=pixelmill,app.kubernetes.io/instance=pixelmill -o json -n pixelmill {context}"
        ),
        format!(
            "kubectl get --raw /api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:9090/proxy/api/v1/query?query={encoded} {context}"
        ),
        format!("kubectl get job pixelmill-load-test -o json -n pixelmill {context}"),
    ];
    let mut expected = vec![
        "aws --version".to_owned(),
        "helm version --short".to_owned(),
        "kubectl version --client".to_owned(),
        "aws sts get-caller-identity --query Account --output text".to_owned(),
        "aws eks update-kubeconfig --name pixelmill-staging --region eu-west-1 --alias pixelmill-staging".to_owned(),
        "helm template pixelmill helm/pixelmill --namespace pixelmill --values deploy/staging/values.yaml \
         --show-only templates/job-loadtest.yaml --set loadTest.enabled=true --set-string loadTest.stages=60s:20\\,180s:150\\,120s:60"
            .to_owned(),
        format!("kubectl delete job pixelmill-load-test --ignore-not-found -n pixelmill {context}"),
        format!("kubectl apply -f - -n pixelmill {context}"),
    ];
    for _ in 0..4 {
        expected.extend(sample.iter().cloned());
    }
    expected.push(format!("kubectl logs job/pixelmill-load-test -n pixelmill {context}"));
    assert_eq!(fixture.calls(), expected);
    assert_eq!(fixture.stdin_of("kubectl"), format!("{JOB}----\n"), "the rendered Job is what is applied");

    let dir = fixture.repo.join("target/hpa-test/staging");
    let csv = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|line| line.split(',').skip(1).collect()).collect();
    assert_eq!(rows[0], ["replicas", "desired_replicas", "ready_pods", "cpu_percent", "p99_ms"]);
    assert_eq!(rows[1], ["2", "2", "1", "60.0", ""]);
    assert_eq!(rows[2], ["4", "4", "1", "80.0", "910.0"]);
    assert_eq!(rows[4], ["6", "6", "1", "100.0", "180.0"]);
    let svg = std::fs::read_to_string(dir.join("chart.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("p99 latency"));
    assert_eq!(std::fs::read_to_string(dir.join("job.log")).unwrap(), "pixelmill-load: 21000 requests, p99 612 ms");
    let printed = ctx.output.lines().join("\n");
    assert!(
        printed.contains("pass: replicas 2 -> 6; p99 peaked at 910 ms and ended at 180 ms (SLO 500 ms)"),
        "{printed}"
    );
}

#[test]
fn hpa_test_fails_when_the_autoscaler_did_not_scale() {
    let fixture = hpa_fixture("hpa-flat", &[2, 2, 2], &["0.900", "0.800", "0.700"]);
    let error =
        HpaTest::parse(Args::new("hpa-test", &args(&["staging"]))).unwrap().run(&fixture.context()).unwrap_err();
    assert!(error.starts_with("hpa-test staging: step `verdict` failed: "), "{error}");
    assert!(error.contains("the replicas never rose above the minimum of 2 (at most 2)"), "{error}");
    assert!(error.contains("p99 ended at 700 ms, over the SLO of 500 ms (peak 900 ms)"), "{error}");
    assert!(fixture.repo.join("target/hpa-test/staging/chart.svg").is_file(), "the evidence is kept");
}

#[test]
fn commands_do_not_inherit_what_cargo_set_for_xtask_itself() {
    // This test runs under cargo, which set CARGO_MANIFEST_DIR and CARGO_PKG_NAME for it as
    // `cargo run` does for xtask; a cargo started from the context must not see them.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some() && std::env::var_os("CARGO_PKG_NAME").is_some());
    let ctx = Context::from_process();
    assert_eq!(ctx.var("CARGO_MANIFEST_DIR"), None);
    assert_eq!(ctx.var("CARGO_PKG_NAME"), None);
    assert_eq!(ctx.var("PATH"), std::env::var("PATH").ok());
}
