//! Tests of the delivery commands against a scratch repository and recording fakes.
//!
//! - The cloud tools (docker, buildah, podman, aws, terraform, helm, kubectl, argocd; cargo for
//!   `load`) are one small shell script installed under each name in a fakes directory. It
//!   appends its command line to `calls.log`, keeps what it reads on stdin, and answers from a
//!   rules table: the first glob that matches the command line gives the exit code and the
//!   output (literal, a file, or the next of a numbered sequence of files, so a test can script
//!   "Progressing, Paused, then Healthy" or "the first sync fails").
//! - git and curl are the real ones: every commit, revert, tag and push happens in a scratch
//!   clone of the repository's deploy/ and helm/ files with a bare remote, and the smoke test
//!   talks HTTP to a server made here on 127.0.0.1.
//! - PATH holds only the fakes and links to the few real programs the tests need, so a tool
//!   that is not faked is missing, as on a machine without it.
//!
//! Helm and Terraform are run for real where they can run offline (chart.rs, environments.rs).

mod chart;
mod deploy;
mod deploy_local;
mod environments;
mod image;
mod others;
mod promote;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::context::Context;
use crate::report::Output;

/// The digest the fake ECR answers with.
pub(crate) const DIGEST: &str = "sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
pub(crate) const DIGEST_2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub(crate) const ZERO_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
pub(crate) const REPOSITORY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill";
pub(crate) const API_KEY: &str = "pm_test_key_9f8e7d";

/// The fake: see the module documentation.
const FAKE: &str = r#"#!/bin/sh
line="${0##*/} $*"
printf '%s\n' "$line" >> "$FAKE_DIR/calls.log"
case "$line" in
  *--password-stdin*|*" -f -"*) { cat; printf '%s\n' '----'; } >> "$FAKE_DIR/stdin-${0##*/}.log" ;;
esac
tab=$(printf '\t')
while IFS="$tab" read -r pattern code answer; do
  case "$line" in
    $pattern)
      file=""
      if [ "$code" = seq ]; then
        n=0
        [ -f "$FAKE_DIR/$answer.n" ] && read -r n < "$FAKE_DIR/$answer.n"
        n=$((n + 1))
        while [ "$n" -gt 1 ] && [ ! -f "$FAKE_DIR/$answer.$n" ]; do n=$((n - 1)); done
        printf '%s\n' "$n" > "$FAKE_DIR/$answer.n"
        code=0
        [ -f "$FAKE_DIR/$answer.$n.code" ] && read -r code < "$FAKE_DIR/$answer.$n.code"
        file="$FAKE_DIR/$answer.$n"
      elif [ "${answer#@}" != "$answer" ]; then
        file="$FAKE_DIR/${answer#@}"
      elif [ "$answer" = - ]; then
        file=/dev/null
      fi
      if [ "$code" = 0 ]; then
        if [ -n "$file" ]; then cat "$file"; else printf '%s\n' "$answer"; fi
      else
        if [ -n "$file" ]; then cat "$file" >&2; else printf '%s\n' "$answer" >&2; fi
      fi
      exit "$code"
      ;;
  esac
done < "$FAKE_DIR/rules"
exit 0
"#;

/// `terraform output -json` of an applied environment, as Terraform prints it (some outputs).
pub(crate) const TERRAFORM_OUTPUTS: &str = r#"{
  "cluster_name": {"sensitive": false, "type": "string", "value": "pixelmill-staging"},
  "external_secrets_role_arn": {"sensitive": false, "type": "string", "value": "arn:aws:iam::123456789012:role/pixelmill-staging-external-secrets"},
  "lb_controller_role_arn": {"sensitive": false, "type": "string", "value": "arn:aws:iam::123456789012:role/pixelmill-staging-lb-controller"},
  "vpc_id": {"sensitive": false, "type": "string", "value": "vpc-0a1b2c3d4e5f67890"}
}
"#;

pub(crate) const FAKED: &[&str] =
    &["docker", "buildah", "podman", "aws", "terraform", "helm", "kubectl", "argocd", "cargo", "kind"];

/// Real programs the tests put on PATH: git, curl and tar (used for real), sh and cat (the
/// fake's).
const REAL: &[&str] = &["git", "curl", "tar", "sh", "cat"];

