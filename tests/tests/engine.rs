//! The engine through its library API: hostile input, output correctness and resampling quality.

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use pixelmill::engine::{self, EngineError, Limits, Presets, Spec};
use pixelmill_tests::hostile::{self, Expect};
use pixelmill_tests::images;

fn spec(query: &str) -> Spec {
    Spec::parse(query, &Presets::default()).expect("valid spec")
}

fn render(input: &[u8], query: &str) -> Result<engine::Rendered, EngineError> {
    engine::render(input, &spec(query), &Limits::default())
}

/// Decodes with the `image` crate: a decoder independent of the engine's.
fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("output decodes")
}

#[test]
fn hostile_corpus_gets_typed_errors() {
    let corpus = hostile::corpus();
    assert!(corpus.len() >= 50, "corpus has {} samples", corpus.len());
    let mut wrong = Vec::new();
    for sample in corpus {
        let result = render(&sample.bytes, "w=100");
        let got = match &result {
            Err(EngineError::Empty | EngineError::UnknownFormat) => Expect::Unknown,
            Err(EngineError::RefusedFormat(_)) => Expect::Refused,
            Err(EngineError::Corrupt { .. }) => Expect::Corrupt,
            Err(EngineError::TooManyPixels { .. }) => Expect::TooManyPixels,
            Err(EngineError::TooManyScans { .. } | EngineError::TooManyFrames { .. }) => Expect::TooMuchWork,
            Err(other) => {
                wrong.push(format!("{}: unexpected error {other:?}", sample.name));
                continue;
            }
            Ok(rendered) => {
                wrong.push(format!("{}: rendered to {}x{}", sample.name, rendered.width, rendered.height));
                continue;
            }
        };
        if got != sample.expect {
            wrong.push(format!("{}: expected {:?}, got {:?}", sample.name, sample.expect, result.err()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_output_format_has_the_planned_size() {
    let source = images::jpeg(&images::pattern(640, 400));
    for fmt in ["jpeg", "png", "webp", "avif", "gif"] {
        let rendered = render(&source, &format!("w=160&fmt={fmt}")).expect(fmt);
        assert_eq!((rendered.width, rendered.height), (160, 100), "{fmt}");
        assert_eq!(rendered.format.name(), fmt);
        if fmt != "avif" {
            // The `image` crate here reads every format but AVIF.
            assert_eq!(decode(&rendered.bytes).dimensions(), (160, 100), "{fmt}");
        } else {
            // Read back by Pixelmill's own AVIF input (rav1d), not by an encoder of its own kind.
            assert_eq!(&rendered.bytes[4..12], b"ftypavif");
            let again = render(&rendered.bytes, "fmt=png").expect("AVIF output reads back");
            assert_eq!((again.width, again.height), (160, 100));
            let read_back = decode(&again.bytes).to_rgb8();
            let reference = decode(&render(&source, "w=160&fmt=png").expect("png").bytes).to_rgb8();
            let sum: u64 =
                read_back.as_raw().iter().zip(reference.as_raw()).map(|(&a, &b)| u64::from(a.abs_diff(b))).sum();
            let difference = sum as f64 / read_back.as_raw().len() as f64;
            assert!(difference < 4.0, "AVIF output read back: mean difference {difference}");
        }
    }
}

#[test]
fn every_input_format_is_read() {
    let photo = images::pattern(300, 200);
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Gif, ImageFormat::WebP] {
        let bytes = images::encode(&DynamicImage::ImageRgb8(photo.clone()), format);
        let rendered = render(&bytes, "w=150&fmt=png").unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((rendered.width, rendered.height), (150, 100), "{format:?}");
        // Colours survive: the mean of the output is close to the mean of the source.
        let mean = |image: &DynamicImage| {
            let rgb = image.to_rgb8();
            let n = rgb.pixels().len() as f64;
            rgb.pixels().fold([0.0; 3], |acc, p| {
                [acc[0] + f64::from(p[0]) / n, acc[1] + f64::from(p[1]) / n, acc[2] + f64::from(p[2]) / n]
            })
        };
        let (a, b) = (mean(&DynamicImage::ImageRgb8(photo.clone())), mean(&decode(&rendered.bytes)));
        for c in 0..3 {
            assert!((a[c] - b[c]).abs() < 4.0, "{format:?} channel {c}: {} vs {}", a[c], b[c]);
        }
    }
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 200x100: green top-left, red bottom-left, blue right half.
    let stored = images::quadrants(200, 100);
    let pixel = |image: &DynamicImage, x: u32, y: u32| image.to_rgb8().get_pixel(x, y).0;
    let is = |p: [u8; 3], c: usize| p[c] > 150 && p.iter().enumerate().all(|(i, v)| i == c || *v < 60);
    // 6 = rotate 90 clockwise to display: the stored left column becomes the top row.
    let rendered = render(&images::jpeg_with_orientation(&stored, 6), "fmt=png").unwrap();
    assert_eq!((rendered.width, rendered.height), (100, 200));
    let out = decode(&rendered.bytes);
    assert!(is(pixel(&out, 90, 10), 1), "top right is the stored top-left (green)");
    assert!(is(pixel(&out, 10, 10), 0), "top left is the stored bottom-left (red)");
    assert!(is(pixel(&out, 50, 190), 2), "bottom is the stored right half (blue)");
    // 3 = rotate 180.
    let out = decode(&render(&images::jpeg_with_orientation(&stored, 3), "fmt=png").unwrap().bytes);
    assert!(is(pixel(&out, 190, 90), 1));
    // The displayed size is what `inspect` reports.
    let info = engine::inspect(&images::jpeg_with_orientation(&stored, 8), &Limits::default()).unwrap();
    assert_eq!((info.width, info.height), (100, 200));
}

#[test]
fn operations_do_what_they_say() {
    let source = images::png(&images::quadrants(200, 100));
    let out = |q: &str| decode(&render(&source, q).unwrap().bytes).to_rgb8();
    // Crop the blue right half.
    let blue = out("crop=100,0,100,100&fmt=png");
    assert_eq!(blue.dimensions(), (100, 100));
    assert!(blue.pixels().all(|p| p.0 == [0, 0, 200]));
    // Flip horizontally: blue comes to the left.
    assert_eq!(out("flip=h").get_pixel(5, 50).0, [0, 0, 200]);
    // Rotate 90 clockwise: the red bottom-left goes to the top-left.
    let turned = out("rotate=90");
    assert_eq!(turned.dimensions(), (100, 200));
    assert_eq!(turned.get_pixel(5, 5).0, [200, 0, 0]);
    // Gray: all channels equal.
    assert!(out("gray").pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    // Cover with gravity west keeps the left side.
    let west = out("w=50&h=50&fit=cover&gravity=west");
    assert_eq!(west.dimensions(), (50, 50));
    assert_eq!(west.get_pixel(2, 45).0, [200, 0, 0]);
    // Contain pads to the box with the background colour.
    let contained = out("w=100&h=100&fit=contain&bg=000000");
    assert_eq!(contained.dimensions(), (100, 100));
    assert_eq!(contained.get_pixel(50, 2).0, [0, 0, 0]);
    // A crop outside the image is refused.
    assert!(matches!(render(&source, "crop=150,0,100,100"), Err(EngineError::CropOutOfBounds { .. })));
    // The output pixel limit holds.
    let limits = Limits { max_output_pixels: 1000, ..Limits::default() };
    assert!(matches!(engine::render(&source, &spec("w=100"), &limits), Err(EngineError::OutputTooLarge { .. })));
}

#[test]
fn alpha_is_kept_or_flattened() {
    let source = images::png_with_alpha(100, 50);
    let png = decode(&render(&source, "fmt=png").unwrap().bytes);
    assert!(png.color().has_alpha());
    let jpeg = decode(&render(&source, "fmt=jpeg&bg=0000ff").unwrap().bytes).to_rgb8();
    let right = jpeg.get_pixel(90, 25).0;
    assert!(right[2] > 200 && right[0] < 40, "transparent part shows the background: {right:?}");
}

/// Largest difference between a resized flat field and its colour.
#[test]
fn a_flat_field_stays_flat() {
    let flat = RgbImage::from_pixel(1000, 700, Rgb([123, 45, 67]));
    for (source, label) in [(images::png(&flat), "png"), (images::jpeg(&flat), "jpeg (shrink-on-load)")] {
        let rendered = render(&source, "w=123&fmt=png").unwrap();
        let out = decode(&rendered.bytes).to_rgb8();
        let worst =
            out.pixels().flat_map(|p| p.0.iter().zip([123u8, 45, 67]).map(|(a, b)| a.abs_diff(b))).max().unwrap();
        assert!(worst <= 2, "{label}: a flat field changed by {worst}");
    }
}

#[test]
fn a_gradient_keeps_its_mean_and_order() {
    let gradient = RgbImage::from_fn(1024, 64, |x, _| {
        let v = (x / 4) as u8;
        Rgb([v, v, v])
    });
    let out = decode(&render(&images::png(&gradient), "w=256&fmt=png").unwrap().bytes).to_luma8();
    let row: Vec<f64> = (0..256).map(|x| f64::from(out.get_pixel(x, out.height() / 2).0[0])).collect();
    let mean = row.iter().sum::<f64>() / 256.0;
    assert!((mean - 127.5).abs() < 0.6, "mean {mean}");
    assert!(row.windows(2).all(|w| w[1] >= w[0]), "not monotonic: {row:?}");
}

#[test]
fn no_half_pixel_shift() {
    // A step at the exact middle must stay at the exact middle: with an even output width the two
    // pixels either side of the centre line mirror each other around mid-gray; with an odd width
    // the middle pixel straddles the step and is mid-gray itself.
    let step = RgbImage::from_fn(1000, 40, |x, _| if x < 500 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) });
    for (source, label) in [(images::png(&step), "png"), (images::jpeg(&step), "jpeg (shrink-on-load)")] {
        for width in [100u32, 125, 250] {
            let out = decode(&render(&source, &format!("w={width}&fmt=png")).unwrap().bytes).to_luma8();
            let at = |x: u32| i32::from(out.get_pixel(x, 2).0[0]);
            let balance =
                if width % 2 == 0 { at(width / 2 - 1) + at(width / 2) - 255 } else { 2 * at(width / 2) - 255 };
            assert!(balance.abs() <= 6, "{label} w={width}: off-centre by {balance} gray levels");
        }
    }
}

#[test]
fn shrink_on_load_is_used_for_small_targets() {
    let source = images::jpeg(&images::pattern(1600, 1000));
    assert_eq!(render(&source, "w=200").unwrap().shrink_on_load, 8);
    assert_eq!(render(&source, "w=300").unwrap().shrink_on_load, 4);
    assert_eq!(render(&source, "w=700").unwrap().shrink_on_load, 2);
    assert_eq!(render(&source, "w=900").unwrap().shrink_on_load, 1);
}

#[test]
fn chroma_is_decoded_at_half_only_where_the_output_keeps_half() {
    use pixelmill::engine::decode::{self, Chroma};
    use pixelmill::engine::plan;
    let photo = images::pattern(1600, 1000);
    let (whole, subsampled) = (images::jpeg_444(&photo), images::progressive_jpeg(&photo));
    let chroma = |source: &[u8], query: &str| {
        let probe = decode::probe(source, &Limits::default()).unwrap();
        plan::plan(&probe, &spec(query), &Limits::default()).unwrap().chroma
    };
    // 4:2:0 outputs: a JPEG below quality 90, lossy WebP, decoded by the own decoder at 1/4.
    for query in ["w=400&fmt=jpeg", "w=400&fmt=jpeg&q=89", "w=400&fmt=webp"] {
        assert_eq!(chroma(&whole, query), Chroma::Half, "{query}");
        assert_eq!(chroma(&subsampled, query), Chroma::Half, "4:2:0 source: {query}");
    }
    // A progressive 4:2:0 source at 1/8 has only its chroma's DC values read already.
    assert_eq!(chroma(&subsampled, "w=200&fmt=jpeg"), Chroma::Full);
    // Outputs that keep chroma whole; 1/8 of a 4:4:4 source (chroma is DC values already); a
    // baseline file at 1/2 and at full size (libjpeg-turbo's).
    for query in [
        "w=400&fmt=jpeg&q=90",
        "w=400&fmt=webp&lossless=1",
        "w=400&fmt=png",
        "w=400&fmt=avif",
        "w=400&fmt=gif",
        "w=200&fmt=jpeg",
        "w=700&fmt=jpeg",
        "w=900&fmt=jpeg",
    ] {
        assert_eq!(chroma(&whole, query), Chroma::Full, "{query}");
    }
    // What the render gives: the JPEG's chroma, as its reader sees it, close to a render whose
    // chroma was whole (PNG output, decoded at full chroma), in Cb and Cr averaged 2x2.
    let half = decode(&render(&whole, "w=400&fmt=jpeg&q=89").unwrap().bytes).to_rgb8();
    let full = decode(&render(&whole, "w=400&fmt=png").unwrap().bytes).to_rgb8();
    let chroma_of = |image: &RgbImage| {
        let small = image::imageops::resize(image, 200, 125, image::imageops::FilterType::Triangle);
        let mut out = small.clone();
        for pixel in out.pixels_mut() {
            let [r, g, b] = pixel.0.map(f64::from);
            let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            *pixel = Rgb([cb.round() as u8, cr.round() as u8, 0]);
        }
        out
    };
    let db = psnr(&chroma_of(&half), &chroma_of(&full));
    assert!(db > 40.0, "chroma of a half-chroma render against a whole one: {db:.1} dB");
}

/// Peak signal-to-noise ratio between two RGB images of one size, in dB.
fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum();
    let mse = sum / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse).log10()
}

#[test]
fn downscaled_photos_match_an_independent_reference() {
    // Reference: the `image` crate's own JPEG decoder (zune-jpeg) at full size, then its own
    // Lanczos3 resize; no code shared with the engine's libjpeg-turbo + shrink-on-load +
    // fast_image_resize path.
    let corpus = std::env::var("PIXELMILL_CORPUS").expect("PIXELMILL_CORPUS (cargo xtask ci sets it)");
    let mut files: Vec<_> =
        std::fs::read_dir(format!("{corpus}/jpeg-2560")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files.iter().take(3) {
        let bytes = std::fs::read(path).unwrap();
        let rendered = render(&bytes, "w=400&fmt=png").unwrap();
        assert_eq!(rendered.shrink_on_load, 4);
        let ours = decode(&rendered.bytes).to_rgb8();
        let full = decode(&bytes).to_rgb8();
        let reference =
            image::imageops::resize(&full, ours.width(), ours.height(), image::imageops::FilterType::Lanczos3);
        let db = psnr(&ours, &reference);
        assert!(db > 35.0, "{}: PSNR {db:.1} dB against the reference", path.display());
    }
}

#[test]
fn cmyk_jpeg_becomes_the_right_rgb() {
    // Left half cyan ink, right half magenta ink, stored inverted as Adobe applications do
    // (libjpeg-turbo writes the Adobe marker for CMYK, which is how readers know).
    let (width, height) = (64usize, 32usize);
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| if i % width < width / 2 { [0, 255, 255, 255] } else { [255, 0, 255, 255] })
        .collect();
    let image =
        turbojpeg::Image { pixels: &pixels[..], width, pitch: width * 4, height, format: turbojpeg::PixelFormat::CMYK };
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_quality(95).unwrap();
    let jpeg = compressor.compress_to_vec(image).unwrap();
    let out = decode(&render(&jpeg, "fmt=png").unwrap().bytes).to_rgb8();
    let (cyan, magenta) = (out.get_pixel(8, 16).0, out.get_pixel(56, 16).0);
    assert!(cyan[0] < 20 && cyan[1] > 235 && cyan[2] > 235, "cyan ink gave {cyan:?}");
    assert!(magenta[0] > 235 && magenta[1] < 20 && magenta[2] > 235, "magenta ink gave {magenta:?}");
}

/// `inner` content (a pattern) framed by a flat `border` colour, as a PNG.
fn framed_png(width: u32, height: u32, inner: (u32, u32, u32, u32), border: [u8; 3]) -> Vec<u8> {
    let pattern = images::pattern(width, height);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let inside = x >= inner.0 && x < inner.0 + inner.2 && y >= inner.1 && y < inner.1 + inner.3;
        if inside { *pattern.get_pixel(x, y) } else { Rgb(border) }
    });
    images::png(&image)
}

