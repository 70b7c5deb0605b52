//! Valid images made in memory, with known content, for tests that check what comes out.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A smooth colourful pattern with some detail, like a photo at a distance.
pub fn pattern(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let r = 128.0 + 100.0 * (fx * 6.3).sin();
        let g = 128.0 + 100.0 * (fy * 4.1 + fx).cos();
        let b = 255.0 * fx * fy;
        Rgb([r as u8, g as u8, b as u8])
    })
}

/// The image's left half red and right half blue, with a green top-left quarter: every
/// orientation of it is distinguishable.
pub fn quadrants(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| match (x < width / 2, y < height / 2) {
        (true, true) => Rgb([0, 200, 0]),
        (true, false) => Rgb([200, 0, 0]),
        (false, _) => Rgb([0, 0, 200]),
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encoding a generated image");
    out.into_inner()
}

pub fn jpeg(image: &RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(image.clone()), ImageFormat::Jpeg)
}

/// A progressive JPEG (libjpeg-turbo's default scan script: DC first, then bands of AC
/// coefficients and successive-approximation refinements), 4:2:0.
pub fn progressive_jpeg(image: &RgbImage) -> Vec<u8> {
    let mut compressor = turbojpeg::Compressor::new().expect("a compressor");
    compressor.set_progressive(true).expect("progressive");
    compressor.set_quality(85).expect("quality");
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2).expect("4:2:0");
    compress(compressor, image)
}

fn compress(mut compressor: turbojpeg::Compressor, image: &RgbImage) -> Vec<u8> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let pixels = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    compressor.compress_to_vec(pixels).expect("compressing a generated image")
}

/// A baseline JPEG with chroma kept whole (4:4:4), as cameras at their best quality and many
/// editors write, at quality 85.
pub fn jpeg_444(image: &RgbImage) -> Vec<u8> {
    let mut compressor = turbojpeg::Compressor::new().expect("a compressor");
    compressor.set_quality(85).expect("quality");
    compressor.set_subsamp(turbojpeg::Subsamp::None).expect("4:4:4");
    compress(compressor, image)
}

pub fn png(image: &RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(image.clone()), ImageFormat::Png)
}

/// A PNG with an alpha channel: opaque red on the left, transparent on the right.
pub fn png_with_alpha(width: u32, height: u32) -> Vec<u8> {
    let image =
        RgbaImage::from_fn(
            width,
            height,
            |x, _| {
                if x < width / 2 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 0, 0, 0]) }
            },
        );
    encode(&DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

/// A JPEG carrying an EXIF APP1 segment whose Orientation tag is `orientation` (1..=8).
pub fn jpeg_with_orientation(image: &RgbImage, orientation: u16) -> Vec<u8> {
    let jpeg = jpeg(image);
    // Big-endian TIFF header, one IFD with one entry: tag 0x0112, SHORT, count 1, value.
    let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    app1.extend_from_slice(&orientation.to_be_bytes());
    app1.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG of `image` carrying `icc` as its colour profile (an iCCP chunk).
pub fn png_with_profile(image: &RgbImage, icc: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder.set_icc_profile(icc.to_vec()).expect("PNG takes a profile");
    encoder.write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8).expect("PNG");
    out
}

/// The Display P3 profile: wider than sRGB, so converting its pixels to sRGB changes them.
pub fn display_p3_profile() -> Vec<u8> {
    moxcms::ColorProfile::new_display_p3().encode().expect("moxcms writes its own profile")
}

/// Mean absolute difference per sample between two images of one size and layout.
pub fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images of different sizes");
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
    sum as f64 / a.len().max(1) as f64
}

/// `image` as a viewer shows it with a HEIF `irot` of `turns` (anticlockwise quarter turns)
/// and then an `imir` of `mirror` (0: top and bottom exchanged, 1: left and right).
pub fn as_shown(image: &DynamicImage, turns: u8, mirror: Option<u8>) -> DynamicImage {
    let turned = match turns % 4 {
        1 => image.rotate270(),
        2 => image.rotate180(),
        3 => image.rotate90(),
        _ => image.clone(),
    };
    match mirror {
        Some(0) => turned.flipv(),
        Some(_) => turned.fliph(),
        None => turned,
    }
}
