//! `promote` and `rollback`: the verified record decides what may go where.

use super::deploy::deploy;
use super::*;
use crate::flags::Args;
use crate::promote::Promote;
use crate::rollback::Rollback;

fn promote(fixture: &Fixture, from: &str, to: &str) -> (Context, Result<(), String>) {
    let ctx = fixture.context();
    let args = [from.to_owned(), to.to_owned()];
    let result = Promote::parse(Args::new("promote", &args)).unwrap().run(&ctx);
    (ctx, result)
}

fn rollback(fixture: &Fixture, env: &str) -> (Context, Result<(), String>) {
    let ctx = fixture.context();
    let result = Rollback::parse(Args::new("rollback", &[env.to_owned()])).unwrap().run(&ctx);
    (ctx, result)
}

fn preflight_calls(env: &str, server: &str) -> Vec<String> {
    vec![
        "aws --version".to_owned(),
        "kubectl version --client".to_owned(),
        "kubectl argo rollouts version --short".to_owned(),
        "argocd version --client --short".to_owned(),
        "aws sts get-caller-identity --query Account --output text".to_owned(),
        format!("aws eks update-kubeconfig --name pixelmill-{env} --region eu-west-1 --alias pixelmill-{env}"),
        format!("argocd account get-user-info --server {server} --grpc-web"),
    ]
}

const PROD_SERVER: &str = "argocd.pixelmill.dev";
const PROD_SYNC: &str = "argocd app sync pixelmill-prod --timeout 2700 --server argocd.pixelmill.dev --grpc-web";
const PROD_GET: &str = "kubectl get rollout pixelmill -n pixelmill --context pixelmill-prod -o json";
const PROD_WAIT: &str =
    "argocd app wait pixelmill-prod --health --timeout 2700 --server argocd.pixelmill.dev --grpc-web";
const PROD_PROMOTE: &str = "kubectl argo rollouts promote pixelmill -n pixelmill --context pixelmill-prod";
const STAGING_SERVER: &str = "argocd.staging.pixelmill.dev";
const STAGING_SYNC: &str =
    "argocd app sync pixelmill-staging --timeout 1800 --server argocd.staging.pixelmill.dev --grpc-web";
const STAGING_GET: &str = "kubectl get rollout pixelmill -n pixelmill --context pixelmill-staging -o json";
const STAGING_WAIT: &str =
    "argocd app wait pixelmill-staging --health --timeout 1800 --server argocd.staging.pixelmill.dev --grpc-web";
const STAGING_ABORT: &str = "kubectl argo rollouts abort pixelmill -n pixelmill --context pixelmill-staging";

/// A fixture where staging runs and has verified DIGEST.
fn staging_verified(name: &str) -> Fixture {
    let fixture = Fixture::new(name);
    deploy(&fixture, &["staging"]).1.unwrap();
    fixture.clear_calls();
    fixture
}

#[test]
fn promote_waits_through_the_blue_green_analysis_for_the_person_who_promotes() {
    let fixture = staging_verified("promote");
    fixture.rollout(&[
        Rollout::blue_green_paused(DIGEST, "Running"),
        Rollout::blue_green_paused(DIGEST, "Successful"),
        Rollout::healthy(DIGEST),
    ]);
    let (ctx, result) = promote(&fixture, "staging", "prod");
    result.unwrap();

    let mut expected = preflight_calls("prod", PROD_SERVER);
    expected.extend([PROD_SYNC, PROD_GET, PROD_GET, PROD_GET, PROD_WAIT].map(str::to_owned));
    assert_eq!(fixture.calls(), expected, "prod is never promoted by xtask (auto_promote = false)");
    let printed = ctx.output.lines().join("\n");
    assert!(
        printed.contains(&format!(
            "the Rollout waits for a promotion (prod does not promote by itself): $ {PROD_PROMOTE}"
        ))
    );
    assert!(printed.contains("Rollout pixelmill: Paused (BlueGreenPause), pre-promotion analysis Running"));
    assert!(printed.contains("Rollout pixelmill: Paused (BlueGreenPause), pre-promotion analysis Successful"));

    assert_eq!(fixture.remote_digest("prod"), DIGEST);
    assert_eq!(fixture.remote_digest("staging"), DIGEST);
    assert_eq!(fixture.remote_log()[0], format!("prod: promote {DIGEST} from staging"));
    let prod_commit = fixture.remote_git(&["rev-parse", "main"]);
    assert_eq!(fixture.remote_verified("prod"), [(format!("verified/prod/{}", &prod_commit[..12]), DIGEST.to_owned())]);
    assert_eq!(fixture.remote_git(&["diff", "--name-only", "main~1", "main"]), "deploy/prod/values.yaml");
    assert_eq!(fixture.server.lines().len(), 8, "a smoke test for staging, then one for prod");
}

