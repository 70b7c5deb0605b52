//! Any (spec, bytes) pair through a render: the first line is the query, the rest the image.
//! A good file with a hostile spec, a hostile file with a good one: an error of the input's
//! making is fine; a panic, an abort, an `Internal` error or a render that allocates past the
//! budget (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb`) is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelmill::engine::{self, EngineError, Limits, Presets, Spec};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().take(256).position(|&b| b == b'\n').unwrap_or(0);
    let Ok(query) = std::str::from_utf8(&data[..split]) else { return };
    let bytes = &data[(split + 1).min(data.len())..];
    let Ok(spec) = Spec::parse(query, &Presets::default()) else { return };
    // Small limits keep each run fast; the plan must refuse what would go past them.
    let limits = Limits {
        max_input_pixels: 4_000_000,
        max_output_pixels: 4_000_000,
        max_render_bytes: 64 << 20,
        max_jpeg_scans: 100,
        max_animation_frames: 100,
        max_animation_pixels: 16_000_000,
    };
    if let Err(EngineError::Internal(cause)) = engine::render(bytes, &spec, &limits) {
        panic!("render {query}: internal error {cause}");
    }
});
