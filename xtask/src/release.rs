//! How every release is shipped ([`ship`] over a [`Driver`]), and the GitOps driver: a release
//! of one digest to one Argo CD environment, shared by `deploy`, `promote` and `rollback`:
//!
//! - **release**: rewrite the digest line of `deploy/<env>/values.yaml`, commit that file
//!   alone, push; `argocd app sync`; poll the Rollout until it runs the digest and is Healthy
//!   (promoting it when allowed, see rollout.rs); `argocd app wait --health`.
//! - **verify**: the smoke test against the environment's public URL.
//! - **record**: tag the values commit as verified (verified.rs).
//!
//! When release or verify fails, the **rollback** step aborts the Rollout, reverts the values
//! commit, pushes the revert and syncs. Rolling back through git rather than with
//! `argocd app rollback` is deliberate: Argo CD refuses a rollback while automated sync is on
//! (both Applications sync automatically, with self-heal), and a rollback that git does not
//! know of would be undone by the next sync anyway.

use crate::cmd::Cmd;
use crate::context::{self, Context};
use crate::environment::Environment;
use crate::report::{StepError, Steps};
use crate::values::{self, Digest};
use crate::{rollout, smoke, verified};

/// What a dry run shows for the commit the release makes.
const COMMIT_PLACEHOLDER: &str = "<commit>";

/// What a release driver does, in the order [`ship`] calls it: apply the release, check it,
/// undo it when either failed, and record it when both passed. `deploy` of either driver and
/// `cargo xtask e2e` go through [`ship`], so a release that fails is rolled back by one code
/// path whatever the environment.
pub(crate) trait Driver {
    /// Applies the release, remembering what it changed for [`Driver::roll_back`].
    fn release(&mut self, ctx: &Context) -> Result<(), String>;
    /// The smoke test of the released service.
    fn verify(&self, ctx: &Context) -> Result<(), String>;
    /// Undoes what [`Driver::release`] did; describes what it undid.
    fn roll_back(&self, ctx: &Context) -> Result<String, String>;
    /// Records the release as verified.
    fn record(&self, ctx: &Context) -> Result<(), String>;
}

/// The release, verify and record steps, with the rollback step when release or verify failed.
pub(crate) fn ship(ctx: &Context, steps: &mut Steps<'_>, driver: &mut impl Driver) -> Result<(), StepError> {
    let checked =
        steps.run("release", || driver.release(ctx)).and_then(|()| steps.run("verify", || driver.verify(ctx)));
    if let Err(failed) = checked {
        let undone = steps.run("rollback", || driver.roll_back(ctx));
        let outcome = match undone {
            Ok(what) => format!("rolled back: {what}"),
            Err(also) => format!("the rollback failed too: {}", also.message),
        };
        return Err(StepError { step: failed.step, message: format!("{}\n{outcome}", failed.message) });
    }
    steps.run("record", || driver.record(ctx))
}

/// One GitOps release: `digest` to `env`, pushed to `branch`, with `message` as the commit
/// message.
pub(crate) struct Release<'a> {
    pub(crate) env: &'a Environment,
    pub(crate) branch: &'a str,
    pub(crate) digest: &'a Digest,
    pub(crate) message: String,
    progress: Progress,
}

/// How far a release got, for the rollback.
#[derive(Default)]
struct Progress {
    commit: Option<String>,
    pushed: bool,
}

impl<'a> Release<'a> {
    pub(crate) fn new(env: &'a Environment, branch: &'a str, digest: &'a Digest, message: String) -> Release<'a> {
        Release { env, branch, digest, message, progress: Progress::default() }
    }
}

impl Driver for Release<'_> {
    fn release(&mut self, ctx: &Context) -> Result<(), String> {
        self.progress.commit = Some(commit_digest(ctx, self.env, self.digest, &self.message)?);
        push(ctx, self.branch)?;
        self.progress.pushed = true;
        sync_and_wait(ctx, self.env, self.digest)
    }

    fn verify(&self, ctx: &Context) -> Result<(), String> {
        smoke::run(ctx, &self.env.smoke.url)
    }

