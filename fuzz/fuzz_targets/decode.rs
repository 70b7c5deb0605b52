//! Any bytes through upload validation and a small render: an error of the input's making is
//! fine, a panic, an abort or an `Internal` error is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelmill::engine::{self, EngineError, Limits, Presets, Spec};

fuzz_target!(|bytes: &[u8]| {
    // Small limits keep each run fast; a bomb must still be refused from its header.
    let limits = Limits { max_input_pixels: 4_000_000, max_output_pixels: 1_000_000, ..Limits::default() };
    if let Err(EngineError::Internal(cause)) = engine::validate(bytes, &limits) {
        panic!("validate: internal error {cause}");
    }
    let spec = Spec::parse("w=48&h=48&fit=cover&fmt=png", &Presets::default()).expect("a valid spec");
    if let Err(EngineError::Internal(cause)) = engine::render(bytes, &spec, &limits) {
        panic!("render: internal error {cause}");
    }
});
