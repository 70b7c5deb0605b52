//! Animated GIFs through the engine: frames composed and kept, delays and loop count kept,
//! stills on request, and the limits an animation cannot get around.

use image::{AnimationDecoder, RgbaImage};
use pixelmill::engine::{self, EngineError, Limits, Presets, Spec, decode};
use pixelmill_tests::animation;

fn spec(query: &str) -> Spec {
    Spec::parse(query, &Presets::default()).expect("valid spec")
}

fn render(input: &[u8], query: &str, limits: &Limits) -> Result<engine::Rendered, EngineError> {
    engine::render(input, &spec(query), limits)
}

/// The frames an animation decoder composes, with their delays in ms.
fn composed<'a>(decoder: impl AnimationDecoder<'a>) -> Vec<(RgbaImage, u32)> {
    decoder
        .into_frames()
        .map(|frame| {
            let frame = frame.expect("a frame");
            let (numerator, denominator) = frame.delay().numer_denom_ms();
            (frame.into_buffer(), numerator / denominator)
        })
        .collect()
}

/// The frames of a GIF as an independent decoder composes them.
fn frames(gif: &[u8]) -> Vec<(RgbaImage, u32)> {
    composed(image::codecs::gif::GifDecoder::new(std::io::Cursor::new(gif)).expect("a GIF"))
}

/// The frames of an animated WebP as `image-webp` (not libwebp, which writes them) composes them.
fn webp_frames(webp: &[u8]) -> Vec<(RgbaImage, u32)> {
    composed(image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp)).expect("a WebP"))
}

/// The composed squares, checked at half scale (see [`animation::squares`]).
fn assert_squares(frames: &[(RgbaImage, u32)], tolerance: u8) {
    assert_eq!(frames.len(), 3, "every frame is kept");
    assert_eq!(frames.iter().map(|(_, delay)| *delay).collect::<Vec<_>>(), [100, 200, 300]);
    for (image, _) in frames {
        assert_eq!(image.dimensions(), (32, 24));
    }
    // Frame 0: all red. Frame 1: the blue square over it. Frame 2: the square's region disposed
    // of to transparent, the green square drawn, the rest still red.
    let (first, second, third) = (&frames[0].0, &frames[1].0, &frames[2].0);
    assert!(near(first.get_pixel(8, 8), [255, 0, 0], tolerance), "{:?}", first.get_pixel(8, 8));
    assert!(near(second.get_pixel(8, 8), [0, 0, 255], tolerance), "{:?}", second.get_pixel(8, 8));
    assert!(near(second.get_pixel(28, 4), [255, 0, 0], tolerance));
    assert_eq!(third.get_pixel(8, 8)[3], 0, "the disposed region is transparent");
    assert!(near(third.get_pixel(24, 16), [0, 255, 0], tolerance), "{:?}", third.get_pixel(24, 16));
    assert!(near(third.get_pixel(28, 4), [255, 0, 0], tolerance));
}

/// Whether a pixel is within `tolerance` of an opaque colour (GIF output is quantised).
fn near(pixel: &image::Rgba<u8>, rgb: [u8; 3], tolerance: u8) -> bool {
    pixel[3] == 255 && pixel.0[..3].iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= tolerance)
}

#[test]
fn an_animated_gif_stays_animated_through_a_resize_with_composed_frames() {
    let source = animation::squares();
    let rendered = render(&source, "w=32&fmt=gif", &Limits::default()).expect("renders");
    assert_eq!((rendered.width, rendered.height), (32, 24));
    assert_squares(&frames(&rendered.bytes), 8);
    // Played three times: the source's loop extension, kept.
    let probe = decode::probe(&rendered.bytes, &Limits::default()).expect("probe");
    assert_eq!(probe.animation, Some(decode::Animation { frames: 3, plays: 3 }));
}

#[test]
fn an_animated_gif_becomes_an_animated_webp_and_back() {
    let source = animation::squares();
    let limits = Limits::default();
    for query in ["w=32&fmt=webp&q=90", "w=32&fmt=webp&lossless=1"] {
        let webp = render(&source, query, &limits).expect("renders");
        assert_eq!((webp.width, webp.height), (32, 24));
        assert_squares(&webp_frames(&webp.bytes), 24);
        let probe = decode::probe(&webp.bytes, &limits).expect("probe");
        assert_eq!(probe.animation, Some(decode::Animation { frames: 3, plays: 3 }), "{query}");
        // The animated WebP as a source: back to GIF at the same size, still animated.
        let gif = render(&webp.bytes, "fmt=gif", &limits).expect("renders");
        assert_squares(&frames(&gif.bytes), 24);
        let probe = decode::probe(&gif.bytes, &limits).expect("probe");
        assert_eq!(probe.animation, Some(decode::Animation { frames: 3, plays: 3 }), "{query} to GIF");
    }
}

