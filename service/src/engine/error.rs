//! What can go wrong in the engine, as variants a caller can act on: each one is about the
//! client's input except [`EngineError::Internal`].

use crate::engine::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("the body is empty")]
    Empty,
    #[error("not an image format Pixelmill reads ({})", READ_FORMATS.join(", "))]
    UnknownFormat,
    #[error("{0} images are not accepted; send {formats}", formats = send_formats())]
    RefusedFormat(&'static str),
    #[error("the {format} image is corrupt or truncated: {detail}")]
    Corrupt { format: &'static str, detail: String },
    #[error("the image is {width}x{height} ({pixels} pixels), over the limit of {limit} pixels")]
    TooManyPixels { width: u64, height: u64, pixels: u64, limit: u64 },
    #[error("the output would be {width}x{height} ({pixels} pixels), over the limit of {limit} pixels")]
    OutputTooLarge { width: u64, height: u64, pixels: u64, limit: u64 },
    #[error(
        "a {width}x{height} image is over what {format} can hold: at most {limit} pixels a side; \
         choose a smaller size or another format"
    )]
    OutputDimensionTooLarge { format: &'static str, width: u32, height: u32, limit: u32 },
    #[error(
        "the render would hold {bytes} bytes at its largest step ({stage}), over the budget of {limit} \
         bytes per render; ask for a smaller output or crop"
    )]
    RenderTooLarge { bytes: u64, stage: &'static str, limit: u64 },
    #[error("the JPEG has {scans} scans, over the limit of {limit}")]
    TooManyScans { scans: u32, limit: u32 },
    #[error("the animation has {frames} frames, over the limit of {limit}")]
    TooManyFrames { frames: u32, limit: u32 },
    #[error(
        "the animation would decode {pixels} pixels ({frames} frames of {width}x{height}), over the limit of \
         {limit}; ask for a still (`anim=0` or `frame=N`)"
    )]
    AnimationTooLarge { frames: u32, width: u32, height: u32, pixels: u64, limit: u64 },
    #[error("frame {frame} was asked for; the image has {frames} (the first is 0)")]
    FrameOutOfRange { frame: u32, frames: u32 },
    #[error("crop {x},{y},{w},{h} lies outside the {width}x{height} image")]
    CropOutOfBounds { x: u32, y: u32, w: u32, h: u32, width: u32, height: u32 },
    /// A failure that no input should cause: an encoder refusing valid pixels.
    #[error("internal engine failure: {0}")]
    Internal(String),
}

impl EngineError {
    pub(crate) fn corrupt(format: &'static str, detail: impl ToString) -> EngineError {
        EngineError::Corrupt { format, detail: detail.to_string() }
    }
}

/// The formats the engine reads, by their common names, in the order the messages give them.
#[cfg(not(feature = "heic"))]
pub const READ_FORMATS: &[&str] = &["JPEG", "PNG", "GIF", "WebP", "TIFF", "JPEG XL", "AVIF"];
#[cfg(feature = "heic")]
pub const READ_FORMATS: &[&str] = &["JPEG", "PNG", "GIF", "WebP", "TIFF", "JPEG XL", "AVIF", "HEIC"];

/// "JPEG, PNG, ... or AVIF".
fn send_formats() -> String {
    match READ_FORMATS.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}
