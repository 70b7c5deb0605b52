//! Files of the formats Pixelmill reads but does not write, made by the reference encoders that
//! Debian ships: `cjxl` (libjxl-tools), `avifenc` (libavif-bin) and `heif-enc`
//! (libheif-examples). `cargo xtask ci` installs them; a test that needs one and does not find it
//! fails and says which package to install.

use std::process::Command;

/// Runs `program` with `args`, where `{in}` and `{out}` stand for an input file holding `input`
/// (named with `input_extension`) and the output file, and `{NAME}` for a file holding the bytes
/// `extra` gives for NAME; returns the output file's bytes.
pub fn run_with(
    program: &str,
    package: &str,
    (input, input_extension): (&[u8], &str),
    extra: &[(&str, &[u8])],
    args: &[&str],
) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = |name: &str| dir.path().join(name).to_str().expect("UTF-8 temporary path").to_owned();
    let input_path = path(&format!("in.{input_extension}"));
    std::fs::write(&input_path, input).expect("write the encoder's input");
    let mut replacements = vec![("{in}".to_owned(), input_path), ("{out}".to_owned(), path("out.bin"))];
    for (name, bytes) in extra {
        std::fs::write(path(name), bytes).expect("write an encoder's extra input");
        replacements.push((format!("{{{name}}}"), path(name)));
    }
    let args: Vec<String> = args
        .iter()
        .map(|arg| replacements.iter().fold((*arg).to_owned(), |arg, (from, to)| arg.replace(from, to)))
        .collect();
    let output = Command::new(program).args(&args).output().unwrap_or_else(|error| {
        panic!("{program} could not be started ({error}); install Debian's {package} (`cargo xtask ci` does)")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(path("out.bin")).expect("the encoder wrote its output")
}

/// [`run_with`] without extra files.
pub fn run(program: &str, package: &str, input: &[u8], input_extension: &str, args: &[&str]) -> Vec<u8> {
    run_with(program, package, (input, input_extension), &[], args)
}

/// A JPEG XL file of a PNG or JPEG (`extension` says which), with `cjxl`'s `args`.
pub fn jxl(input: &[u8], extension: &str, args: &[&str]) -> Vec<u8> {
    let all: Vec<&str> = ["{in}", "{out}", "--quiet"].into_iter().chain(args.iter().copied()).collect();
    run("cjxl", "libjxl-tools", input, extension, &all)
}

/// An AVIF file of a PNG or JPEG (`extension` says which), with `avifenc`'s `args` (at its
/// fastest speed unless they say otherwise); `{icc}` in them names a file holding `icc`.
pub fn avif(input: &[u8], extension: &str, icc: Option<&[u8]>, args: &[&str]) -> Vec<u8> {
    let all: Vec<&str> = ["-s", "10"].into_iter().chain(args.iter().copied()).chain(["{in}", "{out}"]).collect();
    let extra: Vec<(&str, &[u8])> = icc.map(|icc| ("icc", icc)).into_iter().collect();
    run_with("avifenc", "libavif-bin", (input, extension), &extra, &all)
}

/// A HEIC file of a PNG or JPEG (`extension` says which), with `heif-enc`'s `args`.
pub fn heic(input: &[u8], extension: &str, args: &[&str]) -> Vec<u8> {
    let all: Vec<&str> = args.iter().copied().chain(["-o", "{out}", "{in}"]).collect();
    run("heif-enc", "libheif-examples", input, extension, &all)
}
