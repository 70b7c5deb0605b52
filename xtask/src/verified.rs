//! The record of verified digests: which image digests passed an environment's smoke test.
//!
//! A release that passed its checks tags the commit that put the digest into
//! `deploy/<env>/values.yaml` with an annotated tag `verified/<env>/<first 12 of the commit>`
//! whose message is the digest, and pushes the tag. Tags are the record because they are
//! shared through the same remote as the values, cost no commit (Argo CD sees nothing), and
//! point at the exact commit that deployed the digest. The remote's tags are the record (a tag
//! withdrawn elsewhere may linger in a clone); its order is the order of the tagged commits in
//! the history of HEAD, newest first. `promote` takes only a digest recorded
//! for its source environment; `rollback` goes to the newest recorded digest other than the
//! current one, and withdraws (deletes) the tags of the digest it rolls back from, so that a
//! digest found bad is neither promoted nor rolled back to again.

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::Environment;
use crate::values::Digest;

const PREFIX: &str = "verified";

/// One verified release.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) tag: String,
    pub(crate) commit: String,
    pub(crate) digest: Digest,
}

pub(crate) fn tag_name(env: &Environment, commit: &str) -> String {
    tag_of(&env.name, commit)
}

fn tag_of(env: &str, commit: &str) -> String {
    let short: String = commit.chars().take(12).collect();
    format!("{PREFIX}/{env}/{short}")
}

/// Records that `digest`, deployed by `commit`, passed its checks in `env`.
pub(crate) fn record(ctx: &Context, env: &Environment, commit: &str, digest: &Digest) -> Result<(), String> {
    let tag = tag_name(env, commit);
    ctx.run(&Cmd::new("git").args(["tag", "--annotate", &tag, "--message", digest.as_str(), commit]))?;
    ctx.run(&Cmd::new("git").args(["push", "--quiet", "origin", &format!("refs/tags/{tag}")]))
}

/// The record of an environment of one's own (`helm` driver): the same tag on the commit the
/// image was built from, in this clone only (nobody else deploys to that cluster). A tag left
/// from an earlier deploy of the same commit is replaced. Returns the tag.
pub(crate) fn record_here(ctx: &Context, env: &str, commit: &str, digest: &Digest) -> Result<String, String> {
    let tag = tag_of(env, commit);
    ctx.run(&Cmd::new("git").args(["tag", "--force", "--annotate", &tag, "--message", digest.as_str(), commit]))?;
    Ok(tag)
}

/// The verified releases of `env` along HEAD's history, newest first.
pub(crate) fn entries(ctx: &Context, env: &Environment) -> Result<Vec<Entry>, String> {
    let refs = format!("refs/tags/{PREFIX}/{}/", env.name);
    let listed = ctx.query(&Cmd::new("git").args([
        "for-each-ref",
        "--format=%(refname:short) %(*objectname) %(contents:subject)",
        &refs,
    ]))?;
    // The remote decides: a tag withdrawn elsewhere may linger in this clone.
    let pattern = format!("{refs}*");
    let remote = ctx.query(&Cmd::new("git").args(["ls-remote", "--tags", "origin", &pattern]))?;
    let on_remote: Vec<&str> = remote
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1)?.strip_prefix("refs/tags/"))
        .filter(|tag| !tag.ends_with("^{}"))
        .collect();
    let tagged: Vec<Entry> = listed
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (tag, commit, digest) = (words.next()?, words.next()?, words.next()?);
            let digest = Digest::parse(digest).ok()?;
            on_remote.contains(&tag).then(|| Entry { tag: tag.to_owned(), commit: commit.to_owned(), digest })
        })
        .collect();
    let history = ctx.query(&Cmd::new("git").args(["rev-list", "HEAD", "--", &env.values_path()]))?;
    Ok(history
        .lines()
        .flat_map(|commit| tagged.iter().filter(move |entry| entry.commit == commit.trim()))
        .cloned()
        .collect())
}

/// Deletes the record of `digest` in `env`, here and on the remote.
pub(crate) fn withdraw(ctx: &Context, env: &Environment, digest: &Digest) -> Result<(), String> {
    for entry in entries(ctx, env)?.into_iter().filter(|entry| &entry.digest == digest) {
        ctx.run(&Cmd::new("git").args(["tag", "--delete", &entry.tag]))?;
        ctx.run(&Cmd::new("git").args(["push", "--quiet", "origin", "--delete", &format!("refs/tags/{}", entry.tag)]))?;
    }
    Ok(())
}
