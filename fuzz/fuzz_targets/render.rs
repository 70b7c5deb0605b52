//! Any (spec, bytes) pair through a render: the first line is the query, the rest the image.
//! A good file with a hostile spec, a hostile file with a good one: an error of the input's
//! making is fine; a panic, an abort, an `Internal` error or a render that allocates past the
//! budget (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb`) is a bug.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pixelmill::engine::watermark::Watermark;
use pixelmill::engine::{self, EngineError, Limits, Presets, Spec, Watermarks};

/// A watermark `logo` (30x10, half transparent) for `wm=` to name.
static WATERMARKS: LazyLock<(Watermarks, Presets)> = LazyLock::new(|| {
    let image = image::RgbaImage::from_fn(30, 10, |x, y| image::Rgba([x as u8 * 8, y as u8 * 20, 90, 128]));
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let logo = Watermark::load(&png, &Limits::default()).unwrap();
    let watermarks = Watermarks::new(BTreeMap::from([("logo".to_owned(), logo)]));
    let presets = Presets::with_watermarks(Default::default(), watermarks.infos()).unwrap();
    (watermarks, presets)
});

fuzz_target!(|data: &[u8]| {
    let split = data.iter().take(256).position(|&b| b == b'\n').unwrap_or(0);
    let Ok(query) = std::str::from_utf8(&data[..split]) else { return };
    let bytes = &data[(split + 1).min(data.len())..];
    let (watermarks, presets) = &*WATERMARKS;
    let Ok(spec) = Spec::parse(query, presets) else { return };
    // Small limits keep each run fast; the plan must refuse what would go past them.
    let limits = Limits {
        max_input_pixels: 4_000_000,
        max_output_pixels: 4_000_000,
        max_render_bytes: 64 << 20,
        max_jpeg_scans: 100,
        max_animation_frames: 100,
        max_animation_pixels: 16_000_000,
    };
    if let Err(EngineError::Internal(cause)) = engine::render_with(bytes, &spec, &limits, watermarks) {
        panic!("render {query}: internal error {cause}");
    }
});
