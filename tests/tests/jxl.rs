//! JPEG XL input: lossless and lossy files from libjxl's reference encoder (`cjxl`), decoded
//! to the pixels that went in (or close to them), the codestream's orientation applied, a
//! colour profile converted to sRGB, refused cleanly when damaged or too large.

use image::{DynamicImage, GenericImageView, ImageFormat};
use pixelmill::engine::{self, EngineError, InputFormat, Limits, Presets, Spec};
use pixelmill_tests::{encoders, images};

fn render(input: &[u8], query: &str) -> Result<engine::Rendered, EngineError> {
    engine::render(input, &Spec::parse(query, &Presets::default()).expect("valid spec"), &Limits::default())
}

fn pixels(rendered: &engine::Rendered) -> DynamicImage {
    image::load_from_memory(&rendered.bytes).expect("output decodes")
}

#[test]
fn lossless_files_decode_to_the_pixels_that_went_in() {
    let (width, height) = (61, 37);
    let rgb = images::pattern(width, height);
    let rgba = DynamicImage::ImageRgb8(rgb.clone()).to_rgba8();
    let rgba = image::RgbaImage::from_fn(width, height, |x, y| {
        let mut pixel = *rgba.get_pixel(x, y);
        pixel.0[3] = (x * 4) as u8;
        pixel
    });
    let gray = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let sources = [
        ("rgb", DynamicImage::ImageRgb8(rgb.clone())),
        ("rgba", DynamicImage::ImageRgba8(rgba.clone())),
        ("gray", DynamicImage::ImageLuma8(gray.clone())),
    ];
    for (layout, source) in sources {
        let jxl = encoders::jxl(&images::encode(&source, ImageFormat::Png), "png", &["-d", "0"]);
        let info = engine::inspect(&jxl, &Limits::default()).expect(layout);
        assert_eq!((info.format, info.width, info.height), (InputFormat::Jxl, width, height), "{layout}");
        let out = pixels(&render(&jxl, "fmt=png").expect(layout));
        match layout {
            "gray" => assert_eq!(out.to_luma8(), gray, "{layout}"),
            "rgba" => assert_eq!(out.to_rgba8(), rgba, "{layout}"),
            _ => assert_eq!(out.to_rgb8(), rgb, "{layout}"),
        }
    }
}

#[test]
fn a_lossy_file_is_close_to_its_source_and_kept_as_webp() {
    let source = images::pattern(256, 160);
    let jxl = encoders::jxl(&images::png(&source), "png", &["-d", "1"]);
    let rendered = render(&jxl, "").expect("renders");
    // JPEG XL is read, not written: the kept format is WebP.
    assert_eq!(rendered.format.name(), "webp");
    let lossless = pixels(&render(&jxl, "fmt=png").expect("renders")).to_rgb8();
    let difference = images::mean_difference(lossless.as_raw(), source.as_raw());
    assert!(difference < 2.0, "mean difference {difference}");
    // Resized like any other source.
    let small = pixels(&render(&jxl, "w=64&fmt=png").expect("renders"));
    assert_eq!(small.dimensions(), (64, 40));
}

#[test]
fn the_orientation_is_applied() {
    // cjxl moves a JPEG's EXIF orientation into the codestream when it recompresses it.
    let source = images::quadrants(40, 20);
    let jpeg = images::jpeg_with_orientation(&source, 6);
    for (mode, args) in
        [("recompressed JPEG", &["--lossless_jpeg=1"][..]), ("lossy", &["--lossless_jpeg=0", "-d", "1"])]
    {
        let jxl = encoders::jxl(&jpeg, "jpg", args);
        let info = engine::inspect(&jxl, &Limits::default()).expect(mode);
        assert_eq!((info.width, info.height), (20, 40), "{mode}");
        let out = pixels(&render(&jxl, "fmt=png").expect(mode)).to_rgb8();
        // The same JPEG rendered by Pixelmill, which applies the EXIF orientation.
        let from_jpeg = pixels(&render(&jpeg, "fmt=png").expect("jpeg renders")).to_rgb8();
        let difference = images::mean_difference(out.as_raw(), from_jpeg.as_raw());
        assert!(difference < 3.0, "{mode}: mean difference {difference}");
        // The stored top-left quarter (green) is at the top right once turned clockwise.
        let [r, g, b] = out.get_pixel(15, 5).0;
        assert!(g > 150 && r < 60 && b < 60, "{mode}: {:?}", [r, g, b]);
    }
}

#[test]
fn a_colour_profile_is_converted_to_srgb() {
    let source = images::pattern(64, 48);
    let png = images::png_with_profile(&source, &images::display_p3_profile());
    // The PNG as Pixelmill renders it: converted from Display P3 to sRGB.
    let from_png = pixels(&render(&png, "fmt=png").expect("png renders")).to_rgb8();
    assert!(images::mean_difference(from_png.as_raw(), source.as_raw()) > 2.0, "the conversion changes the pixels");
    // Lossless keeps the profile as it is; lossy codes XYB and keeps the profile to render to.
    for (mode, distance) in [("lossless", "0"), ("lossy", "0.5")] {
        let jxl = encoders::jxl(&png, "png", &["-d", distance]);
        let out = pixels(&render(&jxl, "fmt=png").expect(mode)).to_rgb8();
        let difference = images::mean_difference(out.as_raw(), from_png.as_raw());
        assert!(difference < 1.5, "{mode}: mean difference {difference} from the PNG's conversion");
    }
}

#[test]
fn damaged_and_oversized_files_are_refused_with_their_cause() {
    let source = images::pattern(96, 64);
    let jxl = encoders::jxl(&images::png(&source), "png", &["-d", "1"]);
    for cut in [2, 8, jxl.len() / 2, jxl.len() - 3] {
        let result = render(&jxl[..cut], "w=10");
        assert!(matches!(result, Err(EngineError::Corrupt { format: "jxl", .. })), "cut at {cut}: {result:?}");
    }
    let big = encoders::jxl(&images::png(&images::pattern(4000, 3000)), "png", &["-d", "4", "-e", "1"]);
    let limits = Limits { max_input_pixels: 10_000_000, ..Limits::default() };
    assert!(matches!(
        engine::render(&big, &Spec::parse("w=10", &Presets::default()).unwrap(), &limits),
        Err(EngineError::TooManyPixels { width: 4000, height: 3000, .. })
    ));
}
