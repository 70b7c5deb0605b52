//! `cargo xtask load [--serve] ARGS...`: the bundled load generator, `pixelmill-load`, built in
//! release mode and run with the arguments as given, against a URL the arguments name (a local
//! `pixelmill serve`, an environment's public URL). With `--serve` it first starts a release
//! `pixelmill serve` of its own on the embedded default (SQLite and files in a scratch
//! directory, a free loopback port), points `--target-base` at it, and stops it afterwards.

use std::path::Path;

use crate::cmd::Cmd;
use crate::context::Context;
use crate::flags::Args;
use crate::report::{StepError, Steps};

pub(crate) struct Load {
    serve: bool,
    args: Vec<String>,
}

impl Load {
    pub(crate) fn parse(args: Args) -> Result<Load, String> {
        let mut rest = args.rest();
        let serve = rest.first().is_some_and(|first| first == "--serve");
        if serve {
            rest.remove(0);
        }
        Ok(Load { serve, args: rest })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result)
    }

    fn run_steps(self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let cargo = ctx.var("CARGO").unwrap_or_else(|| "cargo".to_owned());
        let run = |package: &str| Cmd::new(&cargo).args(["run", "--release", "--quiet", "--package", package, "--"]);
        if !self.serve {
            return steps.run("load", || ctx.run(&run("pixelmill-load").args(&self.args))).map(drop);
        }
        steps.run("build", || {
            ctx.run(&Cmd::new(&cargo).args([
                "build",
                "--release",
                "--quiet",
                "--package",
                "pixelmill",
                "--package",
                "pixelmill-load",
            ]))
        })?;
        let (server, base, log) = steps.run("serve", || {
            let scratch = ctx.scratch()?;
            let port = free_port()?;
            let serve = run("pixelmill")
                .arg("serve")
                .env("PIXELMILL_LISTEN", &format!("127.0.0.1:{port}"))
                .env("PIXELMILL_DATA_DIR", &scratch.join("load-data").display().to_string());
            let log = scratch.join("serve.log");
            Ok((ctx.spawn(&serve, &log)?, format!("http://127.0.0.1:{port}"), log))
        })?;
        // pixelmill-load waits for /readyz itself before it seeds anything.
        let result =
            steps.run("load", || ctx.run(&run("pixelmill-load").args(["--target-base", &base]).args(&self.args)));
        if let Some(mut server) = server {
            stop(ctx, &mut server, &log);
        }
        result.map(drop)
    }
}

/// A loopback port nothing listens on at this moment.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|address| address.port()).map_err(|e| format!("no free port: {e}"))
}

/// SIGTERM to the server's process group (cargo and the service), then waits for it.
fn stop(ctx: &Context, server: &mut std::process::Child, log: &Path) {
    let group = format!("-{}", server.id());
    if ctx.run(&Cmd::new("kill").args(["-TERM", "--", &group])).is_err() {
        let _ = server.kill();
    }
    let _ = server.wait();
    ctx.say(&format!("server stopped; its log: {}", log.display()));
}