#[test]
fn every_frame_goes_through_the_same_geometry() {
    let source = animation::squares();
    // Rotated a quarter turn and flipped, the canvas is transposed to 48x64 and `w` applies to
    // that: 32x43. The squares are transposed too: blue at (8, 8) stays there, green at
    // (40, 24) goes to (24, 40), each at two thirds of the scale.
    let rendered = render(&source, "w=32&rotate=90&flip=h&fmt=gif", &Limits::default()).expect("renders");
    let frames = frames(&rendered.bytes);
    assert_eq!(frames.len(), 3);
    for (image, _) in &frames {
        assert_eq!(image.dimensions(), (32, 43));
    }
    let (second, third) = (&frames[1].0, &frames[2].0);
    assert!(near(second.get_pixel(10, 10), [0, 0, 255], 8), "{:?}", second.get_pixel(10, 10));
    assert!(near(third.get_pixel(21, 32), [0, 255, 0], 8), "{:?}", third.get_pixel(21, 32));
    assert!(near(third.get_pixel(30, 5), [255, 0, 0], 8), "{:?}", third.get_pixel(30, 5));
}

#[test]
fn the_loop_count_is_kept_as_the_source_has_it() {
    use gif::{DisposalMethod, Repeat};
    let frame =
        |rgb| animation::Rect { left: 0, top: 0, width: 8, height: 8, rgb, delay_cs: 5, dispose: DisposalMethod::Keep };
    let two = [frame([255, 0, 0]), frame([0, 0, 255])];
    for (repeat, plays) in [(None, 1), (Some(Repeat::Infinite), 0), (Some(Repeat::Finite(4)), 5)] {
        let source = animation::gif(8, 8, &two, repeat);
        let rendered = render(&source, "fmt=gif", &Limits::default()).expect("renders");
        let probe = decode::probe(&rendered.bytes, &Limits::default()).expect("probe");
        assert_eq!(probe.animation, Some(decode::Animation { frames: 2, plays }), "{repeat:?}");
    }
}

#[test]
fn stills_of_an_animation_on_request() {
    let source = animation::squares();
    let limits = Limits::default();
    for query in ["w=32&fmt=gif&anim=0", "w=32&fmt=webp&anim=0", "w=32&fmt=png", "w=32&fmt=jpeg"] {
        let rendered = render(&source, query, &limits).expect("renders");
        let still = image::load_from_memory(&rendered.bytes).expect("decodes").to_rgba8();
        assert!(near(still.get_pixel(8, 8), [255, 0, 0], 8), "{query}: the first frame");
        assert!(decode::probe(&rendered.bytes, &limits).expect("probe").animation.is_none(), "{query}");
    }
    let rendered = render(&source, "w=32&fmt=png&frame=1", &limits).expect("renders");
    let still = image::load_from_memory(&rendered.bytes).expect("decodes").to_rgba8();
    assert!(near(still.get_pixel(8, 8), [0, 0, 255], 4), "frame 1 shows the blue square");
    let rendered = render(&source, "w=32&fmt=png&frame=2", &limits).expect("renders");
    let still = image::load_from_memory(&rendered.bytes).expect("decodes").to_rgba8();
    assert_eq!(still.get_pixel(8, 8)[3], 0, "frame 2, composed after frame 1's disposal");
    assert!(matches!(
        render(&source, "fmt=png&frame=3", &limits),
        Err(EngineError::FrameOutOfRange { frame: 3, frames: 3 })
    ));
    // A still image has one frame, frame 0.
    let png = pixelmill_tests::images::encode(
        &image::DynamicImage::ImageRgb8(pixelmill_tests::images::pattern(8, 8)),
        image::ImageFormat::Png,
    );
    assert!(render(&png, "frame=0", &limits).is_ok());
    assert!(matches!(render(&png, "frame=1", &limits), Err(EngineError::FrameOutOfRange { frame: 1, frames: 1 })));
}

#[test]
fn the_frame_cap_refuses_an_animation_from_its_blocks() {
    let source = animation::many_frames(4, 4, 30);
    let limits = Limits { max_animation_frames: 29, ..Limits::default() };
    assert!(matches!(engine::inspect(&source, &limits), Err(EngineError::TooManyFrames { frames: 30, limit: 29 })));
    assert!(matches!(render(&source, "fmt=gif", &limits), Err(EngineError::TooManyFrames { .. })));
    let limits = Limits { max_animation_frames: 30, ..Limits::default() };
    assert_eq!(frames(&render(&source, "fmt=gif", &limits).expect("renders").bytes).len(), 30);
}

