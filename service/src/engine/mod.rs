//! The image engine: bytes and a [`Spec`] in, bytes out.
//!
//! Architecture invariant: the engine does no I/O, knows no HTTP and is synchronous. Callers
//! run it on a rayon pool; it may use rayon inside one large image too.
//!
//! A render goes: [`decode::probe`] (format, size, metadata; the pixel and scan limits are
//! checked here) -> [`plan::plan`] (every size and buffer, checked against the render budget
//! and the output format's limits, before any pixel buffer exists) -> decode, shrinking on load -> EXIF
//! orientation -> crop and resize in one resampling pass -> rotate, flip -> trim (cover) or pad
//! (contain) -> blur, sharpen, gray -> convert to sRGB -> watermark -> flatten alpha -> encode.

pub mod avif;
pub mod color;
pub mod decode;
pub mod encode;
pub mod error;
pub mod format;
pub mod geometry;
#[cfg(feature = "heic")]
pub mod heic;
pub mod heif;
pub mod jpeg;
pub mod jxl;
pub mod metadata;
pub mod ops;
pub mod placeholder;
pub mod plan;
pub mod quantize;
pub mod spec;
pub mod watermark;

use std::time::{Duration, Instant};

use image::metadata::Orientation;

pub use self::error::EngineError;
pub use self::format::InputFormat;
pub use self::spec::{OutputFormat, Presets, Spec, SpecError};
pub use self::watermark::Watermarks;

use self::geometry::Finish;
use self::ops::Region;
use self::spec::Color;

/// Limits on what a render may cost. Every one has a safe default and is configurable.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source image, in pixels, checked from the header before decoding.
    pub max_input_pixels: u64,
    /// Largest output image, in pixels.
    pub max_output_pixels: u64,
    /// The most bytes one render may hold at once, as its [`plan::RenderPlan`] counts them
    /// (decoders' and encoders' working memory included).
    pub max_render_bytes: u64,
    /// The most scans a JPEG may have: each progressive scan is a pass over the image, so a
    /// small file of many scans would otherwise cost unbounded time.
    pub max_jpeg_scans: u32,
    /// The most frames an animation may have, counted from its blocks before decoding.
    pub max_animation_frames: u32,
    /// The most pixels an animated render may decode: frames times the canvas. A still of an
    /// animation decodes only the frames up to the one it shows.
    pub max_animation_pixels: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_input_pixels: 50_000_000,
            max_output_pixels: 50_000_000,
            max_render_bytes: 256 << 20,
            max_jpeg_scans: 100,
            max_animation_frames: 1000,
            max_animation_pixels: 200_000_000,
        }
    }
}

/// What an upload needs to know about an image, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: InputFormat,
    /// Dimensions as displayed, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Frames of an animated GIF or WebP, 1 for a still.
    pub frames: u32,
}

/// What upload validation finds: the image's facts and its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub info: ImageInfo,
    pub placeholder: placeholder::Placeholder,
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

pub(crate) fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Reads format and displayed size, enforcing the input pixel limit.
pub fn inspect(input: &[u8], limits: &Limits) -> Result<ImageInfo, EngineError> {
    let probe = decode::probe(input, limits)?;
    let (width, height) = oriented_size(&probe);
    Ok(ImageInfo { format: probe.format, width, height, frames: probe.animation.map_or(1, |a| a.frames) })
}

/// Reads format and displayed size, and decodes the pixels to prove the file is whole, at the
/// smallest scale the decoder offers (a JPEG or WebP at 1/8 costs a fraction of a full decode).
/// A baseline JPEG's codes are all walked, so damage anywhere is found; a progressive one's AC
/// scans are skipped at 1/8, so its structure and DC data are proven here, and damage inside
/// an AC scan is reported by the first render that reads it. The placeholders are computed from
/// the same pixels ([`placeholder`]).
pub fn validate(input: &[u8], limits: &Limits) -> Result<Validated, EngineError> {
    let probe = decode::probe(input, limits)?;
    let shrink = if decode::can_shrink_on_load(&probe) { decode::SHRINK_FACTORS[0] } else { 1 };
    let bytes = plan::validate_bytes(&probe, shrink);
    if bytes > limits.max_render_bytes {
        return Err(EngineError::RenderTooLarge { bytes, stage: "decode", limit: limits.max_render_bytes });
    }
    let image = decode::decode(input, &probe, shrink, limits)?;
    let placeholder = placeholder::compute(&image, probe.metadata.orientation());
    let (width, height) = oriented_size(&probe);
    let info = ImageInfo { format: probe.format, width, height, frames: probe.animation.map_or(1, |a| a.frames) };
    Ok(Validated { info, placeholder })
}

