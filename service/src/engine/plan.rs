//! The render plan: from what [`decode::probe`] read and a [`Spec`] to every size a render will
//! produce and every buffer it will hold, before any pixel buffer exists.
//!
//! Vocabulary: a *stage* is one step of the pipeline (decode, orient, resize, ... encode); its
//! *live bytes* are what is allocated while it runs: its input, its output and its working
//! memory, the decoders' and encoders' own included. Each step frees its input once its output
//! exists, so a render's peak is the largest stage, and that is what [`Limits::max_render_bytes`]
//! bounds. The sizes are upper bounds: a test renders the joint space of sources and specs under
//! a counting allocator and checks that no render allocates more than its plan says.
//!
//! The plan also holds the decisions that follow from sizes: the shrink-on-load factor, the
//! output format and whether it can hold the output's dimensions, and whether alpha is flattened.

use crate::engine::decode::{self, Layout, Probe};
use crate::engine::encode;
use crate::engine::error::EngineError;
use crate::engine::geometry::{self, Finish};
use crate::engine::ops;
use crate::engine::quantize;
use crate::engine::spec::{Color, CropRect, Gravity, OutputFormat, Rotation, Spec, SpecError};
use crate::engine::watermark;
use crate::engine::{Limits, oriented_size, swaps_axes};

/// Room for what does not grow with the image: codec state, tables, row buffers, and the
/// resizer's scratch that a worker keeps between renders (`ops::RETAINED_RESIZER_BYTES`).
const FIXED_BYTES: u64 = (2 << 20) + ops::RETAINED_RESIZER_BYTES as u64;

/// Everything a render will do, sized. Made by [`plan`]; [`crate::engine::render`] follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderPlan {
    /// The part of the (oriented) source that is used.
    pub crop: CropRect,
    pub geometry: geometry::Plan,
    /// The factor the decoder shrinks by on load (one of [`decode::SHRINK_FACTORS`]).
    pub shrink: u32,
    /// Size of the decoded pixels, in stored orientation.
    pub decoded: (u32, u32),
    /// The resolution chroma is decoded at: half the luma's where the output keeps its chroma
    /// at half its own (JPEG below quality 90, lossy WebP). The shrink leaves the decoded luma
    /// at least the resized size, so half of it is at least the output's chroma.
    pub chroma: decode::Chroma,
    pub format: OutputFormat,
    pub output: (u32, u32),
    /// Whether alpha is composited onto the background before encoding.
    pub flatten: bool,
    /// The bytes held at the largest stage, and that stage's name.
    pub peak_bytes: u64,
    pub peak_stage: &'static str,
    /// Source pixels times scans: the work of the entropy decoder, which no shrink reduces.
    pub decode_work: u64,
    /// Frames the output has: more than 1 for an animation that stays animated.
    pub frames: u32,
    /// The frame of an animated source that a still shows (0 for other sources).
    pub frame: u32,
}

/// The size of the output for a source of `width` x `height` (displayed, after EXIF
/// orientation), before any format or budget is considered; `None` if the crop does not fit.
pub fn output_size(width: u32, height: u32, spec: &Spec) -> Option<(u32, u32)> {
    let crop = crop_of(width, height, spec).ok()?;
    Some(geometry::plan((crop.width, crop.height), spec).output_size(spec.rotate))
}

fn crop_of(width: u32, height: u32, spec: &Spec) -> Result<CropRect, EngineError> {
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
    Ok(crop)
}