#[test]
fn the_pixels_of_every_frame_count_before_any_is_decoded() {
    // A thousand frames of a 1000x1000 canvas, in a file of a few kilobytes: a billion pixels to
    // decode, refused from the plan. Its still, one frame, renders.
    let source = animation::many_frames(1000, 1000, 1000);
    assert!(source.len() < 64 << 10, "{} bytes", source.len());
    let limits = Limits::default();
    match render(&source, "w=100&fmt=gif", &limits) {
        Err(EngineError::AnimationTooLarge { frames: 1000, width: 1000, height: 1000, pixels, limit }) => {
            assert_eq!(pixels, 1_000_000_000);
            assert_eq!(limit, limits.max_animation_pixels);
        }
        other => panic!("expected animation-too-large, got {other:?}"),
    }
    let still = render(&source, "w=100&fmt=gif&anim=0", &limits).expect("a still renders");
    assert_eq!((still.width, still.height), (100, 100));
    // Past the frames a still needs, the same limit holds.
    let limits = Limits { max_animation_pixels: 5_000_000, ..Limits::default() };
    assert!(render(&source, "w=100&fmt=png&frame=4", &limits).is_ok());
    assert!(matches!(render(&source, "w=100&fmt=png&frame=5", &limits), Err(EngineError::AnimationTooLarge { .. })));
}

#[test]
fn a_frame_outside_the_canvas_is_an_error_or_clipped_never_a_panic() {
    use gif::DisposalMethod;
    let inside = animation::Rect {
        left: 0,
        top: 0,
        width: 8,
        height: 8,
        rgb: [1, 2, 3],
        delay_cs: 1,
        dispose: DisposalMethod::Keep,
    };
    let outside = animation::Rect { left: 60, top: 40, width: 16, height: 16, rgb: [200, 0, 0], ..inside };
    let source = animation::gif(64, 48, &[inside, outside], None);
    match render(&source, "w=32&fmt=gif", &Limits::default()) {
        Ok(rendered) => assert_eq!(frames(&rendered.bytes).len(), 2),
        Err(EngineError::Corrupt { .. }) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// A still of many colours (more than a GIF palette holds): a smooth gradient on each axis.
fn gradient(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x + y) * 127 / (width + height)) as u8 + 64,
            255,
        ])
    })
}

/// An animated lossless WebP: `background` under an 8x8 white square that moves along the top
/// rows, one step a frame.
fn moving_square(background: &RgbaImage, frames: u32) -> Vec<u8> {
    use pixelmill::engine::encode::{AnimationEncoder, EncodeOptions};
    use pixelmill::engine::spec::OutputFormat;
    let mut bytes = Vec::new();
    let options = EncodeOptions { quality: 100, progressive: false, lossless: true };
    let mut encoder =
        AnimationEncoder::new(&mut bytes, OutputFormat::Webp, background.dimensions(), 0, options).expect("an encoder");
    for frame in 0..frames {
        let mut image = background.clone();
        for (x, y) in (0..8).flat_map(|x| (0..8).map(move |y| (x, y))) {
            image.put_pixel(frame * 8 + x, y, image::Rgba([255, 255, 255, 255]));
        }
        encoder.add(image::DynamicImage::ImageRgba8(image), 100).expect("a frame");
    }
    encoder.finish().expect("finished");
    bytes
}

/// The mean over 8x8 blocks of each channel: what the eye sees of a dithered picture.
fn block_means(image: &RgbaImage) -> Vec<f64> {
    let mut means = Vec::new();
    for (by, bx) in (0..image.height() / 8).flat_map(|y| (0..image.width() / 8).map(move |x| (y, x))) {
        for channel in 0..3 {
            let sum: u32 = (0..64).map(|i| u32::from(image.get_pixel(bx * 8 + i % 8, by * 8 + i / 8)[channel])).sum();
            means.push(f64::from(sum) / 64.0);
        }
    }
    means
}

#[test]
fn a_region_that_does_not_move_keeps_its_pixels_in_every_gif_frame() {
    let background = gradient(96, 64);
    let source = moving_square(&background, 8);
    let rendered = render(&source, "fmt=gif", &Limits::default()).expect("renders");
    let frames = frames(&rendered.bytes);
    assert_eq!(frames.len(), 8);
    let first = &frames[0].0;
    for (n, (frame, _)) in frames.iter().enumerate() {
        // Below the square's rows nothing moves: the same indices, so the same pixels.
        for (x, y) in (0..96).flat_map(|x| (8..64).map(move |y| (x, y))) {
            assert_eq!(frame.get_pixel(x, y), first.get_pixel(x, y), "frame {n} at ({x}, {y})");
        }
        // The square is drawn where it is in this frame.
        assert!(near(frame.get_pixel(n as u32 * 8 + 4, 4), [255, 255, 255], 16), "frame {n}");
    }
}

#[test]
fn gif_output_is_dithered_so_gradients_keep_their_tones() {
    let source = gradient(256, 128);
    let mut png = Vec::new();
    source.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("a PNG");
    let rendered = render(&png, "fmt=gif", &Limits::default()).expect("renders");
    let output = image::load_from_memory(&rendered.bytes).expect("a GIF").to_rgba8();
    let (expected, actual) = (block_means(&source), block_means(&output));
    let error = expected.iter().zip(&actual).map(|(a, b)| (a - b).abs()).sum::<f64>() / expected.len() as f64;
    // 0.55 measured; 1.40 without dithering.
    assert!(error < 1.0, "mean difference of 8x8 block means: {error:.2} levels");
}