#[test]
fn trim_crops_known_borders_exactly_before_the_geometry() {
    let inner = (37, 11, 250, 160);
    let input = framed_png(320, 200, inner, [255, 255, 255]);
    // The content alone, pixel for pixel.
    let out = decode(&render(&input, "trim&fmt=png").unwrap().bytes).to_rgb8();
    assert_eq!(out.dimensions(), (250, 160));
    let source = images::pattern(320, 200);
    for (x, y, pixel) in out.enumerate_pixels().step_by(97) {
        assert_eq!(pixel, source.get_pixel(x + inner.0, y + inner.1), "({x}, {y})");
    }
    // Then the geometry: the trimmed region resized and covered.
    assert_eq!(render(&input, "trim&w=125&fmt=png").map(|r| (r.width, r.height)).unwrap(), (125, 80));
    assert_eq!(
        render(&input, "trim=0&w=100&h=100&fit=cover&fmt=png").map(|r| (r.width, r.height)).unwrap(),
        (100, 100)
    );
    // A JPEG's border is found at full size too (no shrink on load): same box within a pixel
    // of the JPEG's ringing, whatever the target.
    let jpeg = images::jpeg(&decode(&input).to_rgb8());
    let trimmed = render(&jpeg, "trim=40&fmt=png").unwrap();
    assert!(
        (trimmed.width as i64 - 250).abs() <= 2 && (trimmed.height as i64 - 160).abs() <= 2,
        "{}x{}",
        trimmed.width,
        trimmed.height
    );
    assert_eq!(render(&jpeg, "trim=40&w=40&fmt=png").unwrap().shrink_on_load, 1);
}

