//! System packages the build needs: cmake and nasm build libjpeg-turbo (with its SIMD code) for
//! the `turbojpeg` crate, and rav1e's assembly; and the reference encoders the tests make the
//! formats Pixelmill reads but does not write with. Installed through apt when missing and allowed.

use crate::cmd::Cmd;
use crate::context::Context;

/// (program to look for, Debian package that provides it)
const BUILD_TOOLS: &[(&str, &str)] =
    &[("cmake", "cmake"), ("nasm", "nasm"), ("cc", "gcc"), ("pkg-config", "pkg-config")];

pub fn ensure_build_tools() -> Result<(), String> {
    ensure(&Context::from_process(), BUILD_TOOLS)
}

/// The reference encoders the tests make their JPEG XL, AVIF and HEIC inputs with: formats
/// Pixelmill reads but does not write.
const TEST_ENCODERS: &[(&str, &str)] =
    &[("cjxl", "libjxl-tools"), ("avifenc", "libavif-bin"), ("heif-enc", "libheif-examples")];

pub fn ensure_test_encoders() -> Result<(), String> {
    ensure(&Context::from_process(), TEST_ENCODERS)
}

/// (pkg-config module, Debian package): the C libraries of the `heic` feature, which CI builds
/// and tests though the default build leaves it out.
const HEIC_LIBRARIES: &[(&str, &str)] = &[("libheif", "libheif-dev")];

pub fn ensure_heic_libraries() -> Result<(), String> {
    let ctx = Context::from_process();
    let missing: Vec<&str> = HEIC_LIBRARIES
        .iter()
        .filter(|(module, _)| ctx.read(&Cmd::new("pkg-config").args(["--exists", module])).is_err())
        .map(|(_, package)| *package)
        .collect();
    install(&ctx, &missing)
}

/// Installs the packages of the programs missing from the context's PATH, as root through
/// apt-get, or says what to run.
pub(crate) fn ensure(ctx: &Context, tools: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> =
        tools.iter().filter(|(program, _)| ctx.find(program).is_none()).map(|(_, package)| *package).collect();
    install(ctx, &missing)
}

/// Installs Debian `packages` as root through apt-get, or says what to run.
fn install(ctx: &Context, missing: &[&str]) -> Result<(), String> {
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = ctx.read(&Cmd::new("id").arg("-u")).is_ok_and(|uid| uid == "0");
    if !is_root || ctx.find("apt-get").is_none() {
        return Err(format!(
            "missing system packages: {}; install them (e.g. `sudo apt-get install {}`)",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    ctx.run(&Cmd::new("apt-get").args(["update", "-qq"]))?;
    let install = Cmd::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends"]).args(missing);
    ctx.run(&install.env("DEBIAN_FRONTEND", "noninteractive"))
}
