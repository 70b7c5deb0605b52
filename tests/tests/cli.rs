//! `pixelmill render` as a user runs it: real files in, files out, one line per failure.

use std::process::Command;

use pixelmill_tests::{binaries::binary, hostile, images};

#[test]
fn render_writes_outputs_and_reports_each_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    let good = input.join("photo.jpg");
    std::fs::write(&good, images::jpeg(&images::pattern(800, 500))).unwrap();
    let mut files = vec![good.clone()];
    let corpus = hostile::corpus();
    for sample in &corpus {
        let path = input.join(&sample.name);
        std::fs::write(&path, &sample.bytes).unwrap();
        files.push(path);
    }
    let second = input.join("second.png");
    std::fs::write(&second, images::png(&images::pattern(300, 300))).unwrap();
    files.push(second);

    let output = Command::new(binary("pixelmill"))
        .args(["render", "--threads", "2", "--out-dir"])
        .arg(&out)
        .arg("w=200&fmt=webp")
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // One line per bad file, naming it, plus the summary line.
    for sample in &corpus {
        let lines = stderr.lines().filter(|l| l.contains(&format!("/{}:", sample.name))).count();
        assert_eq!(lines, 1, "{}: {stderr}", sample.name);
    }
    assert!(stderr.contains(&format!("{} of {} files failed", corpus.len(), files.len())), "{stderr}");
    // The good files were rendered anyway.
    let photo = image::open(out.join("photo.jpg.webp")).unwrap();
    assert_eq!((photo.width(), photo.height()), (200, 125));
    assert_eq!(image::open(out.join("second.png.webp")).unwrap().width(), 200);
}

#[test]
fn a_bad_spec_is_refused_before_any_work() {
    let output = Command::new(binary("pixelmill")).args(["render", "w=0", "nothing.jpg"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid `w`"));
}
