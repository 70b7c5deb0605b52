//! The binaries under test, built on first use with the same cargo, profile and target
//! directory as the test run, so a test never runs a stale binary.
//!
//! They are built by `cargo build --workspace --all-targets`: the units of the very build that
//! `cargo test --workspace --all-targets` runs its tests from, plus the two executables, which
//! `cargo test` does not make (it builds a binary only for its own package's integration
//! tests); after it each is a no-op. `cargo build` of the two packages alone, or of the
//! workspace without `--all-targets`, resolves the dependencies' features differently and
//! compiles much of the graph (aws-sdk-s3 and its stack among it) a second time.
//!
//! The inner cargo does not see the variables the outer one set for this test (its package's
//! `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...; see cargo_env.rs): they would make it, and the
//! next `cargo test` after it, rebuild much of the graph.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

#[path = "../../xtask/src/cargo_env.rs"]
mod cargo_env;

/// The path of the workspace binary `name` (`pixelmill` or `pixelmill-load`), built if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "--workspace", "--all-targets"]);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(cargo_env::set_by_cargo_for_its_child) {
                command.env_remove(key);
            }
        }
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
    // This test executable lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile_dir.join(name)
}
