//! `cargo xtask`: the project's automation, in Rust: build, infrastructure, release, deploy and
//! verification, the same code on a laptop and in CI. Each subcommand lives in its own module
//! with a `run`; every external command goes through `Context` (context.rs), which prints it
//! first. The cloud tools driven are the real CLIs: docker (or buildah/podman), aws, terraform,
//! helm, kubectl, argocd, git and curl.

mod bootstrap;
mod cargo_env;
mod ci;
mod cmd;
mod context;
mod deploy;
mod e2e;
mod environment;
mod flags;
mod helm_release;
mod hpa_test;
mod image;
mod image_smoke;
mod infra;
mod load;
mod preflight;
mod promote;
mod release;
mod report;
mod rollback;
mod rollout;
mod run;
mod smoke;
mod system;
mod values;
mod verified;

#[cfg(test)]
mod tests;

use std::process::ExitCode;

use crate::context::Context;
use crate::flags::Args;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run [ARGS...]                      install missing system packages, then `cargo run --release --bin pixelmill -- ARGS`
  ci                                 every check CI runs: system packages, fmt, clippy, tests, Terraform, Helm and
                                     workflow checks, image smoke test, dependency policy, API and engine fuzzing
  deploy <env> [--dry-run] [--infra] preflight, build and push the image, Terraform (--infra), GitOps release by
                                     digest, Argo CD sync and health, smoke test; rolled back on failure
  deploy local [--dry-run] [--image-archive FILE] [--values FILE]
                                     the same release with Helm on the current cluster: build (or FILE), load the
                                     image onto the nodes by digest, helm upgrade --install, smoke test, rollback
  promote <from> <to> [--dry-run]    release the digest verified in <from> to <to> (prod: blue-green with analysis)
  rollback <env> [--dry-run]         release the previous verified digest of <env> again
  bootstrap <env> [--dry-run]        kubeconfig, Argo CD, Argo Rollouts, load balancer controller, External Secrets,
                                     metrics-server, Prometheus, the env's root Application
  infra plan|apply|destroy <env> [--yes]
                                     Terraform of terraform/envs/<env> with its S3 backend
  image build|push [<env>]           build the image from HEAD (tag: short sha); push it to <env>'s registry
  image smoke                        build the Dockerfile's runtime stage from a local release build with buildah
                                     (no engine, no pulls), run it, check /healthz and renders, remove it
  e2e [--broken-drain]               the chart on a real cluster (KUBECONFIG, else the local kit): install, helm test,
                                     API through the Service, upgrade under load, bad release rolled back, rollback,
                                     uninstall
  load [ARGS...]                     run pixelmill-load (release build) with ARGS
  hpa-test <env>                     in-cluster load test: replicas, CPU and p99 over time, CSV and SVG, verdict

environments: deploy/<env>/environment.toml (see xtask/README.md)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("run") => run::run(rest),
        Some("ci") => ci::run(),
        Some("deploy") => deploy::Deploy::parse(Args::new("deploy", rest)).and_then(|deploy| {
            let mut ctx = Context::from_process();
            ctx.dry_run = deploy.dry_run;
            deploy.run(&ctx)
        }),
        Some("promote") => promote::Promote::parse(Args::new("promote", rest)).and_then(|promote| {
            let mut ctx = Context::from_process();
            ctx.dry_run = promote.dry_run;
            promote.run(&ctx)
        }),
        Some("rollback") => rollback::Rollback::parse(Args::new("rollback", rest)).and_then(|rollback| {
            let mut ctx = Context::from_process();
            ctx.dry_run = rollback.dry_run;
            rollback.run(&ctx)
        }),
        Some("bootstrap") => bootstrap::Bootstrap::parse(Args::new("bootstrap", rest)).and_then(|bootstrap| {
            let mut ctx = Context::from_process();
            ctx.dry_run = bootstrap.dry_run;
            bootstrap.run(&ctx)
        }),
        Some("e2e") => e2e::E2e::parse(Args::new("e2e", rest)).and_then(|e2e| e2e.run(Context::from_process())),
        Some("infra") => infra::Infra::parse(Args::new("infra", rest)).and_then(|c| c.run(&process())),
        Some("image") => image::Image::parse(Args::new("image", rest)).and_then(|c| c.run(&process())),
        Some("load") => load::Load::parse(Args::new("load", rest)).and_then(|c| c.run(&process())),
        Some("hpa-test") => hpa_test::HpaTest::parse(Args::new("hpa-test", rest)).and_then(|c| c.run(&process())),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn process() -> Context {
    Context::from_process()
}
