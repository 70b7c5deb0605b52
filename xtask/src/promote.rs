//! `cargo xtask promote <from> <to>`: the digest `<from>` runs and has verified goes to `<to>`
//! through the same GitOps release as a deploy (release.rs): commit, push, sync, wait through
//! the rollout (prod: blue-green, paused for its pre-promotion analysis), smoke test, record;
//! rolled back on failure. A digest `<from>` has not verified (verified.rs) is refused.
//! `--dry-run` reads what a real run reads (the values files, the verified record) and prints
//! every command it would run against `<to>`, running none and changing no file.

use crate::context::{self, Context};
use crate::environment::Environment;
use crate::flags::Args;
use crate::preflight::{self, Tool};
use crate::release::{self, Release};
use crate::report::{StepError, Steps};
use crate::{values, verified};

pub(crate) struct Promote {
    from: String,
    to: String,
    pub(crate) dry_run: bool,
}

impl Promote {
    pub(crate) fn parse(mut args: Args) -> Result<Promote, String> {
        let dry_run = args.flag("--dry-run");
        let from = args.positional("<from> <to>")?;
        let to = args.positional("<to>")?;
        args.finish()?;
        Ok(Promote { from, to, dry_run })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        if ctx.dry_run {
            ctx.say("dry run: the verified record is read, every other command is printed and none is run");
        }
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("promote {} {}: {e}", self.from, self.to))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let (to, checked, digest, current) = steps.run("preflight", || {
            let from = Environment::load(ctx, &self.from)?;
            let to = Environment::load(ctx, &self.to)?;
            if from.name == to.name {
                return Err(format!("promote needs two environments, got {} twice", from.name));
            }
            if from.image.repository != to.image.repository {
                return Err(format!(
                    "{} pulls from {} and {} from {}: a digest is promoted within one repository",
                    from.name, from.image.repository, to.name, to.image.repository
                ));
            }
            let tools = [Tool::Aws, Tool::Git, Tool::Kubectl, Tool::Rollouts, Tool::ArgoCd, Tool::Curl];
            let checked = preflight::release(ctx, &to, &tools)?;
            let digest = values::digest(&context::read_file(ctx, &from.values_path())?)?;
            if !verified::entries(ctx, &from)?.iter().any(|entry| entry.digest == digest) {
                return Err(format!(
                    "{digest} (in {}) has not been verified in {}: no verified/{}/* tag records it; deploy it to {} first",
                    from.values_path(),
                    from.name,
                    from.name,
                    from.name
                ));
            }
            let current = values::digest(&context::read_file(ctx, &to.values_path())?)?;
            Ok((to, checked, digest, current))
        })?;
        if current == digest {
            ctx.say(&format!("{} already runs {digest}: nothing to promote", to.name));
            return Ok(());
        }
        let message = format!("{}: promote {digest} from {}", to.name, self.from);
        release::ship(ctx, steps, &mut Release::new(&to, &checked.branch, &digest, message))
    }
}