#[test]
fn trim_is_a_no_op_on_an_image_without_borders() {
    let input = images::png(&images::pattern(320, 200));
    let trimmed = decode(&render(&input, "trim&fmt=png").unwrap().bytes);
    let plain = decode(&render(&input, "fmt=png").unwrap().bytes);
    assert_eq!(trimmed.to_rgb8(), plain.to_rgb8());
    // An image that is all border is kept whole.
    let flat = images::png(&RgbImage::from_pixel(64, 48, Rgb([7, 7, 7])));
    assert_eq!(render(&flat, "trim&fmt=png").map(|r| (r.width, r.height)).unwrap(), (64, 48));
}

#[test]
fn trim_with_crop_or_on_a_moving_animation_is_refused_naming_it() {
    let refused = Spec::parse("trim&crop=0,0,10,10", &Presets::default()).unwrap_err();
    assert_eq!(refused.param, "trim");
    use pixelmill_tests::animation::{Rect, gif};
    let frame = |left, rgb| Rect {
        left,
        top: 8,
        width: 16,
        height: 16,
        rgb,
        delay_cs: 10,
        dispose: ::gif::DisposalMethod::Background,
    };
    let animation = gif(64, 48, &[frame(4, [255, 0, 0]), frame(30, [0, 0, 255])], None);
    match render(&animation, "trim&fmt=gif") {
        Err(EngineError::Spec(error)) => assert_eq!(error.param, "trim"),
        other => panic!("{:?}", other.map(|r| (r.width, r.height))),
    }
    assert!(render(&animation, "trim&anim=0&fmt=gif").is_ok());
}
