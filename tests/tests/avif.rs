//! AVIF input: files from libavif's reference encoder (`avifenc`) in every chroma layout, bit
//! depth and range, with alpha, with each rotation and mirror, with an ICC profile and with
//! wide-gamut `nclx` code points, decoded close to the pixels that went in; refused cleanly when
//! damaged, too large or tiled.

use image::{DynamicImage, GenericImageView, ImageFormat, RgbImage};
use pixelmill::engine::{self, EngineError, InputFormat, Limits, Presets, Spec};
use pixelmill_tests::{encoders, images};

fn render(input: &[u8], query: &str) -> Result<engine::Rendered, EngineError> {
    engine::render(input, &Spec::parse(query, &Presets::default()).expect("valid spec"), &Limits::default())
}

fn pixels(rendered: &engine::Rendered) -> DynamicImage {
    image::load_from_memory(&rendered.bytes).expect("output decodes")
}

fn rendered_rgb(avif: &[u8], label: &str) -> RgbImage {
    pixels(&render(avif, "fmt=png").unwrap_or_else(|e| panic!("{label}: {e}"))).to_rgb8()
}

#[test]
fn lossless_files_decode_to_the_pixels_that_went_in() {
    // Lossless AVIF is 4:4:4 with the identity matrix: RGB itself, exactly.
    let source = images::pattern(61, 37);
    let avif = encoders::avif(&images::png(&source), "png", None, &["--lossless"]);
    let info = engine::inspect(&avif, &Limits::default()).expect("inspect");
    assert_eq!((info.format, info.width, info.height), (InputFormat::Avif, 61, 37));
    let out = rendered_rgb(&avif, "lossless");
    assert!(out == source, "lossless: mean difference {}", images::mean_difference(out.as_raw(), source.as_raw()));
}

#[test]
fn every_layout_depth_and_range_is_close_to_its_source() {
    let source = images::pattern(96, 64);
    let png = images::png(&source);
    for yuv in ["444", "422", "420"] {
        for depth in ["8", "10", "12"] {
            for range in ["full", "limited"] {
                let label = format!("{yuv} {depth}-bit {range}");
                let args = ["-y", yuv, "-d", depth, "-r", range, "--min", "4", "--max", "4"];
                let avif = encoders::avif(&png, "png", None, &args);
                let out = rendered_rgb(&avif, &label);
                let difference = images::mean_difference(out.as_raw(), source.as_raw());
                assert!(difference < 2.5, "{label}: mean difference {difference}");
            }
        }
    }
    // The kept format is AVIF.
    let avif = encoders::avif(&png, "png", None, &[]);
    assert_eq!(render(&avif, "w=48").expect("renders").format.name(), "avif");
}

#[test]
fn gray_and_alpha_are_kept() {
    let source = images::pattern(64, 40);
    let gray = DynamicImage::ImageRgb8(source.clone()).to_luma8();
    let avif = encoders::avif(
        &images::encode(&DynamicImage::ImageLuma8(gray.clone()), ImageFormat::Png),
        "png",
        None,
        &["-y", "400", "--min", "2", "--max", "2"],
    );
    let out = pixels(&render(&avif, "fmt=png").expect("gray renders"));
    assert_eq!(out.color().channel_count(), 1, "gray stays gray");
    assert!(images::mean_difference(out.to_luma8().as_raw(), gray.as_raw()) < 2.0);

    let rgba = image::RgbaImage::from_fn(64, 40, |x, y| {
        let [r, g, b] = source.get_pixel(x, y).0;
        image::Rgba([r, g, b, (x * 4) as u8])
    });
    let avif = encoders::avif(
        &images::encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png),
        "png",
        None,
        &["--min", "2", "--max", "2", "--minalpha", "0", "--maxalpha", "0"],
    );
    let out = pixels(&render(&avif, "fmt=png").expect("alpha renders")).to_rgba8();
    let alpha = |image: &image::RgbaImage| image.pixels().map(|p| p.0[3]).collect::<Vec<u8>>();
    assert_eq!(alpha(&out), alpha(&rgba), "lossless alpha");
    // Colour where it is opaque enough to see.
    let visible = |image: &image::RgbaImage| {
        image.pixels().filter(|p| p.0[3] > 128).flat_map(|p| p.0[..3].to_vec()).collect::<Vec<u8>>()
    };
    assert!(images::mean_difference(&visible(&out), &visible(&rgba)) < 2.5);
}