#[test]
fn promote_promotes_only_after_the_analysis_passed_when_allowed() {
    let fixture = staging_verified("promote-auto");
    fixture.edit("deploy/prod/environment.toml", "auto_promote = false", "auto_promote = true");
    fixture.clear_calls();
    fixture.rollout(&[
        Rollout::blue_green_paused(DIGEST, "Running"),
        Rollout::blue_green_paused(DIGEST, "Successful"),
        Rollout::healthy(DIGEST),
    ]);
    promote(&fixture, "staging", "prod").1.unwrap();
    let calls = fixture.calls();
    let tail = &calls[calls.iter().position(|call| call == PROD_SYNC).unwrap()..];
    assert_eq!(tail, [PROD_SYNC, PROD_GET, PROD_GET, PROD_PROMOTE, PROD_GET, PROD_WAIT]);
}

#[test]
fn promote_refuses_a_digest_the_source_has_not_verified() {
    let fixture = staging_verified("promote-unverified");
    fixture.edit("deploy/staging/values.yaml", DIGEST, DIGEST_2);
    fixture.clear_calls();
    let (_, result) = promote(&fixture, "staging", "prod");
    let error = result.unwrap_err();
    assert!(
        error.starts_with(&format!(
            "promote staging prod: step `preflight` failed: {DIGEST_2} (in deploy/staging/values.yaml) has not been verified in staging"
        )),
        "{error}"
    );
    assert_eq!(fixture.remote_digest("prod"), ZERO_DIGEST);
    assert!(!fixture.calls().iter().any(|call| call.starts_with("argocd app sync")));
}

#[test]
fn promote_refuses_a_fresh_environment_with_no_record() {
    let fixture = Fixture::new("promote-fresh");
    let error = promote(&fixture, "staging", "prod").1.unwrap_err();
    assert!(error.contains(&format!("{ZERO_DIGEST} (in deploy/staging/values.yaml) has not been verified in staging")));
}

#[test]
fn a_failed_promotion_is_rolled_back_in_the_target_only() {
    let fixture = staging_verified("promote-fails");
    fixture.rollout(&[Rollout::blue_green_paused(DIGEST, "Running"), Rollout::degraded(DIGEST)]);
    let error = promote(&fixture, "staging", "prod").1.unwrap_err();
    assert!(error.starts_with("promote staging prod: step `release` failed: the Rollout is Degraded"), "{error}");
    assert!(error.contains("rolled back: aborted Rollout pixelmill, reverted "), "{error}");
    assert_eq!(fixture.remote_digest("prod"), ZERO_DIGEST);
    assert_eq!(fixture.remote_digest("staging"), DIGEST);
    assert!(fixture.remote_verified("prod").is_empty());
    assert!(
        fixture
            .calls()
            .contains(&"kubectl argo rollouts abort pixelmill -n pixelmill --context pixelmill-prod".to_owned())
    );
}

/// Staging has verified DIGEST, then DIGEST_2 (which it runs).
fn two_releases(name: &str) -> Fixture {
    let fixture = staging_verified(name);
    fixture.rule("aws ecr describe-images *", 0, DIGEST_2);
    fixture.rollout(&[Rollout::healthy(DIGEST_2)]);
    deploy(&fixture, &["staging"]).1.unwrap();
    assert_eq!(fixture.remote_verified("staging").len(), 2);
    fixture.clear_calls();
    fixture
}

