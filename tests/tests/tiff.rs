//! TIFF input: every common compression, 8 and 16 bits, gray, RGB, RGBA and CMYK, decoded to
//! the pixels that went in; the orientation tag applied; the colour profile read.

use image::{DynamicImage, GenericImageView};
use pixelmill::engine::{self, EngineError, InputFormat, Limits, Presets, Spec, decode};
use pixelmill_tests::images;
use pixelmill_tests::tiff_files::{self, COMPRESSIONS, Extras};
use tiff::encoder::colortype;

fn render(input: &[u8], query: &str) -> Result<engine::Rendered, EngineError> {
    engine::render(input, &Spec::parse(query, &Presets::default()).expect("valid spec"), &Limits::default())
}

fn png_pixels(rendered: &engine::Rendered) -> DynamicImage {
    image::load_from_memory(&rendered.bytes).expect("PNG output decodes")
}

#[test]
fn every_compression_and_sample_layout_decodes_to_the_pixels_that_went_in() {
    let (width, height) = (61, 37);
    let rgb = images::pattern(width, height);
    let rgba = DynamicImage::ImageRgb8(rgb.clone()).to_rgba8();
    let gray = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    // Sixteen bits: each 8-bit value v as v * 257, which narrows back to v exactly.
    let rgb16: Vec<u16> = rgb.as_raw().iter().map(|&v| u16::from(v) * 257).collect();
    for (compression, name) in COMPRESSIONS {
        let files = [
            ("rgb8", tiff_files::write::<colortype::RGB8>(width, height, rgb.as_raw(), compression, Extras::default())),
            (
                "rgba8",
                tiff_files::write::<colortype::RGBA8>(width, height, rgba.as_raw(), compression, Extras::default()),
            ),
            (
                "gray8",
                tiff_files::write::<colortype::Gray8>(width, height, gray.as_raw(), compression, Extras::default()),
            ),
            ("rgb16", tiff_files::write::<colortype::RGB16>(width, height, &rgb16, compression, Extras::default())),
        ];
        for (layout, bytes) in files {
            let label = format!("{name} {layout}");
            let info = engine::inspect(&bytes, &Limits::default()).expect(&label);
            assert_eq!((info.format, info.width, info.height), (InputFormat::Tiff, width, height), "{label}");
            // The source format is kept as PNG, losslessly.
            let rendered = render(&bytes, "").expect(&label);
            assert_eq!(rendered.format.name(), "png", "{label}");
            let out = png_pixels(&rendered);
            match layout {
                "gray8" => assert_eq!(out.to_luma8(), gray, "{label}"),
                "rgba8" => assert_eq!(out.to_rgba8(), rgba, "{label}"),
                _ => assert_eq!(out.to_rgb8(), rgb, "{label}"),
            }
        }
    }
}

#[test]
fn cmyk_is_converted_to_rgb() {
    // Pure inks: cyan, magenta, yellow and black, each in a quarter.
    let (width, height) = (16, 16);
    let mut cmyk = Vec::new();
    for y in 0..height {
        for x in 0..width {
            let ink = usize::from(x >= width / 2) + 2 * usize::from(y >= height / 2);
            let mut pixel = [0u8; 4];
            pixel[ink] = 255;
            cmyk.extend(pixel);
        }
    }
    let bytes = tiff_files::write::<colortype::CMYK8>(width, height, &cmyk, COMPRESSIONS[1].0, Extras::default());
    let out = png_pixels(&render(&bytes, "fmt=png").expect("renders")).to_rgb8();
    assert_eq!(out.get_pixel(2, 2).0, [0, 255, 255], "cyan");
    assert_eq!(out.get_pixel(12, 2).0, [255, 0, 255], "magenta");
    assert_eq!(out.get_pixel(2, 12).0, [255, 255, 0], "yellow");
    assert_eq!(out.get_pixel(12, 12).0, [0, 0, 0], "black");
}

#[test]
fn the_orientation_tag_is_applied_and_the_profile_read() {
    let (width, height) = (40, 20);
    let source = images::quadrants(width, height);
    let icc = b"a colour profile".as_slice();
    let extras = Extras { orientation: Some(6), icc_profile: Some(icc) };
    let bytes = tiff_files::write::<colortype::RGB8>(width, height, source.as_raw(), COMPRESSIONS[1].0, extras);
    let probe = decode::probe(&bytes, &Limits::default()).expect("probe");
    assert_eq!(probe.metadata.icc_profile.as_deref(), Some(icc));
    // Orientation 6: the stored image is shown turned a quarter clockwise, 20x40.
    let info = engine::inspect(&bytes, &Limits::default()).expect("inspect");
    assert_eq!((info.width, info.height), (20, 40));
    let out = png_pixels(&render(&bytes, "fmt=png").expect("renders")).to_rgb8();
    assert_eq!(out.dimensions(), (20, 40));
    // The stored top-left quarter (green) is at the top right once turned clockwise.
    let expected = DynamicImage::ImageRgb8(source).rotate90().to_rgb8();
    assert!(
        images::mean_difference(out.as_raw(), expected.as_raw()) < 1.0,
        "{}",
        images::mean_difference(out.as_raw(), expected.as_raw())
    );
    assert_eq!(out.get_pixel(15, 5).0, [0, 200, 0]);
}

#[test]
fn a_resize_of_a_tiff_matches_the_same_resize_of_a_png() {
    let source = images::pattern(300, 200);
    let tiff = tiff_files::write::<colortype::RGB8>(300, 200, source.as_raw(), COMPRESSIONS[2].0, Extras::default());
    let png = images::encode(&DynamicImage::ImageRgb8(source), image::ImageFormat::Png);
    let from_tiff = png_pixels(&render(&tiff, "w=120&fmt=png").expect("tiff renders"));
    let from_png = png_pixels(&render(&png, "w=120&fmt=png").expect("png renders"));
    assert_eq!(from_tiff.dimensions(), (120, 80));
    assert_eq!(from_tiff.to_rgb8(), from_png.to_rgb8());
}

#[test]
fn damaged_and_oversized_tiffs_are_refused_with_their_cause() {
    let source = images::pattern(64, 64);
    let good = tiff_files::write::<colortype::RGB8>(64, 64, source.as_raw(), COMPRESSIONS[1].0, Extras::default());
    // Cut short: the strips are missing.
    let truncated = &good[..good.len() / 3];
    assert!(matches!(render(truncated, "w=10"), Err(EngineError::Corrupt { format: "tiff", .. })), "truncated");
    // A header and nothing else.
    assert!(matches!(render(b"II*\0\x08\0\0\0", "w=10"), Err(EngineError::Corrupt { .. })));
    // Dimensions over the pixel limit are refused from the directory, before any strip is read.
    let wide = tiff_files::write::<colortype::Gray8>(
        8000,
        8000,
        &vec![0u8; 8000 * 8000],
        COMPRESSIONS[1].0,
        Extras::default(),
    );
    let limits = Limits { max_input_pixels: 10_000_000, ..Limits::default() };
    assert!(matches!(
        engine::render(&wide, &Spec::parse("w=10", &Presets::default()).unwrap(), &limits),
        Err(EngineError::TooManyPixels { width: 8000, height: 8000, .. })
    ));
}