/// A directory removed at the end of the test.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pixelmill-xtask-test-{}-{count}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scratch repository with a bare remote, the fakes, and a smoke-test server.
pub(crate) struct Fixture {
    pub(crate) dir: TempDir,
    pub(crate) repo: PathBuf,
    pub(crate) remote: PathBuf,
    pub(crate) fakes: PathBuf,
    pub(crate) state: PathBuf,
    pub(crate) server: Server,
    rules: RefCell<Vec<(String, String, String)>>,
    pub(crate) vars: RefCell<BTreeMap<OsString, OsString>>,
}

impl Fixture {
    pub(crate) fn new(name: &str) -> Fixture {
        Fixture::with(name, |_| {})
    }

    /// A fixture whose files `edit` may change before the first commit.
    pub(crate) fn with(name: &str, edit: impl FnOnce(&Path)) -> Fixture {
        let dir = TempDir::new(name);
        let root = dir.path().to_path_buf();
        let (repo, remote, fakes, state, tools, home) = (
            root.join("repo"),
            root.join("remote.git"),
            root.join("fakes"),
            root.join("state"),
            root.join("tools"),
            root.join("home"),
        );
        for path in [&repo, &fakes, &state, &tools, &home] {
            std::fs::create_dir_all(path).unwrap();
        }
        let server = Server::start();
        let source = crate::cmd::project_root();
        copy_tree(&source.join("deploy"), &repo.join("deploy"));
        copy_tree(&source.join("helm/pixelmill"), &repo.join("helm/pixelmill"));
        std::fs::write(repo.join("Dockerfile"), "FROM scratch\n").unwrap();
        for env in ["staging", "prod"] {
            let path = repo.join(format!("deploy/{env}/environment.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            let url_line = text.lines().find(|line| line.starts_with("url = ")).unwrap().to_owned();
            std::fs::write(&path, text.replace(&url_line, &format!("url = \"{}\"", server.url))).unwrap();
        }
        edit(&repo);

        for program in FAKED {
            let path = fakes.join(program);
            std::fs::write(&path, FAKE).unwrap();
            make_executable(&path);
        }
        for program in REAL {
            let real = which(program).unwrap_or_else(|| panic!("the tests need `{program}` on PATH"));
            std::os::unix::fs::symlink(real, tools.join(program)).unwrap();
        }
        let path = std::env::join_paths([&fakes, &tools]).unwrap();
        let vars: BTreeMap<OsString, OsString> = [
            ("PATH", path),
            ("HOME", home.into_os_string()),
            ("FAKE_DIR", state.clone().into_os_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("PIXELMILL_API_KEY", API_KEY.into()),
        ]
        .into_iter()
        .map(|(key, value)| (OsString::from(key), value))
        .collect();

        let fixture = Fixture {
            dir,
            repo,
            remote,
            fakes,
            state,
            server,
            rules: RefCell::new(Vec::new()),
            vars: RefCell::new(vars),
        };
        git(&fixture.dir.0, &["init", "--quiet", "--bare", "--initial-branch=main", "remote.git"]);
        fixture.git(&["init", "--quiet", "--initial-branch=main"]);
        for (key, value) in
            [("user.name", "Pixelmill Test"), ("user.email", "test@pixelmill.dev"), ("commit.gpgsign", "false")]
        {
            fixture.git(&["config", key, value]);
        }
        fixture.git(&["remote", "add", "origin", fixture.remote.to_str().unwrap()]);
        fixture.git(&["add", "--all"]);
        fixture.git(&["commit", "--quiet", "--message", "initial"]);
        fixture.git(&["push", "--quiet", "--set-upstream", "origin", "main"]);
        fixture.default_rules();
        fixture
    }

    fn default_rules(&self) {
        self.file("terraform-version", "Terraform v1.11.4\non linux_amd64\n");
        self.file("kubectl-version", "Client Version: v1.33.1\nKustomize Version: v5.6.0\n");
        self.file("argocd-user", "Logged In: true\nUsername: admin\nIssuer: argocd\n");
        self.file("argocd-sync", "Name: argocd/pixelmill\nOperation: Sync\nPhase: Succeeded\n");
        self.file("terraform-outputs", TERRAFORM_OUTPUTS);
        let rules = [
            ("docker --version", "0", "Docker version 28.2.2, build e6534b4"),
            ("buildah --version", "0", "buildah version 1.28.2 (image-spec 1.0.2-dev, runtime-spec 1.0.2-dev)"),
            ("podman --version", "0", "podman version 4.3.1"),
            ("aws --version", "0", "aws-cli/2.17.0 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12"),
            ("terraform --version", "0", "@terraform-version"),
            ("terraform -chdir=* output -json", "0", "@terraform-outputs"),
            ("helm version --short", "0", "v3.16.2+g13654a5"),
            ("kubectl version --client", "0", "@kubectl-version"),
            ("kubectl argo rollouts version --short", "0", "kubectl-argo-rollouts: v1.8.3+49fa151"),
            ("argocd version --client --short", "0", "argocd: v3.1.5+cfeed49"),
            ("aws sts get-caller-identity *", "0", "123456789012"),
            ("aws ecr get-login-password *", "0", "fake-ecr-password"),
            ("aws ecr describe-images *", "0", DIGEST),
            ("aws eks update-kubeconfig *", "0", "Updated context pixelmill in /home/.kube/config"),
            ("argocd account get-user-info *", "0", "@argocd-user"),
            ("argocd app sync *", "0", "@argocd-sync"),
            ("argocd app wait *", "0", "@argocd-sync"),
            ("kubectl get rollout *", "seq", "rollout"),
        ];
        for (pattern, code, answer) in rules {
            self.rules.borrow_mut().push((pattern.to_owned(), code.to_owned(), answer.to_owned()));
        }
        self.write_rules();
        self.rollout(&[Rollout::healthy(DIGEST)]);
    }

    /// Puts a rule before all others.
    pub(crate) fn rule(&self, pattern: &str, code: i32, answer: &str) {
        assert!(!answer.contains('\n'), "a rule's answer is one line; put longer ones in a file");
        self.rules.borrow_mut().insert(0, (pattern.to_owned(), code.to_string(), answer.to_owned()));
        self.write_rules();
    }

    /// A rule answering each call with the next of `answers` (exit code, output); the last one
    /// repeats.
    pub(crate) fn sequence(&self, pattern: &str, name: &str, answers: &[(i32, &str)]) {
        self.reset_sequence(name);
        for (index, (code, answer)) in answers.iter().enumerate() {
            self.file(&format!("{name}.{}", index + 1), answer);
            self.file(&format!("{name}.{}.code", index + 1), &code.to_string());
        }
        self.rules.borrow_mut().insert(0, (pattern.to_owned(), "seq".to_owned(), name.to_owned()));
        self.write_rules();
    }

    fn reset_sequence(&self, name: &str) {
        for entry in std::fs::read_dir(&self.state).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&format!("{name}.")) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }

    /// The states `kubectl get rollout` answers with, in order (the last repeats).
    pub(crate) fn rollout(&self, states: &[Rollout]) {
        self.reset_sequence("rollout");
        for (index, state) in states.iter().enumerate() {
            self.file(&format!("rollout.{}", index + 1), &state.json());
        }
    }

    fn write_rules(&self) {
        let text: String = self
            .rules
            .borrow()
            .iter()
            .map(|(pattern, code, answer)| format!("{pattern}\t{code}\t{answer}\n"))
            .collect();
        std::fs::write(self.state.join("rules"), text).unwrap();
    }

    pub(crate) fn file(&self, name: &str, text: &str) {
        std::fs::write(self.state.join(name), text).unwrap();
    }

    /// Removes a fake, as on a machine without that tool.
    pub(crate) fn uninstall(&self, program: &str) {
        std::fs::remove_file(self.fakes.join(program)).unwrap();
    }

    /// The command lines the fakes were called with.
    pub(crate) fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("calls.log")).unwrap_or_default().lines().map(normalise).collect()
    }

