//! Running external commands. A `Cmd` is one command line: a program, its arguments, extra
//! environment and optional bytes for its stdin. `Context` (context.rs) runs it, printing it
//! first as `$ program args...`; a failure names the command.
//!
//! The free functions below are the original functions of `run` and `ci`, which run in the
//! process's own environment; they go through the same `Context`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::context::Context;

/// The workspace root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `program args...` in the project root, inheriting stdio; Err names the command.
/// cargo's target directory: `CARGO_TARGET_DIR` (relative to the project root) or `target`.
pub fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()).unwrap_or_else(|| "target".into());
    project_root().join(dir)
}

pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    Context::from_process().run(&Cmd::new(program).args(args))
}

pub fn run_with_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let mut cmd = Cmd::new(program).args(args);
    for (key, value) in env {
        cmd = cmd.env(key, value);
    }
    Context::from_process().run(&cmd)
}

/// Runs a command without printing it and returns its trimmed stdout; Err names the command.
pub fn output(program: &str, args: &[&str]) -> Result<String, String> {
    Context::from_process().read(&Cmd::new(program).args(args))
}

/// One command line.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// Bytes written to the command's stdin, and how to show them in the printed line
    /// (never the bytes themselves: they may be a password).
    pub(crate) stdin: Option<(Vec<u8>, String)>,
}

impl Cmd {
    pub(crate) fn new(program: &str) -> Cmd {
        Cmd { program: program.to_owned(), args: Vec::new(), env: Vec::new(), stdin: None }
    }

    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Feeds `bytes` to stdin; `shown` stands for them in the printed line.
    pub(crate) fn stdin(mut self, bytes: Vec<u8>, shown: &str) -> Cmd {
        self.stdin = Some((bytes, shown.to_owned()));
        self
    }
}

/// The command as a shell would read it: arguments quoted where needed, stdin described.
/// Extra environment is not shown (it may hold a secret).
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        if let Some((_, shown)) = &self.stdin {
            write!(f, " <<< {shown}")?;
        }
        Ok(())
    }
}

/// Single-quotes `word` unless every character is safe for a shell as it is.
pub(crate) fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-+=/.,:@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split_or_expand() {
        let cmd = Cmd::new("aws")
            .args(["ecr", "describe-images", "--query", "imageDetails[0].imageDigest"])
            .arg("it's")
            .arg("");
        assert_eq!(cmd.to_string(), r"aws ecr describe-images --query 'imageDetails[0].imageDigest' 'it'\''s' ''");
    }

    #[test]
    fn display_shows_stdin_by_its_description_only() {
        let cmd = Cmd::new("docker").args(["login", "--password-stdin"]).stdin(b"secret".to_vec(), "<password>");
        assert_eq!(cmd.to_string(), "docker login --password-stdin <<< <password>");
    }
}
