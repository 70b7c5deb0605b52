//! `cargo xtask infra plan|apply|destroy <env> [--yes]`: Terraform for the environment's root
//! module (`terraform/envs/<env>`) with its S3 backend (`backend.hcl`): init with the backend
//! settings, plan to a file, apply exactly that file. `destroy` plans the destruction, shows it,
//! and asks for the environment's name before applying it, unless `--yes`.

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::Environment;
use crate::flags::Args;
use crate::preflight::{self, Tool};
use crate::report::{StepError, Steps};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Plan,
    Apply,
    Destroy,
}

pub(crate) struct Infra {
    action: Action,
    env: String,
    yes: bool,
}

impl Infra {
    pub(crate) fn parse(mut args: Args) -> Result<Infra, String> {
        let yes = args.flag("--yes");
        let action = match args.subcommand("infra", &["plan", "apply", "destroy"])?.as_str() {
            "plan" => Action::Plan,
            "apply" => Action::Apply,
            _ => Action::Destroy,
        };
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(Infra { action, env, yes })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("infra {}: {e}", self.env))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let env = steps.run("preflight", || {
            let env = Environment::load(ctx, &self.env)?;
            preflight::tools(ctx, &[Tool::Terraform, Tool::Aws])?;
            preflight::account(ctx, &env)?;
            Ok(env)
        })?;
        steps.run("init", || init(ctx, &env))?;
        match self.action {
            Action::Plan => {
                steps.run("plan", || plan(ctx, &env, &[]).map(drop))?;
            }
            Action::Apply => {
                let plan = steps.run("plan", || plan(ctx, &env, &[]))?;
                steps.run("apply", || apply_plan(ctx, &env, &plan))?;
            }
            Action::Destroy => {
                let plan = steps.run("plan", || plan(ctx, &env, &["-destroy"]))?;
                if self.yes {
                    steps.skip("confirm", "--yes");
                } else {
                    steps.run("confirm", || confirm_destroy(ctx, &env))?;
                }
                steps.run("destroy", || apply_plan(ctx, &env, &plan))?;
            }
        }
        Ok(())
    }
}

/// init, plan, apply: what `deploy --infra` runs.
pub(crate) fn apply(ctx: &Context, env: &Environment) -> Result<(), String> {
    init(ctx, env)?;
    let plan = plan(ctx, env, &[])?;
    apply_plan(ctx, env, &plan)
}

pub(crate) fn chdir(env: &Environment) -> String {
    format!("-chdir={}", env.terraform.dir)
}

pub(crate) fn init(ctx: &Context, env: &Environment) -> Result<(), String> {
    let backend = format!("-backend-config={}", env.terraform.backend_config);
    ctx.run(&Cmd::new("terraform").args([chdir(env).as_str(), "init", "-input=false", &backend]))
}

/// Plans into a file of this run's scratch directory; returns its path.
fn plan(ctx: &Context, env: &Environment, extra: &[&str]) -> Result<String, String> {
    let file = ctx.scratch()?.join(format!("{}.tfplan", env.name)).display().to_string();
    let out = format!("-out={file}");
    ctx.run(&Cmd::new("terraform").args([chdir(env).as_str(), "plan", "-input=false"]).args(extra).arg(out))?;
    Ok(file)
}

fn apply_plan(ctx: &Context, env: &Environment, plan: &str) -> Result<(), String> {
    ctx.run(&Cmd::new("terraform").args([chdir(env).as_str(), "apply", "-input=false", plan]))
}

fn confirm_destroy(ctx: &Context, env: &Environment) -> Result<(), String> {
    let prompt = format!("destroy every resource of {} shown above? type `{}` to confirm:", env.name, env.name);
    match ctx.ask(&prompt) {
        Ok(answer) if answer == env.name => Ok(()),
        Ok(_) => Err(format!("not confirmed: nothing of {} was destroyed", env.name)),
        Err(e) => Err(format!("{e}: confirm on a terminal or pass --yes; nothing was destroyed")),
    }
}