/// The source's size as displayed, after EXIF orientation.
pub(crate) fn oriented_size(probe: &decode::Probe) -> (u32, u32) {
    if swaps_axes(probe.metadata.orientation()) { (probe.height, probe.width) } else { (probe.width, probe.height) }
}

/// Renders `input` as `spec` asks. `fmt=auto` must have been resolved by the caller (it needs
/// the client's `Accept`); if not, the source format is kept.
pub fn render(input: &[u8], spec: &Spec, limits: &Limits) -> Result<Rendered, EngineError> {
    render_with(input, spec, limits, &Watermarks::default())
}

/// [`render`], with the watermarks a spec may name (`wm=`).
pub fn render_with(
    input: &[u8],
    spec: &Spec,
    limits: &Limits,
    watermarks: &Watermarks,
) -> Result<Rendered, EngineError> {
    let started = Instant::now();
    let mut mark = Mark::new(spec, watermarks)?;
    let probe = decode::probe(input, limits)?;
    let plan = plan::plan(&probe, spec, limits)?;
    if plan.frames > 1 {
        return render_animation(input, &probe, &plan, spec, &mut mark, started);
    }
    let image = decode_still(input, &probe, &plan, limits)?;
    let decoded = Instant::now();
    let (image, plan) = match spec.trim {
        None => (transform(image, &probe, &plan, spec, &mut mark)?, plan),
        Some(_) => {
            let (oriented, plan) = trimmed(image, &probe, spec, limits)?;
            (transform_oriented(oriented, &probe, &plan, spec, &mut mark)?, plan)
        }
    };
    let transformed = Instant::now();

    let options =
        encode::EncodeOptions { quality: spec.quality, progressive: spec.progressive, lossless: spec.lossless };
    let bytes = encode::encode(&image, plan.format, options)?;
    let encoded = Instant::now();
    Ok(Rendered {
        bytes,
        format: plan.format,
        width: image.width(),
        height: image.height(),
        shrink_on_load: plan.shrink,
        timings: StageTimings {
            decode: decoded - started,
            transform: transformed - decoded,
            encode: encoded - transformed,
        },
    })
}

/// An animation that stays animated: each frame is decoded onto the canvas (its disposal and
/// blending resolved by the decoder), goes through the same steps as a still, and is encoded
/// with its delay, one frame at a time; the loop count is kept.
fn render_animation(
    input: &[u8],
    probe: &decode::Probe,
    plan: &plan::RenderPlan,
    spec: &Spec,
    mark: &mut Mark,
    started: Instant,
) -> Result<Rendered, EngineError> {
    mark.keep = true;
    let plays = probe.animation.map_or(1, |a| a.plays);
    let mut timings = StageTimings { decode: started.elapsed(), ..StageTimings::default() };
    let mut bytes = Vec::new();
    let mut size = plan.output;
    {
        let options =
            encode::EncodeOptions { quality: spec.quality, progressive: spec.progressive, lossless: spec.lossless };
        let mut encoder = encode::AnimationEncoder::new(&mut bytes, plan.format, plan.output, plays, options)?;
        let mut frames = decode::frames(input, probe)?;
        loop {
            let step = Instant::now();
            let Some((image, delay_ms)) = frames.next().transpose()? else { break };
            let decoded = Instant::now();
            let image = transform(image, probe, plan, spec, mark)?;
            let transformed = Instant::now();
            size = (image.width(), image.height());
            encoder.add(image, delay_ms)?;
            timings.decode += decoded - step;
            timings.transform += transformed - decoded;
            timings.encode += transformed.elapsed();
        }
        let finishing = Instant::now();
        encoder.finish()?;
        timings.encode += finishing.elapsed();
    }
    Ok(Rendered { bytes, format: plan.format, width: size.0, height: size.1, shrink_on_load: plan.shrink, timings })
}

/// The still a plan renders: its frame of an animation, else the image at the plan's shrink.
fn decode_still(
    input: &[u8],
    probe: &decode::Probe,
    plan: &plan::RenderPlan,
    limits: &Limits,
) -> Result<image::DynamicImage, EngineError> {
    if plan.frame > 0 {
        decode::frame(input, probe, plan.frame)
    } else {
        decode::decode_with(input, probe, plan.shrink, plan.chroma, limits)
    }
}

