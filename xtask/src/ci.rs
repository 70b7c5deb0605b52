//! `cargo xtask ci`: every check CI runs, in the order a failure is cheapest to find.

use std::time::Instant;

use crate::context::Context;
use crate::image::Image;
use crate::run::cargo;
use crate::{cmd, e2e, system};

pub fn run() -> Result<(), String> {
    let started = Instant::now();
    let mut timings: Vec<(&str, f64)> = Vec::new();
    let mut step = |name: &'static str, f: &dyn Fn() -> Result<(), String>| -> Result<(), String> {
        eprintln!("\n== {name}");
        let t = Instant::now();
        let result = f();
        timings.push((name, t.elapsed().as_secs_f64()));
        result.map_err(|e| format!("step `{name}` failed: {e}"))
    };
    let cargo = cargo();
    step("system packages", &|| {
        system::ensure_build_tools()?;
        system::ensure_test_encoders()?;
        system::ensure_heic_libraries()
    })?;
    step("fmt", &|| cmd::run(&cargo, &["fmt", "--all", "--check"]))?;
    step("clippy", &|| {
        cmd::run(&cargo, &["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"])?;
        // The engine alone, as fuzz/ builds it: nothing of the `server` feature leaks into it.
        cmd::run(
            &cargo,
            &["clippy", "-p", "pixelmill", "--no-default-features", "--lib", "--quiet", "--", "-D", "warnings"],
        )?;
        // HEIC input, off by default.
        cmd::run(
            &cargo,
            &["clippy", "-p", "pixelmill", "--features", "heic", "--lib", "--quiet", "--", "-D", "warnings"],
        )
    })?;
    step("photo corpus", &|| cmd::run("bash", &["benches/corpus.sh"]))?;
    step("tests", &|| {
        let corpus = cmd::output("bash", &["benches/corpus.sh"])?;
        // Real PostgreSQL and Garage for the tests; stopped again whatever the tests did.
        let services = match cmd::output("bash", &[".ci/services.sh", "start"]) {
            Ok(exports) => exports,
            Err(error) => {
                // Stop whatever did start before the failure.
                let _ = cmd::run("bash", &[".ci/services.sh", "stop"]);
                return Err(error);
            }
        };
        let mut env = service_env(&services);
        env.push(("PIXELMILL_CORPUS".to_owned(), corpus));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let tests = cmd::run_with_env(&cargo, &["test", "--workspace", "--all-targets"], &env).and_then(|()| {
            // HEIC input, off by default: its own tests and the engine's (hostile corpus included).
            let heic = ["test", "-p", "pixelmill-tests", "--features", "heic", "--test", "heic", "--test", "engine"];
            cmd::run_with_env(&cargo, &heic, &env)?;
            // And the render plan's property test over HEIC sources alone (the other kinds ran
            // above).
            let plan = [
                "test",
                "-p",
                "pixelmill-tests",
                "--features",
                "heic",
                "--test",
                "render_plan",
                "--",
                "heic",
                "every_render",
            ];
            let mut plan_env = env.clone();
            plan_env.push(("PIXELMILL_PROPTEST_SOURCES", "Heic"));
            cmd::run_with_env(&cargo, &plan, &plan_env)
        });
        let stopped = cmd::run("bash", &[".ci/services.sh", "stop"]);
        tests.and(stopped)
    })?;
    for script in [".ci/terraform.sh", ".ci/helm.sh"] {
        if cmd::project_root().join(script).exists() {
            step(script, &|| cmd::run("bash", &[script]))?;
        }
    }
    // The workflows' schema and security audit, and hadolint on the Dockerfile.
    step(".ci/workflows.sh", &|| cmd::run("bash", &[".ci/workflows.sh"]))?;
    // The Dockerfile's runtime stage, on the binaries the tests ran (no build of its own), run.
    step("image smoke", &|| Image::Smoke.run(&Context::from_process().with_var("PIXELMILL_SMOKE_BUILD", "workspace")))?;
    // The chart on a real cluster (the local kit, or KUBECONFIG's): install, helm test, the
    // API through the Service, an upgrade and a bad release under load with no failed request,
    // rollback, uninstall. The image holds a release build, as shipped, so that the pods under
    // load render at the speed they would in production.
    step("e2e", &|| {
        let ctx = Context::from_process();
        if !e2e::has_cluster(&ctx) {
            eprintln!("skipped: no KUBECONFIG and no local cluster kit at {}", e2e::kit(&ctx).display());
            return Ok(());
        }
        e2e::E2e { broken_drain: false }.run(ctx)
    })?;
    // Licences, bans and sources of the dependency graph (deny.toml); advisories only where
    // GitHub is reachable (PIXELMILL_DENY_ADVISORIES=1, set by the ci workflow).
    step(".ci/deny.sh", &|| cmd::run("bash", &[".ci/deny.sh"]))?;
    // Schemathesis against the binary the tests ran: no 5xx, every response as the OpenAPI
    // document says.
    let binary = cmd::target_dir().join("debug").join("pixelmill").display().to_string();
    step(".ci/api-fuzz.sh", &|| cmd::run_with_env("bash", &[".ci/api-fuzz.sh"], &[("PIXELMILL_BINARY", &binary)]))?;
    // A short coverage-guided fuzz of the decoders, the spec parser and the render; the
    // corpora persist in ~/.cache/pixelmill-fuzz, so each run starts where the last one ended.
    step(".ci/fuzz.sh", &|| {
        cmd::run_with_env("bash", &[".ci/fuzz.sh"], &[("FUZZ_SECONDS", "20"), ("PIXELMILL_BINARY", &binary)])
    })?;
    eprintln!("\n== summary");
    for (name, seconds) in &timings {
        eprintln!("{name:<24} {seconds:>8.1} s");
    }
    eprintln!("{:<24} {:>8.1} s", "total", started.elapsed().as_secs_f64());
    Ok(())
}

/// The `export NAME=value` lines that `.ci/services.sh start` prints.
fn service_env(exports: &str) -> Vec<(String, String)> {
    exports
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn service_env_reads_export_lines() {
        let env = super::service_env("export A=1\nnoise\nexport B=x=y\n");
        assert_eq!(env, [("A".to_owned(), "1".to_owned()), ("B".to_owned(), "x=y".to_owned())]);
    }
}
