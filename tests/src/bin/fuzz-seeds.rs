//! Writes fuzzing seeds of the inputs no `pixelmill render` of a still gives: an animated GIF
//! (which `pixelmill render` turns into an animated WebP), TIFF of each compression and
//! sample layout, JPEG XL, AVIF and HEIC. usage: fuzz-seeds DIR

use std::path::PathBuf;

use pixelmill_tests::tiff_files::{self, COMPRESSIONS, Extras};
use pixelmill_tests::{animation, encoders, heif_edit, images};
use tiff::encoder::colortype;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz-seeds DIR"));
    std::fs::create_dir_all(&dir).expect("seed directory");
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("seed file");
    write("seed2-anim.gif", &animation::squares());
    let photo = images::pattern(48, 32);
    let gray = image::DynamicImage::ImageRgb8(photo.clone()).to_luma8();
    let wide: Vec<u16> = photo.as_raw().iter().map(|&v| u16::from(v) * 257).collect();
    for (compression, name) in COMPRESSIONS {
        let rgb = tiff_files::write::<colortype::RGB8>(48, 32, photo.as_raw(), compression, Extras::default());
        write(&format!("seed2-{name}-rgb8.tif"), &rgb);
        let gray = tiff_files::write::<colortype::Gray8>(48, 32, gray.as_raw(), compression, Extras::default());
        write(&format!("seed2-{name}-gray8.tif"), &gray);
        let wide = tiff_files::write::<colortype::RGB16>(
            48,
            32,
            &wide,
            compression,
            Extras { orientation: Some(6), icc_profile: None },
        );
        write(&format!("seed2-{name}-rgb16.tif"), &wide);
    }
    // JPEG XL: lossy (VarDCT, XYB), lossless (modular) with alpha, and a recompressed JPEG
    // with its orientation moved into the codestream.
    let png = images::png(&photo);
    write("seed3-lossy.jxl", &encoders::jxl(&png, "png", &["-d", "1"]));
    write("seed3-lossless-alpha.jxl", &encoders::jxl(&images::png_with_alpha(48, 32), "png", &["-d", "0"]));
    write("seed3-jpeg.jxl", &encoders::jxl(&images::jpeg_with_orientation(&photo, 6), "jpg", &["--lossless_jpeg=1"]));
    // AVIF: 4:2:0 8-bit, 4:4:4 10-bit with alpha, gray, rotated and mirrored, Display P3.
    write("seed4-420.avif", &encoders::avif(&png, "png", None, &["-y", "420"]));
    let alpha = images::png_with_alpha(48, 32);
    write("seed4-444-10bit-alpha.avif", &encoders::avif(&alpha, "png", None, &["-y", "444", "-d", "10"]));
    write("seed4-gray.avif", &encoders::avif(&png, "png", None, &["-y", "400"]));
    write("seed4-irot-imir.avif", &encoders::avif(&png, "png", None, &["--irot", "1", "--imir", "1"]));
    write("seed4-p3.avif", &encoders::avif(&png, "png", None, &["--cicp", "12/13/6"]));
    // HEIC (read in builds with the `heic` feature, refused with 415 in others): a plain one,
    // one with alpha, and one rotated and mirrored as a camera writes it.
    let heic = encoders::heic(&png, "png", &["-q", "60"]);
    write("seed5-plain.heic", &heic);
    write("seed5-alpha.heic", &encoders::heic(&images::png_with_alpha(48, 32), "png", &["-q", "60"]));
    write("seed5-irot-imir.heic", &heif_edit::with_transform(&heic, Some(1), Some(1)));
    // An AVIF grid of 2x2 tiles (avifenc's tiles are at least 64 px a side).
    let big = images::png(&images::pattern(128, 128));
    write("seed5-grid.avif", &encoders::avif(&big, "png", None, &["-g", "2x2"]));
}