#[test]
fn rollback_releases_the_previous_verified_digest_and_withdraws_the_bad_one() {
    let fixture = two_releases("rollback");
    let first_tag = fixture.remote_verified("staging").into_iter().find(|(_, digest)| digest == DIGEST).unwrap();
    fixture.rollout(&[Rollout::healthy(DIGEST_2), Rollout::progressing(DIGEST), Rollout::healthy(DIGEST)]);
    let requests_before = fixture.server.requests().len();

    let (_, result) = rollback(&fixture, "staging");
    result.unwrap();

    let mut expected = preflight_calls("staging", STAGING_SERVER);
    expected.extend([STAGING_GET, STAGING_SYNC, STAGING_GET, STAGING_GET, STAGING_WAIT].map(str::to_owned));
    assert_eq!(fixture.calls(), expected, "a Healthy Rollout is not aborted");
    assert_eq!(fixture.remote_digest("staging"), DIGEST);
    assert_eq!(fixture.remote_log()[0], format!("staging: roll back {DIGEST_2} to {DIGEST}"));
    let rollback_commit = fixture.remote_git(&["rev-parse", "main"]);
    let mut verified = fixture.remote_verified("staging");
    verified.sort();
    let mut expected_tags =
        vec![first_tag, (format!("verified/staging/{}", &rollback_commit[..12]), DIGEST.to_owned())];
    expected_tags.sort();
    assert_eq!(verified, expected_tags, "{DIGEST_2} is no longer verified");
    assert_eq!(fixture.server.requests().len(), requests_before + 4, "the rollback is smoke tested");

    // Nothing older is left to roll back to: the withdrawn digest is not a candidate.
    let error = rollback(&fixture, "staging").1.unwrap_err();
    assert!(error.contains(&format!("no verified digest of staging other than the current {DIGEST}")), "{error}");
}

#[test]
fn rollback_aborts_an_update_in_progress_first() {
    let fixture = two_releases("rollback-abort");
    fixture.rollout(&[Rollout::progressing(DIGEST_2), Rollout::healthy(DIGEST)]);
    rollback(&fixture, "staging").1.unwrap();
    let calls = fixture.calls();
    let tail = &calls[calls.iter().position(|call| call == STAGING_GET).unwrap()..];
    assert_eq!(tail, [STAGING_GET, STAGING_ABORT, STAGING_SYNC, STAGING_GET, STAGING_WAIT]);
}

#[test]
fn rollback_refuses_when_nothing_was_verified_before() {
    let fixture = staging_verified("rollback-none");
    let error = rollback(&fixture, "staging").1.unwrap_err();
    assert!(
        error.starts_with(&format!(
            "rollback staging: step `preflight` failed: no verified digest of staging other than the current {DIGEST}"
        )),
        "{error}"
    );
    assert!(!fixture.calls().iter().any(|call| call.starts_with("argocd app sync")));
}

#[test]
fn a_failed_rollback_is_reported_and_not_undone() {
    let fixture = two_releases("rollback-fails");
    fixture.rollout(&[Rollout::healthy(DIGEST_2), Rollout::healthy(DIGEST)]);
    fixture.server.behave(Behaviour { render_status: 502, ..Behaviour::default() });
    let error = rollback(&fixture, "staging").1.unwrap_err();
    assert!(error.starts_with("rollback staging: step `verify` failed: GET /v1/images/img_7Qx2/render"), "{error}");
    assert_eq!(fixture.remote_digest("staging"), DIGEST, "the older digest stays released");
    assert_eq!(fixture.remote_verified("staging").len(), 2, "nothing recorded, nothing withdrawn");
}

#[test]
fn a_digest_withdrawn_on_the_remote_is_not_verified_here() {
    let fixture = staging_verified("withdrawn-elsewhere");
    let (tag, _) = fixture.remote_verified("staging").remove(0);
    fixture.remote_git(&["tag", "--delete", &tag]);
    assert!(fixture.git(&["tag"]).contains(&tag), "the tag lingers in this clone");
    let error = promote(&fixture, "staging", "prod").1.unwrap_err();
    assert!(
        error.contains(&format!("{DIGEST} (in deploy/staging/values.yaml) has not been verified in staging")),
        "{error}"
    );
}

fn dry_run(fixture: &Fixture, command: &str, args: &[&str]) -> (Context, Result<(), String>) {
    let mut ctx = fixture.context();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let result = match command {
        "promote" => Promote::parse(Args::new("promote", &args)).and_then(|promote| {
            ctx.dry_run = promote.dry_run;
            promote.run(&ctx)
        }),
        _ => Rollback::parse(Args::new("rollback", &args)).and_then(|rollback| {
            ctx.dry_run = rollback.dry_run;
            rollback.run(&ctx)
        }),
    };
    (ctx, result)
}

