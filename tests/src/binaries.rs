//! The binaries under test, built on first use with the same cargo, profile and target
//! directory as the test run, so a test never runs a stale binary.
//!
//! They are built as part of the whole workspace with every target, which is what
//! `cargo test --workspace --all-targets` (and so `cargo xtask ci`) builds: the same selection
//! resolves the same features, so after a test build this is a no-op. Building only the two
//! packages would resolve other features (the test crate's dev-dependencies turn some on) and
//! compile much of the dependency graph a second time.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the workspace binary `name` (`pixelmill` or `pixelmill-load`), built if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "--workspace", "--all-targets"]);
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
