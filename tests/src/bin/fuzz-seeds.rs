//! Writes fuzzing seeds of the inputs no `pixelmill render` of a still gives: an animated GIF
//! (which `pixelmill render` turns into an animated WebP), and TIFF of each compression and
//! sample layout. usage: fuzz-seeds DIR

use std::path::PathBuf;

use pixelmill_tests::tiff_files::{self, COMPRESSIONS, Extras};
use pixelmill_tests::{animation, images};
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
}