#[test]
fn rotation_and_mirror_are_applied() {
    // Each irot (anticlockwise quarter turns) and imir (0 top and bottom exchanged, 1 left and
    // right), as the picture a viewer shows.
    let source = DynamicImage::ImageRgb8(images::quadrants(40, 20));
    let png = images::encode(&source, ImageFormat::Png);
    for turns in 0..4 {
        for mirror in [None, Some(0), Some(1)] {
            let label = format!("irot {turns} imir {mirror:?}");
            let turns_arg = turns.to_string();
            let mirror_arg = mirror.map(|m: u8| m.to_string());
            let mut args = vec!["--irot", turns_arg.as_str(), "--min", "0", "--max", "0", "-y", "444"];
            if let Some(mirror) = &mirror_arg {
                args.extend(["--imir", mirror.as_str()]);
            }
            let avif = encoders::avif(&png, "png", None, &args);
            let expected = images::as_shown(&source, turns, mirror);
            let out = rendered_rgb(&avif, &label);
            assert_eq!(out.dimensions(), expected.dimensions(), "{label}");
            let difference = images::mean_difference(out.as_raw(), expected.to_rgb8().as_raw());
            assert!(difference < 3.0, "{label}: mean difference {difference}");
        }
    }
}

#[test]
fn an_icc_profile_and_wide_gamut_code_points_are_converted_to_srgb() {
    let source = images::pattern(64, 48);
    let p3 = images::display_p3_profile();
    // The same pixels as a PNG tagged Display P3, as Pixelmill renders it: converted to sRGB.
    let from_png = rendered_rgb(&images::png_with_profile(&source, &p3), "png");
    assert!(images::mean_difference(from_png.as_raw(), source.as_raw()) > 2.0, "the conversion changes the pixels");
    let png = images::png(&source);
    let lossless = ["--min", "0", "--max", "0", "-y", "444"];
    let with_icc = encoders::avif(&png, "png", Some(&p3), &[&lossless[..], &["--icc", "{icc}"]].concat());
    let difference = images::mean_difference(rendered_rgb(&with_icc, "icc").as_raw(), from_png.as_raw());
    assert!(difference < 1.5, "ICC: mean difference {difference} from the PNG's conversion");
    // Display P3 as code points: P3 primaries (12), the sRGB transfer (13), BT.601 matrix (6).
    let with_nclx = encoders::avif(&png, "png", None, &[&lossless[..], &["--cicp", "12/13/6"]].concat());
    let difference = images::mean_difference(rendered_rgb(&with_nclx, "nclx").as_raw(), from_png.as_raw());
    assert!(difference < 1.5, "nclx: mean difference {difference} from the PNG's conversion");
}

#[test]
fn damaged_and_oversized_files_are_refused_with_their_cause() {
    let source = images::pattern(96, 64);
    let avif = encoders::avif(&images::png(&source), "png", None, &[]);
    for cut in [12, 40, avif.len() / 2, avif.len() - 3] {
        let result = render(&avif[..cut], "w=10");
        assert!(matches!(result, Err(EngineError::Corrupt { format: "avif", .. })), "cut at {cut}: {result:?}");
    }
    // A grid whose descriptor asks for more tiles than it has.
    let grid = encoders::avif(&images::png(&images::pattern(192, 128)), "png", None, &["-g", "3x2"]);
    let descriptor = grid_descriptor(&grid);
    let mut damaged = grid.clone();
    damaged[descriptor + 2] = 2; // three rows
    let result = render(&damaged, "w=10");
    assert!(matches!(&result, Err(EngineError::Corrupt { detail, .. }) if detail.contains("tiles")), "{result:?}");
    // The size comes from the container, before any AV1 data is decoded.
    let limits = Limits { max_input_pixels: 5_000, ..Limits::default() };
    let result = engine::render(&avif, &Spec::parse("w=10", &Presets::default()).unwrap(), &limits);
    assert!(matches!(result, Err(EngineError::TooManyPixels { width: 96, height: 64, .. })), "{result:?}");
}

