//! `cargo xtask deploy <env> [--dry-run] [--infra] [--image-archive FILE] [--values FILE]`: preflight, the
//! image, then the release of its digest with the smoke test, rolled back on failure, and the
//! record (release.rs). How depends on the environment's driver:
//!
//! - **argocd** (staging, prod): build and push to ECR, Terraform (with `--infra`), then the
//!   GitOps release of the pushed digest.
//! - **helm** (local): build, save as an OCI archive named by its digest, load it onto the
//!   nodes (the environment's load command), then `helm upgrade --install` with the digest
//!   (helm_release.rs). `--image-archive FILE` deploys an OCI archive built elsewhere (a CI
//!   job's) instead of building; `--values FILE` adds a values file after the environment's
//!   (the addresses of a cluster's own database and store, say).
//!
//! `--dry-run` prints every command in order, with placeholders (`sha256:<digest>`,
//! `<commit>`) for what only a real run can know, and runs none.

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::{self, Environment, HelmEnvironment, Target};
use crate::flags::Args;
use crate::helm_release::{HelmRelease, Record, SmokeTarget};
use crate::preflight::{self, Tool};
use crate::release::{self, Release};
use crate::report::{StepError, Steps};
use crate::{e2e, image, infra};

pub(crate) struct Deploy {
    env: String,
    pub(crate) dry_run: bool,
    infra: bool,
    image_archive: Option<String>,
    /// A values file after the environment's (helm driver).
    values: Option<String>,
}

impl Deploy {
    pub(crate) fn parse(mut args: Args) -> Result<Deploy, String> {
        let dry_run = args.flag("--dry-run");
        let infra = args.flag("--infra");
        let image_archive = args.option("--image-archive")?;
        let values = args.option("--values")?;
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(Deploy { env, dry_run, infra, image_archive, values })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        if ctx.dry_run {
            ctx.say("dry run: every command is printed, none is run, no file is changed");
        }
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("deploy {}: {e}", self.env))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let target = environment::load(ctx, &self.env).map_err(|message| StepError { step: "preflight", message })?;
        match target {
            Target::Argocd(env) if self.image_archive.is_some() || self.values.is_some() => Err(StepError {
                step: "preflight",
                message: format!(
                    "--image-archive and --values are for Helm environments: {} releases the image it builds and deploy/{}/values.yaml as committed",
                    env.name, env.name
                ),
            }),
            Target::Argocd(env) => self.argocd(ctx, steps, &env),
            Target::Helm(env) => self.helm(ctx, steps, &env),
        }
    }

    /// A release with Helm on the current cluster, the image loaded onto its nodes.
    fn helm(&self, ctx: &Context, steps: &mut Steps<'_>, env: &HelmEnvironment) -> Result<(), StepError> {
        if self.infra {
            return Err(StepError {
                step: "preflight",
                message: format!("{} has no infrastructure (--infra)", env.name),
            });
        }
        let container = steps.run("preflight", || {
            let mut tools = vec![Tool::Git, Tool::Kubectl, Tool::Helm, Tool::Curl];
            if self.image_archive.is_none() {
                tools.insert(0, Tool::Container);
            }
            preflight::helm_release(ctx, env, &tools)
        })?;
        let commit = ctx
            .output(&Cmd::new("git").args(["rev-parse", "HEAD"]), "<commit>")
            .map_err(|message| StepError { step: "image", message })?;
        let digest = steps.run("image", || {
            let (archive, tag) = match &self.image_archive {
                Some(archive) => (archive.clone(), commit.chars().take(12).collect()),
                None => {
                    let tool = container.ok_or("no container tool")?;
                    let built = image::build(ctx, tool)?;
                    (image::save(ctx, tool, &built)?, built.tag)
                }
            };
            let (named, digest) = image::name_by_digest(ctx, &archive, &env.image.repository, &tag)?;
            image::load(ctx, &env.image.load, &named)?;
            Ok(digest)
        })?;
        let smoke = match (&env.smoke.url, &env.smoke.service) {
            (Some(url), _) => SmokeTarget::Url(url.clone()),
            (None, service) => SmokeTarget::Service(service.clone().unwrap_or_default()),
        };
        let record = Record { env: env.name.clone(), commit, digest: digest.clone() };
        let mut driver = HelmRelease::new(
            &e2e::helm(ctx),
            &env.cluster.release,
            &env.cluster.namespace,
            &env.cluster.deployment,
            env.release.values.iter().chain(&self.values).cloned().collect(),
            vec![format!("image.digest={digest}")],
            env.release.timeout_seconds,
            smoke,
            Some(record),
        );
        release::ship(ctx, steps, &mut driver)
    }

    /// A GitOps release through Argo CD.
    fn argocd(&self, ctx: &Context, steps: &mut Steps<'_>, env: &Environment) -> Result<(), StepError> {
        let checked = steps.run("preflight", || {
            let mut tools = vec![Tool::Container, Tool::Aws, Tool::Git, Tool::Kubectl, Tool::Rollouts, Tool::ArgoCd];
            tools.push(Tool::Curl);
            if self.infra {
                tools.push(Tool::Terraform);
            }
            preflight::release(ctx, env, &tools)
        })?;
        let (built, digest) = steps.run("image", || {
            let tool = checked.container.ok_or("no container tool")?;
            let built = image::build(ctx, tool)?;
            let digest = image::push(ctx, tool, env, &built)?;
            Ok((built, digest))
        })?;
        if self.infra {
            steps.run("infra", || infra::apply(ctx, env))?;
        } else {
            steps.skip("infra", "no --infra");
        }
        let message = format!("{}: deploy {digest} (image {})", env.name, built.tag);
        release::ship(ctx, steps, &mut Release::new(env, &checked.branch, &digest, message))
    }
}
