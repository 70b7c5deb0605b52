//! HEIC input, in builds with the `heic` feature (`cargo test -p pixelmill-tests --features heic
//! --test heic`): files from libheif's encoder (`heif-enc`, x265), which writes even a small
//! image as a grid of one 64x64 tile, decoded close to the pixels that went in, with alpha and
//! with a colour profile; refused cleanly when damaged or too large.
#![cfg(feature = "heic")]

use image::{DynamicImage, GenericImageView, ImageFormat};
use pixelmill::engine::{self, EngineError, InputFormat, Limits, Presets, Spec};
use pixelmill_tests::{encoders, heif_edit, images};

fn render(input: &[u8], query: &str) -> Result<engine::Rendered, EngineError> {
    engine::render(input, &Spec::parse(query, &Presets::default()).expect("valid spec"), &Limits::default())
}

fn pixels(rendered: &engine::Rendered) -> DynamicImage {
    image::load_from_memory(&rendered.bytes).expect("output decodes")
}

#[test]
fn a_photo_is_close_to_its_source_and_kept_as_jpeg() {
    let source = images::pattern(96, 64);
    let heic = encoders::heic(&images::png(&source), "png", &["-q", "95"]);
    let info = engine::inspect(&heic, &Limits::default()).expect("inspect");
    assert_eq!((info.format, info.width, info.height), (InputFormat::Heic, 96, 64));
    let out = pixels(&render(&heic, "fmt=png").expect("renders")).to_rgb8();
    let difference = images::mean_difference(out.as_raw(), source.as_raw());
    assert!(difference < 3.0, "mean difference {difference}");
    let kept = render(&heic, "w=48").expect("renders");
    assert_eq!((kept.format.name(), kept.width, kept.height), ("jpeg", 48, 32));
}

#[test]
fn alpha_and_a_colour_profile_are_kept() {
    let rgba = image::RgbaImage::from_fn(64, 40, |x, y| image::Rgba([(x * 4) as u8, (y * 6) as u8, 90, (x * 4) as u8]));
    let heic = encoders::heic(
        &images::encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png),
        "png",
        &["-q", "95"],
    );
    let out = pixels(&render(&heic, "fmt=png").expect("renders")).to_rgba8();
    let alpha = |image: &image::RgbaImage| image.pixels().map(|p| p.0[3]).collect::<Vec<u8>>();
    let difference = images::mean_difference(&alpha(&out), &alpha(&rgba));
    assert!(difference < 3.0, "alpha: mean difference {difference}");

    // A Display P3 profile travels in the file and is converted to sRGB, as the PNG's is.
    let source = images::pattern(64, 48);
    let png = images::png_with_profile(&source, &images::display_p3_profile());
    let from_png = pixels(&render(&png, "fmt=png").expect("png renders")).to_rgb8();
    let heic = encoders::heic(&png, "png", &["-q", "95"]);
    let out = pixels(&render(&heic, "fmt=png").expect("renders")).to_rgb8();
    let difference = images::mean_difference(out.as_raw(), from_png.as_raw());
    assert!(difference < 3.0, "profile: mean difference {difference} from the PNG's conversion");
    assert!(images::mean_difference(out.as_raw(), source.as_raw()) > difference, "the profile was applied");
}

#[test]
fn damaged_and_oversized_files_are_refused_with_their_cause() {
    let heic = encoders::heic(&images::png(&images::pattern(96, 64)), "png", &[]);
    for cut in [40, heic.len() / 2, heic.len() - 3] {
        let result = render(&heic[..cut], "w=10");
        assert!(matches!(result, Err(EngineError::Corrupt { format: "heic", .. })), "cut at {cut}: {result:?}");
    }
    let limits = Limits { max_input_pixels: 5_000, ..Limits::default() };
    let result = engine::render(&heic, &Spec::parse("w=10", &Presets::default()).unwrap(), &limits);
    assert!(matches!(result, Err(EngineError::TooManyPixels { width: 96, height: 64, .. })), "{result:?}");
    let small = pixels(&render(&heic, "w=24&fmt=png").expect("renders"));
    assert_eq!(small.dimensions(), (24, 16));
}

#[test]
fn rotation_and_mirror_are_applied() {
    // heif-enc writes neither, so they are added to its file as a camera writes them: each irot
    // (anticlockwise quarter turns) and imir (0 top and bottom exchanged, 1 left and right),
    // checked as the picture a viewer shows.
    let source = DynamicImage::ImageRgb8(images::quadrants(96, 64));
    let heic = encoders::heic(&images::encode(&source, ImageFormat::Png), "png", &["-q", "95"]);
    for turns in 0..4u8 {
        for mirror in [None, Some(0u8), Some(1)] {
            let label = format!("irot {turns} imir {mirror:?}");
            let edited = heif_edit::with_transform(&heic, Some(turns), mirror);
            let expected = images::as_shown(&source, turns, mirror);
            let info = engine::inspect(&edited, &Limits::default()).expect(&label);
            assert_eq!((info.width, info.height), expected.dimensions(), "{label}: the size as shown");
            let out = pixels(&render(&edited, "fmt=png").expect(&label)).to_rgb8();
            assert_eq!(out.dimensions(), expected.dimensions(), "{label}");
            let difference = images::mean_difference(out.as_raw(), expected.to_rgb8().as_raw());
            assert!(difference < 3.0, "{label}: mean difference {difference}");
            // Through a resize too, which the plan sizes from the shown dimensions.
            let half = pixels(&render(&edited, "w=24&fmt=png").expect(&label));
            assert_eq!(half.width(), 24, "{label}");
        }
    }
}
