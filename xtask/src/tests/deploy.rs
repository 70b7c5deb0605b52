//! `deploy`: the command sequence, the dry run, every failure path and the preflight messages.

use super::*;
use crate::deploy::Deploy;
use crate::flags::Args;

pub(crate) fn deploy(fixture: &Fixture, args: &[&str]) -> (Context, Result<(), String>) {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let deploy = Deploy::parse(Args::new("deploy", &args)).unwrap();
    let mut ctx = fixture.context();
    ctx.dry_run = deploy.dry_run;
    let result = deploy.run(&ctx);
    (ctx, result)
}

/// The fake calls of a deploy of staging up to the image, with docker.
pub(crate) fn preflight_and_image_calls(fixture: &Fixture) -> Vec<String> {
    let short = fixture.short_head();
    let full = fixture.git(&["rev-parse", "HEAD"]);
    vec![
        "docker --version".to_owned(),
        "aws --version".to_owned(),
        "kubectl version --client".to_owned(),
        "kubectl argo rollouts version --short".to_owned(),
        "argocd version --client --short".to_owned(),
        "aws sts get-caller-identity --query Account --output text".to_owned(),
        "aws eks update-kubeconfig --name pixelmill-staging --region eu-west-1 --alias pixelmill-staging".to_owned(),
        "argocd account get-user-info --server argocd.staging.pixelmill.dev --grpc-web".to_owned(),
        format!(
            "docker build --file Dockerfile --tag pixelmill:{short} --label org.opencontainers.image.revision={full} \
             --label org.opencontainers.image.source=https://github.com/pixelmill/pixelmill \
             --label org.opencontainers.image.created=<time> ."
        ),
        format!("docker tag pixelmill:{short} {REPOSITORY}:{short}"),
        "aws ecr get-login-password --region eu-west-1".to_owned(),
        "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_owned(),
        format!("docker push {REPOSITORY}:{short}"),
        format!(
            "aws ecr describe-images --region eu-west-1 --repository-name pixelmill --image-ids imageTag={short} \
             --query imageDetails[0].imageDigest --output text"
        ),
    ]
}

const SYNC: &str = "argocd app sync pixelmill-staging --timeout 1800 --server argocd.staging.pixelmill.dev --grpc-web";
const GET_ROLLOUT: &str = "kubectl get rollout pixelmill -n pixelmill --context pixelmill-staging -o json";
const WAIT: &str =
    "argocd app wait pixelmill-staging --health --timeout 1800 --server argocd.staging.pixelmill.dev --grpc-web";
const ABORT: &str = "kubectl argo rollouts abort pixelmill -n pixelmill --context pixelmill-staging";
const PROMOTE: &str = "kubectl argo rollouts promote pixelmill -n pixelmill --context pixelmill-staging";

fn smoke_requests() -> Vec<String> {
    ["GET /readyz", "POST /v1/images", "GET /v1/images/img_7Qx2/render?w=64&fmt=webp", "DELETE /v1/images/img_7Qx2"]
        .map(str::to_owned)
        .to_vec()
}

