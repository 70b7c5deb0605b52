//! `cargo xtask run [ARGS]`: the service or CLI from a fresh checkout in one command.

use crate::{cmd, system};

pub fn run(args: &[String]) -> Result<(), String> {
    system::ensure_build_tools()?;
    let mut cargo_args = vec!["run", "--release", "--quiet", "--package", "pixelmill", "--bin", "pixelmill", "--"];
    cargo_args.extend(args.iter().map(String::as_str));
    cmd::run(&cargo(), &cargo_args)
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
