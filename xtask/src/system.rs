//! System packages the build needs: cmake and nasm build libjpeg-turbo (with its SIMD code) for
//! the `turbojpeg` crate, and rav1e's assembly. Installed through apt when missing and allowed.

use crate::cmd;

/// (program to look for, Debian package that provides it)
const BUILD_TOOLS: &[(&str, &str)] =
    &[("cmake", "cmake"), ("nasm", "nasm"), ("cc", "gcc"), ("pkg-config", "pkg-config")];

pub fn ensure_build_tools() -> Result<(), String> {
    ensure(BUILD_TOOLS)
}

/// Installs the packages of the missing programs, as root through apt-get, or says what to run.
pub fn ensure(tools: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> =
        tools.iter().filter(|(program, _)| !cmd::on_path(program)).map(|(_, package)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = cmd::output("id", &["-u"]).is_ok_and(|uid| uid == "0");
    if !is_root || !cmd::on_path("apt-get") {
        return Err(format!(
            "missing system packages: {}; install them (e.g. `sudo apt-get install {}`)",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    cmd::run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    cmd::run_with_env("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])
}
