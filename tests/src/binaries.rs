//! The binaries under test, built on first use with the same cargo, profile and target
//! directory as the test run, so a test never runs a stale binary.
//!
//! They are built by `cargo test --no-run --workspace --all-targets`, the very build that
//! `cargo xtask ci` runs its tests from: after it this is a no-op. `cargo build` of the two
//! packages, or even of the whole workspace, resolves the dependencies' features differently
//! and compiles much of the graph (aws-sdk-s3 and its stack among it) a second time.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the workspace binary `name` (`pixelmill` or `pixelmill-load`), built if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.args(["test", "--no-run", "--quiet", "--workspace", "--all-targets"]);
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