/// `trim`: the decoded still turned as displayed, and the plan of the rest with the borders of
/// one colour cropped away (as `crop` would; the whole image when it is all border). The plan
/// is made again for that crop, and checked against the budget and the limits, before any
/// later stage allocates: what the first plan sized was the untrimmed image.
fn trimmed(
    mut image: image::DynamicImage,
    probe: &decode::Probe,
    spec: &Spec,
    limits: &Limits,
) -> Result<(image::DynamicImage, plan::RenderPlan), EngineError> {
    image.apply_orientation(probe.metadata.orientation());
    let threshold = spec.trim.unwrap_or(spec::DEFAULT_TRIM_THRESHOLD);
    let crop = ops::trim_box(&image, spec.background, threshold);
    let plan = plan::plan(probe, &Spec { crop: Some(crop), ..spec.clone() }, limits)?;
    Ok((image, plan))
}

/// The plan a `trim` render follows, from the pixels: for tests that hold a render to its plan.
pub fn trimmed_plan(input: &[u8], spec: &Spec, limits: &Limits) -> Result<plan::RenderPlan, EngineError> {
    let probe = decode::probe(input, limits)?;
    let plan = plan::plan(&probe, spec, limits)?;
    if spec.trim.is_none() {
        return Ok(plan);
    }
    let image = decode_still(input, &probe, &plan, limits)?;
    trimmed(image, &probe, spec, limits).map(|(_, plan)| plan)
}

/// A render's watermark: the one its spec names, resampled for the output when it is needed;
/// an animation keeps it for the frames after the first.
struct Mark<'a> {
    source: Option<(&'a watermark::Watermark, &'a spec::WatermarkSpec)>,
    prepared: Option<watermark::Prepared>,
    keep: bool,
}

impl<'a> Mark<'a> {
    fn new(spec: &'a Spec, watermarks: &'a Watermarks) -> Result<Mark<'a>, EngineError> {
        let source = match &spec.watermark {
            Some(wm) => Some((watermarks.resolve(wm)?, wm)),
            None => None,
        };
        Ok(Mark { source, prepared: None, keep: false })
    }

    fn apply(&mut self, image: image::DynamicImage, dpr_percent: u16) -> Result<image::DynamicImage, EngineError> {
        let Some((watermark, wm)) = self.source else { return Ok(image) };
        let output = (image.width(), image.height());
        let prepared = match self.prepared.take() {
            Some(prepared) if prepared.fits(output) => prepared,
            _ => watermark::prepare(watermark, wm, output, dpr_percent)?,
        };
        let image = watermark::composite(image, &prepared);
        if self.keep {
            self.prepared = Some(prepared);
        }
        Ok(image)
    }
}

/// Every step between decode and encode, as the plan sized it: orientation, crop and resize,
/// rotate, flip, trim or pad, blur, sharpen, gray, colour conversion, watermark, flattening.
fn transform(
    mut image: image::DynamicImage,
    probe: &decode::Probe,
    plan: &plan::RenderPlan,
    spec: &Spec,
    mark: &mut Mark,
) -> Result<image::DynamicImage, EngineError> {
    image.apply_orientation(probe.metadata.orientation());
    transform_oriented(image, probe, plan, spec, mark)
}

/// [`transform`] of an image already turned as displayed.
fn transform_oriented(
    mut image: image::DynamicImage,
    probe: &decode::Probe,
    plan: &plan::RenderPlan,
    spec: &Spec,
    mark: &mut Mark,
) -> Result<image::DynamicImage, EngineError> {
    let (width, height) = oriented_size(probe);
    let crop = plan.crop;
    // The decoder rounds shrunk sizes up, so map the crop by the real ratio on each axis.
    let (sx, sy) = (f64::from(image.width()) / f64::from(width), f64::from(image.height()) / f64::from(height));
    // Rounding may put the far edge a hair past the image (14741 rows at 3686/14741 is
    // 3686.0000000000005): keep the region inside it.
    let (left, top) = (f64::from(crop.x) * sx, f64::from(crop.y) * sy);
    let region = Region {
        left,
        top,
        width: (f64::from(crop.width) * sx).min(f64::from(image.width()) - left),
        height: (f64::from(crop.height) * sy).min(f64::from(image.height()) - top),
    };
    image = ops::resize(&image, region, plan.geometry.resized)?;
    image = ops::rotate(image, spec.rotate);
    if let Some(flip) = spec.flip {
        image = ops::flip(image, flip);
    }
    let background = spec.background.unwrap_or(Color::WHITE);
    image = match plan.geometry.finish {
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
    image = mark.apply(image, spec.dpr_percent)?;
    let format = plan.format;
    let flatten =
        image.color().has_alpha() && (!format.supports_alpha() || spec.background.is_some_and(|bg| bg.a == 255));
    debug_assert_eq!(flatten, plan.flatten, "the plan foresaw the channels wrongly for {spec}");
    if flatten {
        image = ops::flatten(image, Color { a: 255, ..background });
    }
    Ok(image)
}