#[test]
fn deploy_runs_every_step_in_order_and_records_the_verified_digest() {
    let fixture = Fixture::new("deploy");
    fixture.rollout(&[Rollout::progressing(ZERO_DIGEST), Rollout::progressing(DIGEST), Rollout::healthy(DIGEST)]);
    let initial = fixture.git(&["rev-parse", "HEAD"]);
    let values_before = std::fs::read_to_string(fixture.repo.join("deploy/staging/values.yaml")).unwrap();
    let mut expected = preflight_and_image_calls(&fixture);

    let (ctx, result) = deploy(&fixture, &["staging"]);
    result.unwrap();

    expected.extend([SYNC, GET_ROLLOUT, GET_ROLLOUT, GET_ROLLOUT, WAIT].map(str::to_owned));
    assert_eq!(fixture.calls(), expected);
    assert_eq!(fixture.stdin_of("docker"), "fake-ecr-password\n----\n", "the password is piped, not passed");

    // GitOps: one commit on the remote, changing exactly the digest line.
    let short = fixture.git(&["rev-parse", "--short", &initial]);
    assert_eq!(fixture.remote_log(), [format!("staging: deploy {DIGEST} (image {short})"), "initial".to_owned()]);
    let values_after = fixture.remote_git(&["show", "main:deploy/staging/values.yaml"]) + "\n";
    assert_eq!(values_after, values_before.replace(ZERO_DIGEST, DIGEST));
    let changed = fixture.remote_git(&["diff", "--name-only", "main~1", "main"]);
    assert_eq!(changed, "deploy/staging/values.yaml");

    // Verified: the values commit is tagged with the digest.
    let values_commit = fixture.remote_git(&["rev-parse", "main"]);
    assert_eq!(
        fixture.remote_verified("staging"),
        [(format!("verified/staging/{}", &values_commit[..12]), DIGEST.to_owned())]
    );

    // The smoke test: the four requests, authorised, with a PNG body; the key is never printed.
    assert_eq!(fixture.server.lines(), smoke_requests());
    let requests = fixture.server.requests();
    let upload = &requests[1];
    assert_eq!(upload.authorization.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));
    assert_eq!(upload.content_type.as_deref(), Some("image/png"));
    assert!(upload.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(requests[3].authorization.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));
    let printed = ctx.output.lines().join("\n");
    assert!(!printed.contains(API_KEY) && !printed.contains("fake-ecr-password"));

    // Every step reported, and the summary table ends the run.
    for step in ["preflight", "image", "release", "verify", "record"] {
        assert!(printed.contains(&format!("<== {step}: ok (")), "{step}: {printed}");
    }
    assert!(printed.contains("==> infra: skipped (no --infra)"));
    let summary = &printed[printed.find("== summary").unwrap()..];
    let rows: Vec<Vec<&str>> = summary.lines().skip(1).map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["step", "result", "time"]);
    assert_eq!(rows[4][..2], ["release", "ok"]);
    assert_eq!(rows[3], ["infra", "skipped"]);
    assert_eq!(rows[7][0], "total");
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
}

