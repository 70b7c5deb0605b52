//! Any bytes through Pixelmill's own JPEG decoder at each scale it serves, with chroma whole and
//! at half, and to the YCbCr planes: an error of the input's making is fine; a panic, an
//! `Internal` error or pixels of the wrong size are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelmill::engine::{EngineError, Limits, decode, jpeg};

fuzz_target!(|bytes: &[u8]| {
    let limits = Limits { max_input_pixels: 4_000_000, ..Limits::default() };
    let Ok(probe) = decode::probe(bytes, &limits) else { return };
    for shrink in [8, 4, 2] {
        if !probe.own_jpeg_decoder_handles(shrink) {
            continue;
        }
        for chroma in [jpeg::Chroma::Full, jpeg::Chroma::Half] {
            match jpeg::decode_with(bytes, shrink, chroma, limits.max_jpeg_scans) {
                Ok(image) => assert_eq!(
                    (image.width(), image.height()),
                    (probe.width.div_ceil(shrink), probe.height.div_ceil(shrink)),
                    "1/{shrink} {chroma:?}"
                ),
                Err(EngineError::Internal(cause)) => panic!("1/{shrink} {chroma:?}: internal error {cause}"),
                Err(_) => {}
            }
        }
        // The planes a thumbnail is made from without RGB: luma at the scale, chroma half that.
        if probe.halves_chroma(shrink) {
            match jpeg::decode_ycc(bytes, shrink, limits.max_jpeg_scans) {
                Ok([luma, cb, cr]) => {
                    let (width, height) =
                        (probe.width.div_ceil(shrink) as usize, probe.height.div_ceil(shrink) as usize);
                    assert_eq!(
                        (luma.width, luma.height, luma.data.len()),
                        (width, height, width * height),
                        "1/{shrink}"
                    );
                    for plane in [cb, cr] {
                        let (w, h) = (width.div_ceil(2), height.div_ceil(2));
                        assert_eq!((plane.width, plane.height, plane.data.len()), (w, h, w * h), "1/{shrink}");
                    }
                }
                Err(EngineError::Internal(cause)) => panic!("1/{shrink} planes: internal error {cause}"),
                Err(_) => {}
            }
        }
    }
});
