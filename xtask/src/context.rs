//! The `Context` of a run: the repository root, the environment (PATH included) that tools are
//! found in and run with, whether this is a dry run, how often to poll, and where lines go.
//! Every external command of the delivery commands runs through `Context::run`, `output`,
//! `pipe`, `read` or `spawn`; tests build a `Context` that points at a scratch repository and at
//! recording fakes of the cloud tools.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use crate::cargo_env::set_by_cargo_for_its_child;
use crate::cmd::{self, Cmd};
use crate::report::Output;

pub(crate) struct Context {
    /// The repository the commands act on (files, git).
    pub(crate) root: PathBuf,
    /// The environment of this process and of every command it runs (PATH, HOME, AWS_*, ...).
    vars: BTreeMap<OsString, OsString>,
    /// Print the commands, run none.
    pub(crate) dry_run: bool,
    /// Pause between two polls of a Rollout or an Argo CD Application.
    pub(crate) poll_interval: Duration,
    /// Pause between two samples of the autoscaler in `hpa-test`.
    pub(crate) sample_interval: Duration,
    /// Smoke test: tries per request, and the pause between two.
    pub(crate) smoke_attempts: u32,
    pub(crate) smoke_retry_delay: Duration,
    /// Answers to confirmation prompts; None reads them from the terminal.
    pub(crate) answers: Option<std::cell::RefCell<Vec<String>>>,
    pub(crate) output: Output,
    scratch: std::cell::OnceCell<PathBuf>,
}

impl Context {
    /// The context of `cargo xtask` itself: this checkout and this process's environment,
    /// less what `cargo run` set for xtask alone (cargo_env.rs).
    pub(crate) fn from_process() -> Context {
        let vars: BTreeMap<OsString, OsString> =
            std::env::vars_os().filter(|(key, _)| !key.to_str().is_some_and(set_by_cargo_for_its_child)).collect();
        let ci = vars.get(&OsString::from("CI")).is_some_and(|value| !value.is_empty() && value != "false");
        let output = Output::for_stderr(ci);
        Context::new(cmd::project_root(), vars, output)
    }

    pub(crate) fn new(root: PathBuf, vars: BTreeMap<OsString, OsString>, output: Output) -> Context {
        Context {
            root,
            vars,
            dry_run: false,
            poll_interval: Duration::from_secs(10),
            sample_interval: Duration::from_secs(5),
            smoke_attempts: 10,
            smoke_retry_delay: Duration::from_secs(3),
            answers: None,
            output,
            scratch: std::cell::OnceCell::new(),
        }
    }

    /// This context with `name` set to `value` for itself and the commands it runs.
    pub(crate) fn with_var(mut self, name: &str, value: &str) -> Context {
        self.vars.insert(name.into(), value.into());
        self
    }

    pub(crate) fn var(&self, name: &str) -> Option<String> {
        self.vars.get(&OsString::from(name)).map(|value| value.to_string_lossy().into_owned())
    }

    /// A line for the person running the command.
    pub(crate) fn say(&self, line: &str) {
        self.output.line(line);
    }