/// Plans the render of the probed source as `spec` asks, and refuses it when its output is over
/// the pixel limit, its format cannot hold the output's dimensions, or it would hold more than
/// the render budget. `fmt=auto` must have been resolved; if not, the source format is kept.
pub fn plan(probe: &Probe, spec: &Spec, limits: &Limits) -> Result<RenderPlan, EngineError> {
    let (width, height) = oriented_size(probe);
    let crop = crop_of(width, height, spec)?;
    let geometry = geometry::plan((crop.width, crop.height), spec);
    let output = geometry.output_size(spec.rotate);
    let out_pixels = pixels(output);
    if out_pixels > limits.max_output_pixels {
        return Err(EngineError::OutputTooLarge {
            width: output.0.into(),
            height: output.1.into(),
            pixels: out_pixels,
            limit: limits.max_output_pixels,
        });
    }
    let format = spec.output_format(probe.format.as_output());
    let limit = format.max_dimension();
    if output.0 > limit || output.1 > limit {
        return Err(EngineError::OutputDimensionTooLarge {
            format: format.name(),
            width: output.0,
            height: output.1,
            limit,
        });
    }

    // Shrink on load by the largest factor that still leaves at least the resized size, so the
    // final resample is always a reduction (or a copy) and never an enlargement. `trim` finds
    // borders to the pixel, so it decodes at full size.
    let shrink = if decode::can_shrink_on_load(probe) && spec.trim.is_none() {
        let (rw, rh) = geometry.resized;
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
    let decoded = (decode::shrunk(probe.width, shrink), decode::shrunk(probe.height, shrink));
    let background = spec.background.unwrap_or(Color::WHITE);

    // An animation stays animated in an animated format unless a still is asked for; a still
    // decodes the frames up to the one it shows, which later frames may be drawn over.
    let source_frames = probe.animation.map_or(1, |a| a.frames);
    let frame = spec.frame.unwrap_or(0);
    if frame >= source_frames {
        return Err(EngineError::FrameOutOfRange { frame, frames: source_frames });
    }
    let animate = probe.animation.is_some() && spec.animated && spec.frame.is_none() && format.is_animated();
    if animate && spec.trim.is_some() {
        return Err(EngineError::Spec(SpecError::new(
            "trim",
            "works on stills: add anim=0 (or frame=N) to trim a frame of an animation",
        )));
    }
    let frames = if animate { source_frames } else { 1 };
    let decoded_frames = if animate { source_frames } else { frame + 1 };
    if probe.animation.is_some() {
        let pixels = u64::from(decoded_frames) * pixels((probe.width, probe.height));
        if pixels > limits.max_animation_pixels {
            return Err(EngineError::AnimationTooLarge {
                frames: decoded_frames,
                width: probe.width,
                height: probe.height,
                pixels,
                limit: limits.max_animation_pixels,
            });
        }
    }

    let mut costs = Costs::default();
    let mut channels = u64::from(probe.decoded_channels());
    costs.stage("decode", decode_bytes(probe, shrink, decoded, channels));
    if animate {
        // Held while each frame goes through the stages below: the decoder's canvases (the
        // frame it composes on, and the one to restore for disposal) and the encoder's output
        // of every frame so far.
        let canvas = pixels((probe.width, probe.height)) * 4;
        let output_frame = match format {
            OutputFormat::Webp => encode::webp_frame_bound(output.0, output.1, spec.lossless),
            _ => encode::gif_frame_bound(output.0, output.1),
        };
        costs.base = 2 * canvas + 3 * u64::from(frames) * output_frame;
    }
    // A watermark resampled for the output: an animation keeps it for every frame.
    let mark = spec.watermark.as_ref().map(|wm| {
        let placed = watermark::placement(output, wm, spec.dpr_percent);
        (watermark::prepare_bytes((wm.info.width, wm.info.height), placed), pixels((placed.width, placed.height)) * 8)
    });
    if let (true, Some((_, kept))) = (animate, mark) {
        costs.base += kept;
    }

    let mut size = pixels(decoded);
    if swaps_axes(probe.metadata.orientation()) {
        costs.stage("orient", 2 * size * channels);
    }

    // The region of the decoded image that is resampled, and the resampler's working memory:
    // its first pass (the output's width by the region's height, or the other way), a premultiplied copy of
    // the region when there is alpha, and the filter weights of both passes (a few taps per
    // pixel of the larger of source and output, as the filter widens when it reduces).
    let region = (
        (u64::from(crop.width) * u64::from(decoded.0)).div_ceil(u64::from(probe.width.max(1))) + 1,
        (u64::from(crop.height) * u64::from(decoded.1)).div_ceil(u64::from(probe.height.max(1))) + 1,
    );
    let (rw, rh) = (u64::from(geometry.resized.0), u64::from(geometry.resized.1));
    let alpha = channels.is_multiple_of(2);
    // Plus a few small allocations of the resizer's own (74 bytes over a plan that had none
    // was found on an enlargement of 1000x1000 to 1024x1024).
    let resampler = (rw * region.1).max(region.0 * rh) * channels
        + if alpha { region.0 * region.1 * channels } else { 0 }
        + (region.0.max(rw) + region.1.max(rh)) * 96
        + (16 << 10);
    costs.stage("resize", size * channels + rw * rh * channels + resampler);
    size = rw * rh;

    if spec.rotate != Rotation::R0 {
        costs.stage("rotate", 2 * size * channels);
    }
    if spec.flip.is_some() {
        costs.stage("flip", 2 * size * channels);
    }
    match geometry.finish {
        Finish::None => {}
        Finish::Trim { width, height } => {
            let smart = if spec.gravity == Gravity::Smart { size + (rw + rh) * 8 } else { 0 };
            let trimmed = pixels((width, height));
            costs.stage("trim", size * channels + trimmed * channels + smart);
            size = trimmed;
        }
        Finish::Pad { width, height } => {
            let padded_channels = if alpha || background.a < 255 { 4 } else { 3 };
            let padded = pixels((width, height));
            costs.stage("pad", size * channels + size * padded_channels + padded * padded_channels);
            size = padded;
            channels = padded_channels;
        }
    }
    // A box blur keeps two buffers the size of the image; sharpening adds a copy to that.
    if spec.blur.is_some() {
        costs.stage("blur", 3 * size * channels);
    }
    if spec.sharpen.is_some() {
        costs.stage("sharpen", 3 * size * channels);
    }
    if spec.gray {
        let gray_channels = if channels.is_multiple_of(2) { 2 } else { 1 };
        costs.stage("gray", size * channels + size * gray_channels);
        channels = gray_channels;
    }
    if probe.metadata.icc_profile.is_some() && channels >= 3 {
        costs.stage("color", 2 * size * channels);
    }
    if let Some((prepare, _)) = mark {
        // Resampled (its working memory freed), then composited; gray becomes colour first.
        let coloured = if channels < 3 { channels + 2 } else { channels };
        let widened = if coloured != channels { size * coloured } else { 0 };
        costs.stage("watermark", size * channels + widened + prepare);
        channels = coloured;
    }
    let flatten =
        channels.is_multiple_of(2) && (!format.supports_alpha() || spec.background.is_some_and(|bg| bg.a == 255));
    if flatten {
        let flat_channels =
            if channels == 2 && background.r == background.g && background.g == background.b { 1 } else { 3 };
        // Gray and alpha is widened to RGBA first unless it flattens to gray.
        let widened = if channels == 2 && flat_channels == 3 { 4 } else { 0 };
        costs.stage("flatten", size * channels + size * widened + size * flat_channels);
        channels = flat_channels;
    }
    let encode = if animate && format == OutputFormat::Webp {
        // A frame as RGBA and as libwebp's ARGB picture, the animation encoder's canvases (the
        // previous frame, the current one and its disposed copy) and its candidate encodings
        // of the changed rectangle, each with the working memory of a still.
        let working = if spec.lossless { size * 16 } else { size * 4 };
        size * 4 * 8 + 2 * working
    } else if animate {
        // A frame as RGBA, the quantiser's copy, its palette indices (the output is held above).
        size * 4 * 2 + size
    } else {
        encode_bytes(format, output, channels, spec)
    };
    costs.stage("encode", size * channels + encode);

    let output_subsamples_chroma = match format {
        OutputFormat::Jpeg => encode::jpeg_subsampled(spec.quality),
        OutputFormat::Webp => !spec.lossless,
        OutputFormat::Png | OutputFormat::Avif | OutputFormat::Gif => false,
    };
    let chroma = if output_subsamples_chroma && !animate && probe.halves_chroma(shrink) {
        decode::Chroma::Half
    } else {
        decode::Chroma::Full
    };

    let decode_work = pixels((probe.width, probe.height))
        * match &probe.layout {
            Layout::Jpeg(jpeg) => u64::from(jpeg.scans.max(1)),
            _ => 1,
        };
    let plan = RenderPlan {
        crop,
        geometry,
        shrink,
        decoded,
        chroma,
        format,
        output,
        flatten,
        peak_bytes: costs.peak + FIXED_BYTES,
        peak_stage: costs.peak_stage,
        decode_work,
        frames,
        frame,
    };
    if plan.peak_bytes > limits.max_render_bytes {
        return Err(EngineError::RenderTooLarge {
            bytes: plan.peak_bytes,
            stage: plan.peak_stage,
            limit: limits.max_render_bytes,
        });
    }
    Ok(plan)
}

/// The bytes [`crate::engine::validate`] holds: a decode at the smallest scale, and the
/// placeholders' working memory beside it.
pub fn validate_bytes(probe: &Probe, shrink: u32) -> u64 {
    let decoded = (decode::shrunk(probe.width, shrink), decode::shrunk(probe.height, shrink));
    decode_bytes(probe, shrink, decoded, u64::from(probe.decoded_channels()))
        + FIXED_BYTES
        + crate::engine::placeholder::WORKING_BYTES
}

fn pixels((width, height): (u32, u32)) -> u64 {
    u64::from(width) * u64::from(height)
}

/// The largest stage seen so far.
#[derive(Debug, Default)]
struct Costs {
    peak: u64,
    peak_stage: &'static str,
    /// Held through every stage from the one that sets it on (an animation's state).
    base: u64,
}

impl Costs {
    fn stage(&mut self, name: &'static str, bytes: u64) {
        let bytes = bytes + self.base;
        if bytes > self.peak || self.peak_stage.is_empty() {
            self.peak = self.peak.max(bytes);
            self.peak_stage = name;
        }
    }
}

/// The decoded pixels, and what the decoder holds besides them.
fn decode_bytes(probe: &Probe, shrink: u32, decoded: (u32, u32), channels: u64) -> u64 {
    let out = pixels(decoded) * channels;
    let full = pixels((probe.width, probe.height));
    match &probe.layout {
        Layout::Jpeg(jpeg) if probe.own_jpeg_decoder(shrink) => {
            out + crate::engine::jpeg::working_bytes(jpeg, probe.width, probe.height, shrink)
        }
        Layout::Jpeg(jpeg) => {
            // A progressive file's coefficients are held whole, whatever the scale; a baseline
            // one is decoded a row of blocks at a time. CMYK comes out at four bytes a pixel and
            // is converted to RGB, through a copy of the inks when a profile is used.
            let coefficients = if jpeg.progressive { jpeg.coefficient_bytes(probe.width, probe.height) } else { 0 };
            let rows = u64::from(probe.width) * 16 * 8;
            let cmyk = if probe.is_cmyk() { pixels(decoded) * (4 + 4) } else { 0 };
            out + coefficients + rows + cmyk
        }
        Layout::Webp { alpha, lossless, animated } => {
            if *animated {
                // The `image` crate composes frames on a canvas: the canvas, the frame and the output.
                3 * full * 4
            } else {
                // VP8L decodes into a whole-image ARGB buffer; VP8 decodes the alpha plane whole.
                let own = if *lossless {
                    full * 4
                } else if *alpha {
                    full
                } else {
                    0
                };
                out + own + u64::from(probe.width) * 64
            }
        }
        Layout::Png { channels: png_channels, bytes_per_sample } => {
            let raw = full * u64::from(*png_channels) * u64::from(*bytes_per_sample);
            // The `png` crate inflates into a buffer it unfilters rows from, which grows with
            // what one call of the inflater gives: for a well compressed image, up to every
            // filtered row at once (a 1000x1000 RGBA file held 8.0 MB for its 4 MB of pixels).
            let filtered = raw + u64::from(probe.height);
            // Sixteen-bit samples are narrowed to eight in a second buffer; rows are unfiltered
            // in two buffers of a row each.
            let narrowed = if *bytes_per_sample > 1 { full * u64::from(*png_channels) } else { 0 };
            raw + filtered + narrowed + 4 * (u64::from(probe.width) * 8 + 1)
        }
        Layout::Tiff { channels: out_channels, bytes_per_sample, stored_channels } => {
            // The `tiff` crate decodes every strip or tile into a buffer of the stored samples
            // (CMYK: four a pixel), through a buffer of one decompressed strip or tile (at most
            // the image, for a file of one strip) and the compressed one; `image` then copies
            // the samples out, converted. Sixteen-bit samples are narrowed in a further buffer.
            let stored = full * u64::from(*stored_channels) * u64::from(*bytes_per_sample);
            let out = full * u64::from(*out_channels) * u64::from(*bytes_per_sample);
            let narrowed = if *bytes_per_sample > 1 { full * u64::from(*out_channels) } else { 0 };
            3 * stored + out + narrowed
        }
        Layout::Jxl { channels: out_channels, xyb } => {
            // jxl-oxide keeps the file, renders into 32-bit planes and converts them, which
            // measured (1x1 to 1000x1000, gray to RGBA) at 24 to 29 bytes a pixel plus 3.3 MB of
            // tables for VarDCT (XYB) files, whose colour is three planes even when gray; 16 to
            // 29 bytes a pixel for modular (lossless) ones, by channel.
            let channels = u64::from(*out_channels);
            if *xyb {
                (4 << 20) + full * 8 * channels.max(3) + out
            } else {
                (64 << 10) + full * (14 + 5 * channels) + out
            }
        }
        Layout::Avif { channels: out_channels, bits, planes_x2, alpha } => {
            // rav1d's picture (its planes in rows with a border), the state of its two frame
            // contexts (up to 8 bytes a pixel, 1.5 KB a column and 2 KB a row, twice that for
            // samples over 8 bits: 19 MB for a 1x4845 10-bit image), the planes copied out as 16-bit samples and
            // the RGB (or gray) made of them; then, for an alpha plane, a second picture of one plane and its copy
            // beside that RGB, and last the RGB and alpha merged. Measured at 14.3 bytes a pixel
            // for 8-bit 4:2:0 and 33 for 10-bit 4:4:4 with alpha at 1000x1000; 25 and 62 for a
            // 20000x50 line.
            let (width, height) = (u64::from(probe.width), u64::from(probe.height));
            let sample = if *bits > 8 { 2 } else { 1 };
            let padded = (width + 128) * (height + 128);
            let state = sample * ((width + 64) * 1536 + (height + 64) * 2048 + full * 8) + (4 << 20);
            let planes_x2 = u64::from(*planes_x2);
            let colour_channels = u64::from(*out_channels) - u64::from(*alpha);
            let rgb = full * colour_channels;
            let colour = padded * planes_x2 * sample / 2 + state + full * planes_x2 + rgb;
            if *alpha {
                let alpha_plane = rgb + padded * sample + state + full * 3;
                colour.max(alpha_plane).max(rgb + full + out)
            } else {
                colour
            }
        }
        // libheif's own buffers (C allocations): the HEVC tiles' YCbCr planes, the image they
        // are composed into and its RGB(A) conversion, then the copy the engine keeps.
        Layout::Heic { channels } => full * (3 + 2 * u64::from(*channels)) + out + (16 << 20),
        // The canvas, a frame as large as it, and the frame's palette indices; an animation's
        // frames are composed on a canvas, with a copy kept for the disposal that restores it.
        Layout::Gif if probe.animation.is_some() => full * (4 * 3 + 1),
        Layout::Gif => full * (4 + 4 + 1),
    }
}

/// What an encoder holds besides its input: conversions, its own working memory and the output.
fn encode_bytes(format: OutputFormat, (width, height): (u32, u32), channels: u64, spec: &Spec) -> u64 {
    let size = pixels((width, height));
    let lossless = spec.lossless;
    // Compressed output is bounded by the raw pixels plus headers for every format here; a
    // buffer that grows by doubling may hold twice what it has written, and three times that
    // while it moves.
    let output = 3 * (size * channels.max(3) + (64 << 10));
    match format {
        OutputFormat::Jpeg => {
            // Optimised Huffman tables (and progressive scans) need every coefficient of the
            // image, two bytes each: 2 bytes a pixel for gray, 3 for colour at 4:2:0, 6 at
            // 4:4:4, over whole MCUs. The output buffer is libjpeg-turbo's worst-case size
            // (`tj3JPEGBufSize`), as many bytes a pixel plus 2048, allocated once.
            let converted = if channels == 1 || channels == 3 { 0 } else { size * 3 };
            let per_pixel = match channels {
                1 => 2,
                _ if encode::jpeg_subsampled(spec.quality) => 3,
                _ => 6,
            };
            let padded = u64::from(width).next_multiple_of(16) * u64::from(height).next_multiple_of(16);
            converted + 2 * (padded * per_pixel) + 2048
        }
        // Reserved whole up front (see `png_output_bound`), with the deflate state, the rows
        // being filtered and the chunk being filled.
        OutputFormat::Png => {
            encode::png_output_bound(width, height, channels)
                + 4 * (u64::from(width) * channels + 1)
                + (512 << 10)
                + encode::PNG_CHUNK as u64
        }
        OutputFormat::Webp => {
            let converted = if channels <= 2 { size * (channels + 2) } else { 0 };
            // Lossless works on ARGB with its own transforms and hash chains; lossy on YUV.
            let working = if lossless { size * 16 } else { size * 4 };
            converted + working + output
        }
        OutputFormat::Avif => {
            // A copy as RGB(A), the encoder's input frame in YUV, and rav1e's planes for the
            // reconstruction and its analysis.
            // rav1e works on frames padded to whole 64 px superblocks with a border around
            // them, which dominates for a thin image (12315x4 holds about 21 MB).
            let rgba = size * if channels.is_multiple_of(2) { 4 } else { 3 };
            let padded = (u64::from(width).next_multiple_of(64) + 256) * (u64::from(height).next_multiple_of(64) + 256);
            2 * rgba + (size * 24).max(padded * 8) + output + (16 << 20)
        }
        OutputFormat::Gif => {
            // RGBA, the copy of its opaque pixels a palette is learnt from, the palette
            // indices, the quantiser's caches and histogram, and LZW's output.
            size * 4 + size * 3 + size + quantize::WORKING_BYTES + output
        }
    }
}