    pub(crate) fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.state.join("calls.log"));
    }

    /// What `program` read on stdin, call after call.
    pub(crate) fn stdin_of(&self, program: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("stdin-{program}.log"))).unwrap_or_default()
    }

    pub(crate) fn context(&self) -> Context {
        let mut ctx = Context::new(self.repo.clone(), self.vars.borrow().clone(), Output::Memory(RefCell::default()));
        ctx.poll_interval = Duration::from_millis(1);
        ctx.sample_interval = Duration::ZERO;
        ctx.smoke_attempts = 3;
        ctx.smoke_retry_delay = Duration::from_millis(5);
        ctx.answers = Some(RefCell::new(Vec::new()));
        ctx
    }

    /// git in the work tree; its stdout.
    pub(crate) fn git(&self, args: &[&str]) -> String {
        git(&self.repo, args)
    }

    /// git in the bare remote; its stdout.
    pub(crate) fn remote_git(&self, args: &[&str]) -> String {
        git(&self.remote, args)
    }

    pub(crate) fn short_head(&self) -> String {
        self.git(&["rev-parse", "--short", "HEAD"])
    }

    /// The digest deploy/<env>/values.yaml holds on the remote's main.
    pub(crate) fn remote_digest(&self, env: &str) -> String {
        let values = self.remote_git(&["show", &format!("main:deploy/{env}/values.yaml")]);
        crate::values::digest(&values).unwrap().to_string()
    }

    /// Subjects of the remote's main, newest first.
    pub(crate) fn remote_log(&self) -> Vec<String> {
        self.remote_git(&["log", "--format=%s", "main"]).lines().map(str::to_owned).collect()
    }

    /// `verified/<env>/...` tags on the remote with their digests.
    pub(crate) fn remote_verified(&self, env: &str) -> Vec<(String, String)> {
        let refs = format!("refs/tags/verified/{env}/");
        self.remote_git(&["for-each-ref", "--format=%(refname:short) %(contents:subject)", &refs])
            .lines()
            .filter_map(|line| line.split_once(' ').map(|(tag, digest)| (tag.to_owned(), digest.to_owned())))
            .collect()
    }

    /// Commits every change in the work tree and pushes it.
    pub(crate) fn commit_all(&self, message: &str) {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--message", message]);
        self.git(&["push", "--quiet", "origin", "main"]);
    }

    /// Replaces `from` with `to` in a file of the work tree, then commits and pushes.
    pub(crate) fn edit(&self, path: &str, from: &str, to: &str) {
        let file = self.repo.join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "{path} has no `{from}`");
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
        self.commit_all(&format!("edit {path}"));
    }
}

