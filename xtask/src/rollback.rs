//! `cargo xtask rollback <env>`: back to the newest verified digest of the environment other
//! than the one it runs, the GitOps way: abort the Rollout if an update is under way, commit
//! the older digest, push, sync, wait, smoke test. The digest rolled back from loses its
//! verified record (verified.rs), so it is not promoted or rolled back to again.
//!
//! `--dry-run` reads the values file and the verified record as a real run does, says which
//! digest it would go back to, and prints every command it would run, running none.
//!
//! A failed rollback is not undone automatically: undoing it would bring back the digest being
//! rolled away from. The error names the failed step; the values commit stays for a person to
//! judge.

use crate::context::{self, Context};
use crate::environment::Environment;
use crate::flags::Args;
use crate::preflight::{self, Tool};
use crate::report::{StepError, Steps};
use crate::{release, rollout, smoke, values, verified};

pub(crate) struct Rollback {
    env: String,
    pub(crate) dry_run: bool,
}

impl Rollback {
    pub(crate) fn parse(mut args: Args) -> Result<Rollback, String> {
        let dry_run = args.flag("--dry-run");
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(Rollback { env, dry_run })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        if ctx.dry_run {
            ctx.say("dry run: the verified record is read, every other command is printed and none is run");
        }
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("rollback {}: {e}", self.env))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let (env, checked, current, target) = steps.run("preflight", || {
            let env = Environment::load(ctx, &self.env)?;
            let tools = [Tool::Aws, Tool::Git, Tool::Kubectl, Tool::Rollouts, Tool::ArgoCd, Tool::Curl];
            let checked = preflight::release(ctx, &env, &tools)?;
            let current = values::digest(&context::read_file(ctx, &env.values_path())?)?;
            let target = verified::entries(ctx, &env)?
                .into_iter()
                .find(|entry| entry.digest != current)
                .ok_or_else(|| format!("no verified digest of {} other than the current {current}", env.name))?;
            ctx.say(&format!("rolling back {} from {current} to {} ({})", env.name, target.digest, target.tag));
            Ok((env, checked, current, target.digest))
        })?;
        let commit = steps.run("release", || {
            if ctx.dry_run {
                ctx.output(&rollout::get(&env), "")?;
                ctx.say(&format!("(if an update is under way: $ {})", rollout::plugin(&env, "abort")));
            } else {
                let state = rollout::state(ctx, &env)?;
                if state.phase == "Progressing" || state.phase == "Paused" {
                    rollout::abort(ctx, &env)?;
                }
            }
            let message = format!("{}: roll back {current} to {target}", env.name);
            let commit = release::commit_digest(ctx, &env, &target, &message)?;
            release::push(ctx, &checked.branch)?;
            release::sync_and_wait(ctx, &env, &target)?;
            Ok(commit)
        })?;
        steps.run("verify", || smoke::run(ctx, &env.smoke.url))?;
        steps.run("record", || {
            verified::record(ctx, &env, &commit, &target)?;
            verified::withdraw(ctx, &env, &current)
        })
    }
}
