//! The image engine: bytes and a [`Spec`] in, bytes out.
//!
//! Architecture invariant: the engine does no I/O, knows no HTTP and is synchronous. Callers
//! run it on a rayon pool; it may use rayon inside one large image too.
//!
//! A render goes: [`decode::probe`] (format, size, metadata; the pixel limit is checked here,
//! before any pixel buffer exists) -> plan the geometry -> decode, shrinking on load -> EXIF
//! orientation -> crop and resize in one resampling pass -> rotate, flip -> trim (cover) or pad
//! (contain) -> blur, sharpen, gray -> convert to sRGB -> flatten alpha -> encode.

pub mod color;
pub mod decode;
pub mod encode;
pub mod error;
pub mod format;
pub mod geometry;
pub mod metadata;
pub mod ops;
pub mod spec;

use std::time::{Duration, Instant};

use image::metadata::Orientation;

pub use self::error::EngineError;
pub use self::format::InputFormat;
pub use self::spec::{OutputFormat, Presets, Spec, SpecError};

use self::geometry::Finish;
use self::ops::Region;
use self::spec::{Color, CropRect};

/// Limits on what a render may cost. Every one has a safe default and is configurable.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source image, in pixels, checked from the header before decoding.
    pub max_input_pixels: u64,
    /// Largest output image, in pixels.
    pub max_output_pixels: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_input_pixels: 50_000_000, max_output_pixels: 50_000_000 }
    }
}

/// What an upload needs to know about an image, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: InputFormat,
    /// Dimensions as displayed, after EXIF orientation.
    pub width: u32,
    pub height: u32,
}

/// Time spent in each stage of a render.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub decode: Duration,
    pub transform: Duration,
    pub encode: Duration,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// The factor the decoder shrank by on load (1, 2, 4 or 8).
    pub shrink_on_load: u32,
    pub timings: StageTimings,
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Reads format and displayed size, enforcing the input pixel limit.
pub fn inspect(input: &[u8], limits: &Limits) -> Result<ImageInfo, EngineError> {
    let probe = decode::probe(input, limits.max_input_pixels)?;
    let (width, height) = oriented(&probe);
    Ok(ImageInfo { format: probe.format, width, height })
}

/// Reads format and displayed size, and decodes the pixels to prove the file is whole, at the
/// smallest scale the decoder offers (a JPEG or WebP at 1/8 costs a fraction of a full decode,
/// yet still reads every byte of entropy-coded data, so truncation is found).
pub fn validate(input: &[u8], limits: &Limits) -> Result<ImageInfo, EngineError> {
    let probe = decode::probe(input, limits.max_input_pixels)?;
    let shrink = if decode::can_shrink_on_load(&probe) { decode::SHRINK_FACTORS[0] } else { 1 };
    decode::decode(input, &probe, shrink)?;
    let (width, height) = oriented(&probe);
    Ok(ImageInfo { format: probe.format, width, height })
}

fn oriented(probe: &decode::Probe) -> (u32, u32) {
    if swaps_axes(probe.metadata.orientation()) { (probe.height, probe.width) } else { (probe.width, probe.height) }
}

/// Renders `input` as `spec` asks. `fmt=auto` must have been resolved by the caller (it needs
/// the client's `Accept`); if not, the source format is kept.
pub fn render(input: &[u8], spec: &Spec, limits: &Limits) -> Result<Rendered, EngineError> {
    let started = Instant::now();
    let probe = decode::probe(input, limits.max_input_pixels)?;
    let (width, height) = oriented(&probe);
    let crop = spec.crop.unwrap_or(CropRect { x: 0, y: 0, width, height });
    if u64::from(crop.x) + u64::from(crop.width) > u64::from(width)
        || u64::from(crop.y) + u64::from(crop.height) > u64::from(height)
    {
        return Err(EngineError::CropOutOfBounds {
            x: crop.x,
            y: crop.y,
            w: crop.width,
            h: crop.height,
            width,
            height,
        });
    }
    let plan = geometry::plan((crop.width, crop.height), spec);
    let (out_w, out_h) = plan.output_size(spec.rotate);
    let out_pixels = u64::from(out_w) * u64::from(out_h);
    if out_pixels > limits.max_output_pixels {
        return Err(EngineError::OutputTooLarge {
            width: out_w.into(),
            height: out_h.into(),
            pixels: out_pixels,
            limit: limits.max_output_pixels,
        });
    }

    // Shrink on load by the largest factor that still leaves at least the resized size, so the
    // final resample is always a reduction (or a copy) and never an enlargement.
    let shrink = if decode::can_shrink_on_load(&probe) {
        let (rw, rh) = plan.resized;
        decode::SHRINK_FACTORS
            .into_iter()
            .find(|&f| {
                f64::from(crop.width) / f64::from(f) >= f64::from(rw)
                    && f64::from(crop.height) / f64::from(f) >= f64::from(rh)
            })
            .unwrap_or(1)
    } else {
        1
    };
    let mut image = decode::decode(input, &probe, shrink)?;
    let decoded = Instant::now();

    image.apply_orientation(probe.metadata.orientation());
    // The decoder rounds shrunk sizes up, so map the crop by the real ratio on each axis.
    let (sx, sy) = (f64::from(image.width()) / f64::from(width), f64::from(image.height()) / f64::from(height));
    let region = Region {
        left: f64::from(crop.x) * sx,
        top: f64::from(crop.y) * sy,
        width: f64::from(crop.width) * sx,
        height: f64::from(crop.height) * sy,
    };
    image = ops::resize(&image, region, plan.resized)?;
    image = ops::rotate(image, spec.rotate);
    if let Some(flip) = spec.flip {
        image = ops::flip(image, flip);
    }
    let background = spec.background.unwrap_or(Color::WHITE);
    image = match plan.finish {
        Finish::None => image,
        Finish::Trim { width, height } => ops::trim(&image, width, height, spec.gravity),
        Finish::Pad { width, height } => ops::pad(&image, width, height, spec.gravity, background),
    };
    if let Some(sigma) = spec.blur {
        image = ops::blur(&image, sigma);
    }
    if let Some(sigma) = spec.sharpen {
        image = ops::sharpen(&image, sigma);
    }
    if spec.gray {
        image = ops::grayscale(&image);
    }
    if let Some(icc) = &probe.metadata.icc_profile {
        color::to_srgb(&mut image, icc);
    }
    let format = spec.output_format(probe.format.as_output());
    if image.color().has_alpha() && (!format.supports_alpha() || spec.background.is_some_and(|bg| bg.a == 255)) {
        image = ops::flatten(image, Color { a: 255, ..background });
    }
    let transformed = Instant::now();

    let options =
        encode::EncodeOptions { quality: spec.quality, progressive: spec.progressive, lossless: spec.lossless };
    let bytes = encode::encode(&image, format, options)?;
    let encoded = Instant::now();
    Ok(Rendered {
        bytes,
        format,
        width: image.width(),
        height: image.height(),
        shrink_on_load: shrink,
        timings: StageTimings {
            decode: decoded - started,
            transform: transformed - decoded,
            encode: encoded - transformed,
        },
    })
}
