//! The environment variables cargo sets for a program it runs (`cargo run`, a test), as
//! opposed to those a user sets for cargo. A cargo started by such a program must not inherit
//! them: a build script that watches one (ring's watches `CARGO_MANIFEST_DIR`) would run again,
//! and everything above it rebuild, each time the value differs from the last build's. xtask's
//! `Context` and the tests' `binaries.rs` (which includes this file) both drop them.

/// Whether cargo set `key` for the program it runs.
pub fn set_by_cargo_for_its_child(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_BIN_EXE_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

#[cfg(test)]
mod tests {
    use super::set_by_cargo_for_its_child;

    #[test]
    fn only_what_cargo_sets_for_its_child_is_dropped() {
        for key in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_BIN_EXE_pixelmill", "OUT_DIR"] {
            assert!(set_by_cargo_for_its_child(key), "{key}");
        }
        for key in ["CARGO_TARGET_DIR", "CARGO_HOME", "CARGO_INCREMENTAL", "CARGO", "RUSTFLAGS", "PATH"] {
            assert!(!set_by_cargo_for_its_child(key), "{key}");
        }
    }
}