    fn roll_back(&self, ctx: &Context) -> Result<String, String> {
        let progress = &self.progress;
        let Some(commit) = &progress.commit else {
            return Ok("nothing was committed".to_owned());
        };
        let mut done = Vec::new();
        let mut failures = Vec::new();
        if progress.pushed {
            // First stop sending traffic to the new pods; the revert then brings the spec back.
            match rollout::abort(ctx, self.env) {
                Ok(()) => done.push(format!("aborted Rollout {}", self.env.cluster.rollout)),
                Err(e) => failures.push(e),
            }
        }
        // A commit that never reached the remote is reverted here only: pushing the pair would
        // publish two commits that cancel out.
        let reverted = ctx
            .run(&Cmd::new("git").args(["revert", "--no-edit", commit]))
            .and_then(|()| ctx.output(&Cmd::new("git").args(["rev-parse", "HEAD"]), COMMIT_PLACEHOLDER))
            .and_then(|revert| if progress.pushed { push(ctx, self.branch).map(|()| revert) } else { Ok(revert) });
        match reverted {
            Ok(revert) if progress.pushed => {
                done.push(format!("reverted {} with {} and pushed it", short(commit), short(&revert)))
            }
            Ok(revert) => {
                done.push(format!("reverted {} with {} (it was never pushed)", short(commit), short(&revert)))
            }
            Err(e) => failures.push(e),
        }
        if progress.pushed {
            match sync(ctx, self.env) {
                Ok(()) => done.push(format!("synced {}", self.env.argocd.app)),
                Err(e) => failures.push(e),
            }
        }
        if failures.is_empty() { Ok(done.join(", ")) } else { Err(failures.join("\n")) }
    }

    fn record(&self, ctx: &Context) -> Result<(), String> {
        let commit = self.progress.commit.clone().unwrap_or_default();
        verified::record(ctx, self.env, &commit, self.digest)
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// Writes `digest` into the values file, commits that file alone; returns the commit.
pub(crate) fn commit_digest(
    ctx: &Context,
    env: &Environment,
    digest: &Digest,
    message: &str,
) -> Result<String, String> {
    let path = env.values_path();
    ctx.say(&format!("write {path}: image.digest = \"{digest}\""));
    let file = ctx.root.join(&path);
    let mut original = None;
    if !ctx.dry_run {
        let text = context::read_file(ctx, &path)?;
        let rewritten = values::with_digest(&text, digest).map_err(|e| format!("{path}: {e}"))?;
        std::fs::write(&file, rewritten).map_err(|e| format!("cannot write {path}: {e}"))?;
        original = Some(text);
    }
    if let Err(e) = ctx.run(&Cmd::new("git").args(["commit", "--quiet", "--message", message, "--", &path])) {
        // Leave the work tree as it was: a failed release must not leave an edit behind.
        if let Some(original) = original {
            let _ = std::fs::write(&file, original);
        }
        return Err(e);
    }
    ctx.output(&Cmd::new("git").args(["rev-parse", "HEAD"]), COMMIT_PLACEHOLDER)
}

pub(crate) fn push(ctx: &Context, branch: &str) -> Result<(), String> {
    ctx.run(&Cmd::new("git").args(["push", "--quiet", "origin", branch]))
}

/// `argocd app sync`. An automated sync that already started on the pushed commit makes a
/// manual one fail with "another operation is already in progress": that is the sync we
/// wanted, so it counts as done.
pub(crate) fn sync(ctx: &Context, env: &Environment) -> Result<(), String> {
    let timeout = env.release.timeout_seconds.to_string();
    let cmd =
        Cmd::new("argocd").args(["app", "sync", &env.argocd.app, "--timeout", &timeout]).args(env.argocd_server());
    match ctx.output(&cmd, "") {
        Ok(_) => Ok(()),
        Err(e) if e.contains("another operation is already in progress") => {
            ctx.say(&format!("{} is already syncing (automated sync); waiting on that sync", env.argocd.app));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sync, then wait for the Rollout to run `digest` and for the Application to be healthy.
pub(crate) fn sync_and_wait(ctx: &Context, env: &Environment, digest: &Digest) -> Result<(), String> {
    sync(ctx, env)?;
    rollout::wait_healthy(ctx, env, digest)?;
    let timeout = env.release.timeout_seconds.to_string();
    ctx.output(
        &Cmd::new("argocd")
            .args(["app", "wait", &env.argocd.app, "--health", "--timeout", &timeout])
            .args(env.argocd_server()),
        "",
    )
    .map(drop)
}