#[test]
fn dry_run_prints_every_command_and_changes_nothing() {
    let fixture = Fixture::new("dry-run");
    let head = fixture.git(&["rev-parse", "HEAD"]);

    let (ctx, result) = deploy(&fixture, &["staging", "--dry-run", "--infra"]);
    result.unwrap();

    let mut expected = vec![
        "$ docker --version".to_owned(),
        "$ aws --version".to_owned(),
        "$ git --version".to_owned(),
        "$ kubectl version --client".to_owned(),
        "$ kubectl argo rollouts version --short".to_owned(),
        "$ argocd version --client --short".to_owned(),
        "$ curl --version".to_owned(),
        "$ terraform --version".to_owned(),
        "$ git rev-parse --abbrev-ref HEAD".to_owned(),
        "$ git status --porcelain".to_owned(),
        "$ git fetch --quiet --tags origin '<branch>'".to_owned(),
        "$ git rev-list --count 'HEAD..origin/<branch>'".to_owned(),
        "$ aws sts get-caller-identity --query Account --output text".to_owned(),
        "$ aws eks update-kubeconfig --name pixelmill-staging --region eu-west-1 --alias pixelmill-staging".to_owned(),
        "$ argocd account get-user-info --server argocd.staging.pixelmill.dev --grpc-web".to_owned(),
        "$ git rev-parse --short HEAD".to_owned(),
        "$ git rev-parse HEAD".to_owned(),
        "$ docker build --file Dockerfile --tag 'pixelmill:<short-sha>' --label 'org.opencontainers.image.revision=<commit>' \
         --label org.opencontainers.image.source=https://github.com/pixelmill/pixelmill \
         --label org.opencontainers.image.created=<time> ."
            .to_owned(),
        format!("$ docker tag 'pixelmill:<short-sha>' '{REPOSITORY}:<short-sha>'"),
        "$ aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin \
         123456789012.dkr.ecr.eu-west-1.amazonaws.com"
            .to_owned(),
        format!("$ docker push '{REPOSITORY}:<short-sha>'"),
        "$ aws ecr describe-images --region eu-west-1 --repository-name pixelmill --image-ids 'imageTag=<short-sha>' \
         --query 'imageDetails[0].imageDigest' --output text"
            .to_owned(),
        "$ terraform -chdir=terraform/envs/staging init -input=false -backend-config=backend.hcl".to_owned(),
        "$ terraform -chdir=terraform/envs/staging plan -input=false -out=<scratch>/staging.tfplan".to_owned(),
        "$ terraform -chdir=terraform/envs/staging apply -input=false <scratch>/staging.tfplan".to_owned(),
        "write deploy/staging/values.yaml: image.digest = \"sha256:<digest>\"".to_owned(),
        "$ git commit --quiet --message 'staging: deploy sha256:<digest> (image <short-sha>)' -- deploy/staging/values.yaml"
            .to_owned(),
        "$ git rev-parse HEAD".to_owned(),
        "$ git push --quiet origin '<branch>'".to_owned(),
        format!("$ {SYNC}"),
        format!("$ {GET_ROLLOUT}"),
        format!("$ {WAIT}"),
    ];
    expected.extend(dry_smoke_lines(&fixture.server.url));
    expected.extend([
        "$ git tag --annotate 'verified/staging/<commit>' --message 'sha256:<digest>' '<commit>'".to_owned(),
        "$ git push --quiet origin 'refs/tags/verified/staging/<commit>'".to_owned(),
    ]);
    assert_eq!(commands(&ctx), expected);
    let printed = ctx.output.lines().join("\n");
    assert!(printed.contains(&format!("(when paused for a promotion after a passed analysis: $ {PROMOTE})")));

    assert!(fixture.calls().is_empty(), "a dry run calls no tool: {:?}", fixture.calls());
    assert!(fixture.server.requests().is_empty());
    assert_eq!(fixture.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(fixture.remote_git(&["rev-parse", "main"]), head);
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
    assert_eq!(fixture.git(&["tag"]), "");
}

#[test]
fn deploy_with_infra_plans_to_a_file_and_applies_that_file() {
    let fixture = Fixture::new("deploy-infra");
    let (_, result) = deploy(&fixture, &["staging", "--infra"]);
    result.unwrap();
    let calls = fixture.calls();
    let terraform: Vec<&String> = calls.iter().filter(|call| call.starts_with("terraform")).collect();
    assert_eq!(
        terraform,
        [
            "terraform --version",
            "terraform -chdir=terraform/envs/staging init -input=false -backend-config=backend.hcl",
            "terraform -chdir=terraform/envs/staging plan -input=false -out=<scratch>/staging.tfplan",
            "terraform -chdir=terraform/envs/staging apply -input=false <scratch>/staging.tfplan",
        ]
    );
    let position = |prefix: &str| calls.iter().position(|call| call.starts_with(prefix)).unwrap();
    assert!(position("docker push") < position("terraform -chdir=terraform/envs/staging init"));
    assert!(position("terraform -chdir=terraform/envs/staging apply") < position("argocd app sync"));
}

#[test]
fn buildah_builds_when_docker_is_absent() {
    let fixture = Fixture::new("buildah");
    fixture.uninstall("docker");
    let short = fixture.short_head();
    let (_, result) = deploy(&fixture, &["staging"]);
    result.unwrap();
    let calls = fixture.calls();
    assert_eq!(calls[0], "buildah --version");
    assert!(
        calls
            .iter()
            .any(|call| call.starts_with(&format!("buildah bud --layers --file Dockerfile --tag pixelmill:{short} ")))
    );
    assert!(calls.contains(
        &"buildah login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_owned()
    ));
    assert!(calls.contains(&format!("buildah push {REPOSITORY}:{short}")));
    assert!(!calls.iter().any(|call| call.starts_with("podman")));
}

/// The deploy failed at `step`, with a message containing `why`, and nothing was released.
fn assert_failed_before_release(fixture: &Fixture, result: Result<(), String>, step: &str, why: &str) {
    let error = result.unwrap_err();
    assert!(error.starts_with(&format!("deploy staging: step `{step}` failed")), "{error}");
    assert!(error.contains(why), "{error}");
    assert_eq!(fixture.remote_log(), ["initial"]);
    assert!(!fixture.calls().iter().any(|call| call.starts_with("argocd app sync")));
    assert!(fixture.server.requests().is_empty());
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_failed_build_stops_before_anything_is_released() {
    let fixture = Fixture::new("build-fails");
    fixture.rule("docker build *", 1, "ERROR: failed to solve: process \"cargo build\" did not complete");
    let (_, result) = deploy(&fixture, &["staging"]);
    assert_failed_before_release(&fixture, result, "image", "failed to solve");
    assert!(!fixture.calls().iter().any(|call| call.starts_with("docker push")));
}

#[test]
fn a_failed_push_stops_before_anything_is_released() {
    let fixture = Fixture::new("push-fails");
    fixture.rule("docker push *", 1, "denied: not authorized to perform ecr:InitiateLayerUpload");
    let (_, result) = deploy(&fixture, &["staging"]);
    assert_failed_before_release(&fixture, result, "image", "ecr:InitiateLayerUpload");
}

/// The deploy failed at `step` after the values commit: the remote has the commit and its
/// revert, the digest is back, the Rollout was aborted, and no verified tag was written.
fn assert_rolled_back(fixture: &Fixture, result: Result<(), String>, step: &str, why: &str) -> String {
    let error = result.unwrap_err();
    assert!(error.starts_with(&format!("deploy staging: step `{step}` failed")), "{error}");
    assert!(error.contains(why), "{error}");
    assert!(error.contains("rolled back: aborted Rollout pixelmill, reverted "), "{error}");
    assert!(error.contains(" and pushed it, synced pixelmill-staging"), "{error}");
    let log = fixture.remote_log();
    assert!(log.len() >= 3, "{log:?}");
    assert!(log[0].starts_with("Revert \"staging: deploy sha256:"), "{log:?}");
    assert!(log[1].starts_with("staging: deploy sha256:"), "{log:?}");
    assert_eq!(fixture.remote_digest("staging"), ZERO_DIGEST);
    let calls = fixture.calls();
    let abort = calls.iter().position(|call| call == ABORT).expect("the Rollout is aborted");
    let synced = calls[abort + 1..].iter().any(|call| call.starts_with("argocd app sync pixelmill-staging "));
    assert!(synced, "a sync after the abort brings back the old spec");
    assert!(fixture.remote_verified("staging").is_empty());
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
    error
}

#[test]
fn a_failed_sync_is_rolled_back() {
    let fixture = Fixture::new("sync-fails");
    fixture.sequence(
        "argocd app sync *",
        "sync",
        &[(20, "FATA[0002] rpc error: code = PermissionDenied desc = permission denied: applications, sync"), (0, "")],
    );
    let (_, result) = deploy(&fixture, &["staging"]);
    assert_rolled_back(&fixture, result, "release", "permission denied: applications, sync");
}

#[test]
fn an_automated_sync_already_running_is_waited_on() {
    let fixture = Fixture::new("sync-running");
    fixture.rule("argocd app sync *", 20, "FATA[0000] rpc error: another operation is already in progress");
    let (ctx, result) = deploy(&fixture, &["staging"]);
    result.unwrap();
    assert!(ctx.output.lines().iter().any(|line| line.contains("is already syncing (automated sync)")));
}

#[test]
fn a_rollout_that_never_gets_healthy_times_out_and_is_rolled_back() {
    let fixture = Fixture::new("health-timeout");
    fixture.edit("deploy/staging/environment.toml", "timeout_seconds = 1800", "timeout_seconds = 1");
    fixture.rollout(&[Rollout::progressing(DIGEST)]);
    let (_, result) = deploy(&fixture, &["staging"]);
    let error =
        assert_rolled_back(&fixture, result, "release", &format!("the Rollout is not Healthy on {DIGEST} after 1 s"));
    assert!(error.contains("last seen: Progressing (more replicas need to be updated)"), "{error}");
}

#[test]
fn a_degraded_rollout_fails_at_once_and_is_rolled_back() {
    let fixture = Fixture::new("degraded");
    fixture.rollout(&[Rollout::progressing(DIGEST), Rollout::degraded(DIGEST)]);
    let (_, result) = deploy(&fixture, &["staging"]);
    assert_rolled_back(&fixture, result, "release", "the Rollout is Degraded: Degraded (RolloutAborted");
}

#[test]
fn an_unhealthy_application_is_rolled_back() {
    let fixture = Fixture::new("app-unhealthy");
    fixture.sequence(
        "argocd app wait *",
        "wait",
        &[(20, "FATA[0300] timed out (300s) waiting for app \"pixelmill-staging\" match desired state"), (0, "")],
    );
    let (_, result) = deploy(&fixture, &["staging"]);
    assert_rolled_back(&fixture, result, "release", "timed out (300s) waiting for app");
}

#[test]
fn a_failed_smoke_test_is_rolled_back() {
    let fixture = Fixture::new("smoke-fails");
    fixture.server.behave(Behaviour { render_status: 500, ..Behaviour::default() });
    let (_, result) = deploy(&fixture, &["staging"]);
    let error = assert_rolled_back(
        &fixture,
        result,
        "verify",
        "GET /v1/images/img_7Qx2/render?w=64&fmt=webp: no success after 3 attempts; last: answered 500",
    );
    assert!(error.contains(r#"{"code":"internal"}"#), "{error}");
    let renders = fixture.server.lines().iter().filter(|line| line.contains("/render")).count();
    assert_eq!(renders, 3, "5xx is retried");
}

#[test]
fn a_refused_upload_fails_the_smoke_test_without_retrying() {
    let fixture = Fixture::new("smoke-401");
    fixture.server.behave(Behaviour { upload_status: 401, ..Behaviour::default() });
    let (_, result) = deploy(&fixture, &["staging"]);
    assert_rolled_back(&fixture, result, "verify", "POST /v1/images answered 401");
    assert_eq!(fixture.server.lines(), ["GET /readyz", "POST /v1/images"]);
}

#[test]
fn readiness_is_retried_until_the_service_is_ready() {
    let fixture = Fixture::new("smoke-retry");
    fixture.server.behave(Behaviour { not_ready: 2, ..Behaviour::default() });
    let (_, result) = deploy(&fixture, &["staging"]);
    result.unwrap();
    let mut expected = vec!["GET /readyz".to_owned(); 2];
    expected.extend(smoke_requests());
    assert_eq!(fixture.server.lines(), expected);
}

#[test]
fn a_rollout_paused_for_promotion_is_promoted_when_the_environment_allows_it() {
    let fixture = Fixture::new("auto-promote");
    fixture.rollout(&[Rollout::canary_paused(DIGEST), Rollout::canary_paused(DIGEST), Rollout::healthy(DIGEST)]);
    let (_, result) = deploy(&fixture, &["staging"]);
    result.unwrap();
    let calls = fixture.calls();
    let tail = &calls[calls.iter().position(|call| call.starts_with("argocd app sync")).unwrap()..];
    assert_eq!(tail, [SYNC, GET_ROLLOUT, PROMOTE, GET_ROLLOUT, GET_ROLLOUT, WAIT]);
}

#[test]
fn a_rollout_waiting_for_a_person_times_out_on_purpose() {
    let fixture = Fixture::new("manual-promote");
    fixture.edit("deploy/staging/environment.toml", "auto_promote = true", "auto_promote = false");
    fixture.edit("deploy/staging/environment.toml", "timeout_seconds = 1800", "timeout_seconds = 1");
    fixture.rollout(&[Rollout::canary_paused(DIGEST)]);
    let (ctx, result) = deploy(&fixture, &["staging"]);
    let error =
        assert_rolled_back(&fixture, result, "release", "after 1 s: it still waits for a promotion that nobody made");
    assert!(error.contains(&format!("promote it with `{PROMOTE}`")), "{error}");
    assert!(!fixture.calls().contains(&PROMOTE.to_owned()));
    let told = ctx.output.lines().iter().filter(|line| line.contains("the Rollout waits for a promotion")).count();
    assert_eq!(told, 1, "said once, not at every poll");
}

// --- preflight ---------------------------------------------------------------------------

fn assert_preflight_fails(fixture: &Fixture, why: &str) {
    let (_, result) = deploy(fixture, &["staging"]);
    let error = result.unwrap_err();
    assert!(error.starts_with("deploy staging: step `preflight` failed: "), "{error}");
    assert!(error.contains(why), "expected `{why}` in: {error}");
    assert!(!fixture.calls().iter().any(|call| call.contains(" build ") || call.starts_with("argocd app")));
    assert!(!fixture.remote_log()[0].starts_with("staging: deploy"));
}

#[test]
fn preflight_names_a_missing_tool() {
    let fixture = Fixture::new("no-argocd");
    fixture.uninstall("argocd");
    assert_preflight_fails(&fixture, "`argocd` is not on PATH: install the Argo CD CLI");
}

#[test]
fn preflight_names_every_missing_tool_at_once() {
    let fixture = Fixture::new("no-tools");
    for program in ["docker", "buildah", "podman", "kubectl"] {
        fixture.uninstall(program);
    }
    assert_preflight_fails(&fixture, "no container tool: none of docker, buildah, podman is on PATH");
    assert_preflight_fails(&fixture, "`kubectl` is not on PATH: install kubectl\n`kubectl` is not on PATH");
}

#[test]
fn preflight_refuses_an_old_tool() {
    let fixture = Fixture::new("old-docker");
    fixture.rule("docker --version", 0, "Docker version 19.03.12, build 48a66213fe");
    assert_preflight_fails(&fixture, "`docker` is 19.3.12, older than the supported 20.10.0");
}

#[test]
fn preflight_refuses_a_missing_rollouts_plugin() {
    let fixture = Fixture::new("no-plugin");
    fixture.rule("kubectl argo rollouts version *", 1, "error: unknown command \"argo\" for \"kubectl\"");
    assert_preflight_fails(
        &fixture,
        "unknown command \"argo\" for \"kubectl\" (is the Argo Rollouts kubectl plugin installed?)",
    );
}

#[test]
fn preflight_refuses_the_wrong_aws_account() {
    let fixture = Fixture::new("wrong-account");
    fixture.rule("aws sts get-caller-identity *", 0, "111111111111");
    assert_preflight_fails(
        &fixture,
        "the AWS credentials are for account 111111111111, but staging is account 123456789012",
    );
}

#[test]
fn preflight_refuses_missing_aws_credentials() {
    let fixture = Fixture::new("no-credentials");
    fixture.rule(
        "aws sts get-caller-identity *",
        255,
        "Unable to locate credentials. You can configure credentials by running \"aws configure\".",
    );
    assert_preflight_fails(&fixture, "cannot tell which AWS account the credentials are for");
}

#[test]
fn preflight_refuses_a_dirty_tree() {
    let fixture = Fixture::new("dirty");
    std::fs::write(fixture.repo.join("notes.txt"), "wip").unwrap();
    let values = fixture.repo.join("deploy/staging/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, text + "# local edit\n").unwrap();
    assert_preflight_fails(&fixture, "git: the work tree is not clean (M deploy/staging/values.yaml, ?? notes.txt)");
}

#[test]
fn preflight_refuses_a_branch_that_is_not_allowed() {
    let fixture = Fixture::new("branch");
    fixture.git(&["checkout", "--quiet", "-b", "feature/faster-resize"]);
    assert_preflight_fails(&fixture, "git: on branch `feature/faster-resize`, but staging is released only from: main");
}

#[test]
fn preflight_refuses_a_branch_behind_its_remote() {
    let fixture = Fixture::new("behind");
    let other = fixture.dir.path().join("other");
    git(fixture.dir.path(), &["clone", "--quiet", fixture.remote.to_str().unwrap(), "other"]);
    std::fs::write(other.join("README.md"), "news\n").unwrap();
    git(&other, &["add", "README.md"]);
    git(&other, &["-c", "user.name=Other", "-c", "user.email=o@x", "commit", "--quiet", "--message", "news"]);
    git(&other, &["push", "--quiet", "origin", "main"]);
    assert_preflight_fails(&fixture, "git: main is 1 commit(s) behind origin/main: pull first");
}

#[test]
fn preflight_refuses_when_argocd_is_not_logged_in() {
    let fixture = Fixture::new("argocd-login");
    fixture.rule(
        "argocd account get-user-info *",
        20,
        "FATA[0000] rpc error: code = Unauthenticated desc = token is expired",
    );
    assert_preflight_fails(
        &fixture,
        "argocd: not logged in to argocd.staging.pixelmill.dev: run `argocd login argocd.staging.pixelmill.dev --sso --grpc-web`",
    );
}

#[test]
fn preflight_refuses_values_that_pull_from_another_repository() {
    let fixture = Fixture::new("repository");
    fixture.edit("deploy/staging/values.yaml", "amazonaws.com/pixelmill", "amazonaws.com/pixelmill-staging");
    assert_preflight_fails(
        &fixture,
        "deploy/staging/values.yaml pulls image.repository `123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill-staging`",
    );
}

#[test]
fn an_unknown_environment_is_named() {
    let fixture = Fixture::new("unknown-env");
    let (_, result) = deploy(&fixture, &["qa"]);
    assert_eq!(
        result.unwrap_err().lines().next().unwrap(),
        "deploy qa: step `preflight` failed: unknown environment `qa`: deploy/qa/environment.toml does not exist"
    );
    assert!(fixture.calls().is_empty());
}

#[test]
fn a_rejected_push_is_reverted_here_and_nothing_reaches_the_cluster() {
    let fixture = Fixture::new("push-rejected");
    let hook = fixture.remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'main is protected: open a pull request' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let error = deploy(&fixture, &["staging"]).1.unwrap_err();
    assert!(
        error.starts_with("deploy staging: step `release` failed: `git push --quiet origin main` failed"),
        "{error}"
    );
    assert!(error.contains("main is protected"), "{error}");
    assert!(error.contains("rolled back: reverted ") && error.contains("(it was never pushed)"), "{error}");
    assert_eq!(fixture.remote_log(), ["initial"]);
    let calls = fixture.calls();
    assert!(
        !calls.iter().any(|call| call.starts_with("argocd app sync") || call.contains("rollouts abort")),
        "{calls:?}"
    );
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");
    assert_eq!(
        crate::values::digest(&std::fs::read_to_string(fixture.repo.join("deploy/staging/values.yaml")).unwrap())
            .unwrap()
            .as_str(),
        ZERO_DIGEST
    );
}