/// A Rollout as `kubectl get rollout -o json` shows it.
pub(crate) struct Rollout {
    phase: &'static str,
    digest: String,
    pause: Option<&'static str>,
    analysis: Option<&'static str>,
    message: &'static str,
}

impl Rollout {
    pub(crate) fn healthy(digest: &str) -> Rollout {
        Rollout { phase: "Healthy", digest: digest.to_owned(), pause: None, analysis: None, message: "" }
    }

    pub(crate) fn progressing(digest: &str) -> Rollout {
        Rollout { phase: "Progressing", message: "more replicas need to be updated", ..Rollout::healthy(digest) }
    }

    pub(crate) fn degraded(digest: &str) -> Rollout {
        Rollout {
            phase: "Degraded",
            message: "RolloutAborted: metric success-rate assessed Failed",
            ..Rollout::healthy(digest)
        }
    }

    /// Blue-green, waiting for its promotion, with the pre-promotion analysis in `analysis`.
    pub(crate) fn blue_green_paused(digest: &str, analysis: &'static str) -> Rollout {
        Rollout {
            phase: "Paused",
            pause: Some("BlueGreenPause"),
            analysis: Some(analysis),
            message: "BlueGreenPause",
            ..Rollout::healthy(digest)
        }
    }

    /// Canary at a `pause: {}` step (waits for a promotion).
    pub(crate) fn canary_paused(digest: &str) -> Rollout {
        Rollout {
            phase: "Paused",
            pause: Some("CanaryPauseStep"),
            message: "CanaryPauseStep",
            ..Rollout::healthy(digest)
        }
    }

    fn json(&self) -> String {
        let pause = self.pause.map_or(String::new(), |reason| {
            format!(r#","pauseConditions":[{{"reason":"{reason}","startTime":"2025-01-01T00:00:00Z"}}],"currentStepIndex":0"#)
        });
        let analysis = self.analysis.map_or(String::new(), |status| {
            format!(r#","blueGreen":{{"prePromotionAnalysisRunStatus":{{"name":"pre","status":"{status}"}}}}"#)
        });
        format!(
            r#"{{"apiVersion":"argoproj.io/v1alpha1","kind":"Rollout","metadata":{{"name":"pixelmill","generation":7}},
"spec":{{"strategy":{{"canary":{{"steps":[{{"pause":{{}}}}]}}}},"template":{{"spec":{{"containers":[{{"name":"pixelmill","image":"{REPOSITORY}@{}"}}]}}}}}},
"status":{{"observedGeneration":"7","phase":"{}","message":"{}"{pause}{analysis}}}}}"#,
            self.digest, self.phase, self.message
        )
    }
}