#[test]
fn damage_anywhere_in_the_av1_data_is_an_error_not_an_abort() {
    // Each byte of the AV1 payload flipped in turn: the decoder must answer (a picture or an
    // error), never take the process down. rav1d's single-frame-context error path aborted on
    // such damage (a panic out of an `extern "C"` function), which a test process cannot catch:
    // this test dies with it.
    let avif = encoders::avif(&images::png(&images::pattern(48, 32)), "png", None, &[]);
    let payload = avif.windows(4).position(|w| w == b"mdat").expect("an mdat box") + 4;
    let mut errors = 0;
    for at in payload..avif.len() {
        let mut damaged = avif.clone();
        damaged[at] ^= 0xFF;
        match render(&damaged, "w=16&fmt=png") {
            Ok(_) => {}
            Err(EngineError::Corrupt { format: "avif", .. }) => errors += 1,
            Err(other) => panic!("byte {at}: {other}"),
        }
    }
    assert!(errors > 0, "some damage is detected");
}

/// Where the grid descriptor of an avifenc grid of 192x128 in 3 columns and 2 rows starts: its
/// 8 bytes (version 0, flags 0, rows and columns less one, 16-bit width and height).
fn grid_descriptor(avif: &[u8]) -> usize {
    let descriptor = [0, 0, 1, 2, 0, 192, 0, 128];
    let found: Vec<usize> = (0..avif.len() - 8).filter(|&at| avif[at..at + 8] == descriptor).collect();
    assert_eq!(found.len(), 1, "one grid descriptor");
    found[0]
}

#[test]
fn a_grid_of_tiles_is_decoded_into_one_picture() {
    // avifenc splits the picture into 3 columns and 2 rows of 64x64 tiles; with alpha, the
    // alpha plane is a grid too.
    let pattern = images::pattern(192, 128);
    let source = image::RgbaImage::from_fn(192, 128, |x, y| {
        let p = pattern.get_pixel(x, y).0;
        image::Rgba([p[0], p[1], p[2], (x + y) as u8])
    });
    let png = images::encode(&DynamicImage::ImageRgba8(source.clone()), ImageFormat::Png);
    let grid = encoders::avif(&png, "png", None, &["-g", "3x2", "--min", "0", "--max", "0", "-y", "444"]);
    let info = engine::inspect(&grid, &Limits::default()).expect("inspect");
    assert_eq!((info.format, info.width, info.height), (InputFormat::Avif, 192, 128));
    let out = image::load_from_memory(&render(&grid, "fmt=png").expect("renders").bytes).expect("a PNG").to_rgba8();
    assert_eq!(out.dimensions(), (192, 128));
    // Every tile in its place: each 64x64 block against the source's.
    for (column, row) in (0..3).flat_map(|c| (0..2).map(move |r| (c, r))) {
        let block = |image: &image::RgbaImage| {
            image::imageops::crop_imm(image, column * 64, row * 64, 64, 64).to_image().into_raw()
        };
        let difference = images::mean_difference(&block(&out), &block(&source));
        assert!(difference < 2.0, "tile ({column}, {row}): mean difference {difference}");
    }
    // The last column and row reach past a picture that does not fill them: the same tiles
    // under a descriptor and size of 170x100 show the source's top left 170x100.
    let mut cropped = grid.clone();
    let at = grid_descriptor(&grid);
    cropped[at + 4..at + 8].copy_from_slice(&[0, 170, 0, 100]);
    let size = [0, 0, 0, 192, 0, 0, 0, 128];
    let ispe: Vec<usize> =
        (0..grid.len() - 16).filter(|&at| &grid[at..at + 4] == b"ispe" && grid[at + 8..at + 16] == size).collect();
    assert!(!ispe.is_empty(), "the grid's size property");
    for at in ispe {
        cropped[at + 8..at + 16].copy_from_slice(&[0, 0, 0, 170, 0, 0, 0, 100]);
    }
    let out = image::load_from_memory(&render(&cropped, "fmt=png").expect("renders").bytes).expect("a PNG").to_rgba8();
    assert_eq!(out.dimensions(), (170, 100));
    let expected = image::imageops::crop_imm(&source, 0, 0, 170, 100).to_image();
    let difference = images::mean_difference(out.as_raw(), expected.as_raw());
    assert!(difference < 2.0, "cropped: mean difference {difference}");
}