#[test]
fn a_dry_run_of_promote_shows_what_it_would_do_to_prod_and_does_nothing() {
    let fixture = staging_verified("promote-dry-run");
    let head = fixture.git(&["rev-parse", "HEAD"]);
    let (ctx, result) = dry_run(&fixture, "promote", &["staging", "prod", "--dry-run"]);
    result.unwrap();
    assert!(ctx.dry_run);
    // The verified record is read for real (it decides what would be promoted); from the write
    // of prod's values on, the release as a real run makes it.
    let printed = commands(&ctx);
    let mut release = vec![
        format!("write deploy/prod/values.yaml: image.digest = \"{DIGEST}\""),
        format!("$ git commit --quiet --message 'prod: promote {DIGEST} from staging' -- deploy/prod/values.yaml"),
        "$ git rev-parse HEAD".to_owned(),
        "$ git push --quiet origin '<branch>'".to_owned(),
        format!("$ {PROD_SYNC}"),
        format!("$ {PROD_GET}"),
        format!("$ {PROD_WAIT}"),
    ];
    release.extend(dry_smoke_lines(&fixture.server.url));
    release.extend([
        format!("$ git tag --annotate 'verified/prod/<commit>' --message {DIGEST} '<commit>'"),
        "$ git push --quiet origin 'refs/tags/verified/prod/<commit>'".to_owned(),
    ]);
    let start = printed.iter().position(|line| line.starts_with("write ")).expect("a values write");
    assert_eq!(printed[start..], release);
    assert!(printed[..start].contains(&"$ git ls-remote --tags origin 'refs/tags/verified/staging/*'".to_owned()));
    assert!(fixture.calls().is_empty(), "no cloud tool ran: {:?}", fixture.calls());
    assert_eq!(fixture.git(&["rev-parse", "HEAD"]), head, "nothing committed");
    assert_eq!(fixture.git(&["status", "--porcelain"]), "", "no file changed");
    assert_eq!(fixture.remote_digest("prod"), ZERO_DIGEST);
    assert!(fixture.remote_verified("prod").is_empty());
}

#[test]
fn a_dry_run_of_promote_refuses_what_the_real_run_refuses() {
    let fixture = staging_verified("promote-dry-run-unverified");
    fixture.edit("deploy/staging/values.yaml", DIGEST, DIGEST_2);
    let error = dry_run(&fixture, "promote", &["--dry-run", "staging", "prod"]).1.unwrap_err();
    assert!(
        error.contains(&format!("{DIGEST_2} (in deploy/staging/values.yaml) has not been verified in staging")),
        "{error}"
    );
}

#[test]
fn a_dry_run_of_rollback_names_the_digest_it_would_go_back_to_and_does_nothing() {
    let fixture = two_releases("rollback-dry-run");
    let head = fixture.git(&["rev-parse", "HEAD"]);
    let (ctx, result) = dry_run(&fixture, "rollback", &["staging", "--dry-run"]);
    result.unwrap();
    let lines = ctx.output.lines();
    let naming = format!("rolling back staging from {DIGEST_2} to {DIGEST} (verified/staging/");
    assert!(lines.iter().any(|line| line.starts_with(&naming)), "{lines:?}");
    assert!(lines.contains(&format!("(if an update is under way: $ {STAGING_ABORT})")), "{lines:?}");
    let printed = commands(&ctx);
    assert!(
        printed.contains(&format!(
            "$ git commit --quiet --message 'staging: roll back {DIGEST_2} to {DIGEST}' -- deploy/staging/values.yaml"
        )),
        "{printed:?}"
    );
    assert!(printed.contains(&format!("$ {STAGING_SYNC}")));
    assert!(fixture.calls().is_empty(), "no cloud tool ran: {:?}", fixture.calls());
    assert_eq!(fixture.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
    assert_eq!(fixture.remote_digest("staging"), DIGEST_2);
    assert_eq!(fixture.remote_verified("staging").len(), 2, "nothing withdrawn");
}