/// Replaces what differs between runs (build times, scratch directories) with fixed markers.
pub(crate) fn normalise(line: &str) -> String {
    let scratch = format!("{}/pixelmill-xtask-", std::env::temp_dir().display());
    line.split(' ')
        .map(|word| {
            if let Some((key, _)) = word.split_once("org.opencontainers.image.created=") {
                format!("{key}org.opencontainers.image.created=<time>")
            } else if let Some(index) = word.find(&scratch).filter(|_| !word.contains("pixelmill-xtask-test-")) {
                let rest = &word[index + scratch.len()..];
                let file = rest.find('/').map_or("", |slash| &rest[slash..]);
                format!("{}<scratch>{file}", &word[..index])
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|path| path.is_file())
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The lines of a run that are commands or file writes.
pub(crate) fn commands(ctx: &Context) -> Vec<String> {
    ctx.output
        .lines()
        .iter()
        .filter(|line| line.starts_with("$ ") || line.starts_with("write "))
        .map(|l| normalise(l))
        .collect()
}

/// The smoke test's four requests against `url` as a dry run prints them.
pub(crate) fn dry_smoke_lines(url: &str) -> Vec<String> {
    let curl = "$ curl --silent --show-error --max-time 30 --output <scratch>/body --write-out '%{http_code}'";
    let auth = "--header @<scratch>/auth-header";
    vec![
        format!("{curl} {auth} {url}/readyz"),
        format!(
            "{curl} --request POST {auth} --header 'Content-Type: image/png' --header Expect: \
             --data-binary @<scratch>/smoke.png {url}/v1/images"
        ),
        format!("{curl} {auth} '{url}/v1/images/<id>/render?w=64&fmt=webp'"),
        format!("{curl} --request DELETE {auth} '{url}/v1/images/<id>'"),
    ]
}

/// One request the server received.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// How the server answers, settable by a test.
#[derive(Clone, Debug)]
pub(crate) struct Behaviour {
    /// `/readyz` answers 503 this many times first.
    pub(crate) not_ready: u32,
    pub(crate) upload_status: u16,
    pub(crate) render_status: u16,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour { not_ready: 0, upload_status: 201, render_status: 200 }
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that plays the image service for the smoke test.
pub(crate) struct Server {
    pub(crate) url: String,
    address: std::net::SocketAddr,
    pub(crate) requests: Arc<Mutex<Vec<Request>>>,
    pub(crate) behaviour: Arc<Mutex<Behaviour>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, how, stopped) = (Arc::clone(&requests), Arc::clone(&behaviour), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &seen, &how);
                }
            }
        });
        Server { url: format!("http://{address}"), address, requests, behaviour, stop, thread: Some(thread) }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// "METHOD target" of each request.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.requests().iter().map(|r| format!("{} {}", r.method, r.target)).collect()
    }

    pub(crate) fn behave(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>, how: &Mutex<Behaviour>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    seen.lock().unwrap().push(Request {
        method: method.clone(),
        target: target.clone(),
        authorization: headers.get("authorization").cloned(),
        content_type: headers.get("content-type").cloned(),
        body,
    });
    let mut behaviour = how.lock().unwrap();
    let webp =
        b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00".to_vec();
    let (status, content_type, answer): (u16, &str, Vec<u8>) = match (method.as_str(), target.as_str()) {
        ("GET", "/readyz") if behaviour.not_ready > 0 => {
            behaviour.not_ready -= 1;
            (503, "application/problem+json", br#"{"code":"not-ready"}"#.to_vec())
        }
        ("GET", "/readyz") => (200, "text/plain", b"ok".to_vec()),
        ("GET", "/healthz") => (200, "application/json", br#"{"status":"ok"}"#.to_vec()),
        ("POST", "/v1/render?w=100&fmt=jpeg") => (200, "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00".to_vec()),
        ("POST", "/v1/images") => (
            behaviour.upload_status,
            "application/json",
            br#"{"id":"img_7Qx2","format":"png","width":96,"height":64}"#.to_vec(),
        ),
        ("GET", "/v1/images/img_7Qx2/render?w=64&fmt=webp") if behaviour.render_status == 200 => {
            (200, "image/webp", webp)
        }
        ("GET", "/v1/images/img_7Qx2/render?w=64&fmt=webp") => {
            (behaviour.render_status, "application/problem+json", br#"{"code":"internal"}"#.to_vec())
        }
        ("DELETE", "/v1/images/img_7Qx2") => (204, "text/plain", Vec::new()),
        _ => (404, "application/problem+json", br#"{"code":"not-found"}"#.to_vec()),
    };
    drop(behaviour);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    )?;
    stream.write_all(&answer)?;
    stream.flush()
}
