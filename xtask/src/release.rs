//! A GitOps release of one digest to one environment, shared by `deploy`, `promote` and
//! `rollback`:
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

/// One release: `digest` to `env`, pushed to `branch`, with `message` as the commit message.
pub(crate) struct Release<'a> {
    pub(crate) env: &'a Environment,
    pub(crate) branch: &'a str,
    pub(crate) digest: &'a Digest,
    pub(crate) message: String,
}

/// How far a release got, for the rollback.
#[derive(Default)]
struct Progress {
    commit: Option<String>,
    pushed: bool,
}

impl Release<'_> {
    /// The release, verify and record steps, with the rollback on failure.
    pub(crate) fn ship(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let mut progress = Progress::default();
        let checked = steps
            .run("release", || self.release(ctx, &mut progress))
            .and_then(|()| steps.run("verify", || smoke::run(ctx, &self.env.smoke.url)));
        if let Err(failed) = checked {
            let undone = steps.run("rollback", || self.roll_back(ctx, &progress));
            let outcome = match undone {
                Ok(what) => format!("rolled back: {what}"),
                Err(also) => format!("the rollback failed too: {}", also.message),
            };
            return Err(StepError { step: failed.step, message: format!("{}\n{outcome}", failed.message) });
        }
        let commit = progress.commit.unwrap_or_default();
        steps.run("record", || verified::record(ctx, self.env, &commit, self.digest))
    }

    fn release(&self, ctx: &Context, progress: &mut Progress) -> Result<(), String> {
        progress.commit = Some(commit_digest(ctx, self.env, self.digest, &self.message)?);
        push(ctx, self.branch)?;
        progress.pushed = true;
        sync_and_wait(ctx, self.env, self.digest)
    }

    /// Undoes what the release did; describes what it undid.
    fn roll_back(&self, ctx: &Context, progress: &Progress) -> Result<String, String> {
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
