//! `cargo xtask deploy <env> [--dry-run] [--infra]`: preflight, build and push the image,
//! Terraform (with `--infra`), then the GitOps release of the pushed digest with its smoke test,
//! rolled back on failure (release.rs). `--dry-run` prints every command in order, with
//! placeholders (`sha256:<digest>`, `<commit>`) for what only a real run can know, and runs none.

use crate::context::Context;
use crate::environment::Environment;
use crate::flags::Args;
use crate::preflight::{self, Tool};
use crate::release::Release;
use crate::report::{StepError, Steps};
use crate::{image, infra};

pub(crate) struct Deploy {
    env: String,
    pub(crate) dry_run: bool,
    infra: bool,
}

impl Deploy {
    pub(crate) fn parse(mut args: Args) -> Result<Deploy, String> {
        let dry_run = args.flag("--dry-run");
        let infra = args.flag("--infra");
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(Deploy { env, dry_run, infra })
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
        let (env, checked) = steps.run("preflight", || {
            let env = Environment::load(ctx, &self.env)?;
            let mut tools = vec![Tool::Container, Tool::Aws, Tool::Git, Tool::Kubectl, Tool::Rollouts, Tool::ArgoCd];
            tools.push(Tool::Curl);
            if self.infra {
                tools.push(Tool::Terraform);
            }
            let checked = preflight::release(ctx, &env, &tools)?;
            Ok((env, checked))
        })?;
        let (built, digest) = steps.run("image", || {
            let tool = checked.container.ok_or("no container tool")?;
            let built = image::build(ctx, tool)?;
            let digest = image::push(ctx, tool, &env, &built)?;
            Ok((built, digest))
        })?;
        if self.infra {
            steps.run("infra", || infra::apply(ctx, &env))?;
        } else {
            steps.skip("infra", "no --infra");
        }
        let message = format!("{}: deploy {digest} (image {})", env.name, built.tag);
        Release { env: &env, branch: &checked.branch, digest: &digest, message }.ship(ctx, steps)
    }
}