    /// The program's path on this context's PATH.
    pub(crate) fn find(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            let path = self.root.join(program);
            return path.is_file().then_some(path);
        }
        let paths = self.vars.get(&OsString::from("PATH"))?;
        std::env::split_paths(paths).map(|dir| dir.join(program)).find(|path| path.is_file())
    }

    /// Prints the command, then runs it with the terminal as its stdout and stderr.
    pub(crate) fn run(&self, cmd: &Cmd) -> Result<(), String> {
        self.say(&format!("$ {cmd}"));
        if self.dry_run {
            return Ok(());
        }
        if self.output.is_memory() {
            // Tests: keep the child's output out of the test runner's.
            return self.capture(cmd).map(drop);
        }
        let mut command = self.command(cmd)?;
        self.output.hold(true);
        let status = match cmd.stdin.as_ref() {
            None => command.status(),
            Some((bytes, _)) => command.stdin(Stdio::piped()).spawn().and_then(|mut child| {
                feed(&mut child, bytes.clone());
                child.wait()
            }),
        };
        self.output.hold(false);
        let status = status.map_err(|e| format!("cannot start `{}`: {e}", cmd.program))?;
        if status.success() { Ok(()) } else { Err(format!("`{cmd}` failed ({status})")) }
    }

    /// Prints the command, runs it and returns its trimmed stdout. A dry run returns
    /// `placeholder` instead.
    pub(crate) fn output(&self, cmd: &Cmd, placeholder: &str) -> Result<String, String> {
        self.say(&format!("$ {cmd}"));
        if self.dry_run {
            return Ok(placeholder.to_owned());
        }
        self.capture(cmd)
    }

    /// Prints the command, then starts it in the background in a process group of its own (so
    /// it and everything it starts can be signalled at once), its stdout and stderr appended
    /// to `log`. A dry run starts nothing and returns None.
    pub(crate) fn spawn(&self, cmd: &Cmd, log: &Path) -> Result<Option<Child>, String> {
        use std::os::unix::process::CommandExt;
        self.say(&format!("$ {cmd} >{} 2>&1 &", cmd::quote(&log.display().to_string())));
        if self.dry_run {
            return Ok(None);
        }
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("cannot open {}: {e}", log.display()))
        };
        let mut command = self.command(cmd)?;
        command.stdin(Stdio::null()).stdout(open()?).stderr(open()?).process_group(0);
        command.spawn().map(Some).map_err(|e| format!("cannot start `{}`: {e}", cmd.program))
    }

    /// Prints the command and runs it, in a dry run too: it only reads (git's refs and history),
    /// and what it reads decides what the run would do (which digest a promotion takes, which
    /// one a rollback goes back to).
    pub(crate) fn query(&self, cmd: &Cmd) -> Result<String, String> {
        self.say(&format!("$ {cmd}"));
        self.capture(cmd)
    }

    /// Runs a command without printing it (or honouring a dry run): for reading state that
    /// no step depends on, such as a tool's presence for the original `run` and `ci`.
    pub(crate) fn read(&self, cmd: &Cmd) -> Result<String, String> {
        self.capture(cmd)
    }

    /// `first | second`: the stdout of `first` (never printed: a password, say) is the stdin
    /// of `second`.
    pub(crate) fn pipe(&self, first: &Cmd, second: &Cmd) -> Result<(), String> {
        self.say(&format!("$ {first} | {second}"));
        if self.dry_run {
            return Ok(());
        }
        let piped = self.capture_bytes(first)?;
        let second = second.clone().stdin(piped, "");
        self.capture(&second).map(drop)
    }

    fn capture(&self, cmd: &Cmd) -> Result<String, String> {
        let stdout = self.capture_bytes(cmd)?;
        Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
    }

    fn capture_bytes(&self, cmd: &Cmd) -> Result<Vec<u8>, String> {
        let mut command = self.command(cmd)?;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command.stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = command.spawn().map_err(|e| format!("cannot start `{}`: {e}", cmd.program))?;
        if let Some((bytes, _)) = &cmd.stdin {
            feed(&mut child, bytes.clone());
        }
        let out = child.wait_with_output().map_err(|e| format!("`{cmd}`: {e}"))?;
        if out.status.success() { Ok(out.stdout) } else { Err(failure(cmd, out.status, &out.stderr, &out.stdout)) }
    }

    fn command(&self, cmd: &Cmd) -> Result<Command, String> {
        let program = self.find(&cmd.program).ok_or_else(|| format!("`{}` is not on PATH", cmd.program))?;
        let mut command = Command::new(program);
        command.args(&cmd.args).env_clear().envs(&self.vars).current_dir(&self.root);
        for (key, value) in &cmd.env {
            command.env(key, value);
        }
        Ok(command)
    }

    /// A private directory for the files of this run (plan files, smoke-test bodies), removed
    /// when the run ends.
    pub(crate) fn scratch(&self) -> Result<&Path, String> {
        if let Some(dir) = self.scratch.get() {
            return Ok(dir);
        }
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pixelmill-xtask-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(self.scratch.get_or_init(|| dir))
    }

    /// Asks a yes/no-style question; returns the answer typed (or scripted).
    pub(crate) fn ask(&self, prompt: &str) -> Result<String, String> {
        if let Some(answers) = &self.answers {
            self.say(prompt);
            let mut answers = answers.borrow_mut();
            return if answers.is_empty() { Err("no answer given".to_owned()) } else { Ok(answers.remove(0)) };
        }
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err("there is no terminal to confirm on".to_owned());
        }
        self.say(prompt);
        self.output.hold(true);
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer);
        self.output.hold(false);
        read.map_err(|e| format!("cannot read the answer: {e}"))?;
        Ok(answer.trim().to_owned())
    }

    /// Waits between two polls (not at all in a dry run).
    pub(crate) fn pause(&self, duration: Duration) {
        if !self.dry_run {
            thread::sleep(duration);
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Some(dir) = self.scratch.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes `bytes` to the child's stdin from a thread, so a child that writes a lot before
/// reading cannot deadlock against us; a child that exits without reading is fine.
fn feed(child: &mut Child, bytes: Vec<u8>) {
    if let Some(mut stdin) = child.stdin.take() {
        thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
}

/// The error of a failed command: the command, its status and the end of what it said.
fn failure(cmd: &Cmd, status: ExitStatus, stderr: &[u8], stdout: &[u8]) -> String {
    let said = if stderr.iter().any(|b| !b.is_ascii_whitespace()) { stderr } else { stdout };
    let said = String::from_utf8_lossy(said);
    let lines: Vec<&str> = said.trim().lines().collect();
    let tail = lines[lines.len().saturating_sub(12)..].join("\n");
    if tail.is_empty() { format!("`{cmd}` failed ({status})") } else { format!("`{cmd}` failed ({status}): {tail}") }
}

/// Reads a whole file of the repository as text.
pub(crate) fn read_file(ctx: &Context, relative: &str) -> Result<String, String> {
    let path = ctx.root.join(relative);
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .map_err(|e| format!("cannot read {relative}: {e}"))?;
    Ok(text)
}
