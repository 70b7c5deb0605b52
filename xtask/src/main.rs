//! `cargo xtask`: the project's automation, in Rust, with no dependencies beyond std so that it
//! compiles in seconds. Each subcommand lives in its own module with a `run` function.

mod ci;
mod cmd;
mod run;
mod system;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run [ARGS...]   install missing system packages, then `cargo run --release --bin pixelmill -- ARGS`
  ci              every check CI runs: system packages, fmt, clippy, tests, Terraform and Helm checks
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run::run(&args[1..]),
        Some("ci") => ci::run(),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
