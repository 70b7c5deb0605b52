//! Decoding, in two steps: [`probe`] reads the format, the stored dimensions and the metadata
//! without allocating pixels, so the pixel limit is enforced before any pixel buffer exists;
//! [`decode`] then produces pixels, shrunk on load by 1/2, 1/4 or 1/8 where the format allows.
//!
//! JPEG shrunk on load goes through Pixelmill's own decoder ([`crate::engine::jpeg`]) where it
//! handles the file and is the faster one (1/8, and 1/4 of baseline files); at 1/8 it reads
//! only the DC coefficients. Full-size JPEG, the other scales and what that decoder leaves out
//! go through libjpeg-turbo, whose DCT scaling also decodes straight to the smaller size.
//! WebP goes through libwebp, whose scaling decoder resamples row by row and never holds the
//! full-size image. PNG and GIF (first frame) go through the `image` crate at full size.

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageDecoder, RgbImage, RgbaImage};
use libwebp_sys as webp;
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use crate::engine::Limits;
use crate::engine::error::EngineError;
use crate::engine::format::{InputFormat, Sniffed, sniff};
pub use crate::engine::jpeg::Chroma;
use crate::engine::metadata::{self, Metadata, Segment};

/// What [`probe`] learnt: enough to plan the render.
#[derive(Debug, Clone)]
pub struct Probe {
    pub format: InputFormat,
    /// Stored dimensions, before EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub metadata: Metadata,
    /// How the decoder will lay the pixels out, and what it holds while it decodes.
    pub layout: Layout,
    /// Frames and plays of an animated GIF or WebP, read from its blocks; `None` for a still.
    pub animation: Option<Animation>,
    jpeg_colorspace: Option<Colorspace>,
}

/// An animation as its container describes it, read without decoding a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Animation {
    /// Frames in the file (at least 1).
    pub frames: u32,
    /// How many times it plays: 0 is forever. A GIF without a loop extension plays once; its
    /// NETSCAPE2.0 loop count `n` (0 forever) repeats it `n` times after the first; a WebP's
    /// ANIM loop count is the number of plays (0 forever).
    pub plays: u32,
}

/// What a format's headers say about the work and memory of decoding it, beyond its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Jpeg(JpegLayout),
    /// `lossless` is VP8L, which decodes into a whole-image ARGB buffer of its own.
    Webp {
        alpha: bool,
        lossless: bool,
        animated: bool,
    },
    /// Channels and bytes per sample of the decoded pixels (palettes are expanded).
    Png {
        channels: u8,
        bytes_per_sample: u8,
    },
    Gif,
    /// Channels and bytes per sample of the decoded pixels, and the channels the file stores
    /// (4 for CMYK, which is converted to RGB).
    Tiff {
        channels: u8,
        bytes_per_sample: u8,
        stored_channels: u8,
    },
    /// Channels of the decoded pixels, and whether the samples are coded in XYB (VarDCT).
    Jxl {
        channels: u8,
        xyb: bool,
    },
    /// Channels of the decoded pixels, bits of the coded samples, planes of full size the
    /// coded samples make, times two (6 for 4:4:4, 4 for 4:2:2, 3 for 4:2:0, 2 for gray), and
    /// whether there is an alpha plane to decode as well.
    Avif {
        channels: u8,
        bits: u8,
        planes_x2: u8,
        alpha: bool,
    },
    /// Channels of the decoded pixels (RGB, or RGBA with an alpha plane).
    Heic {
        channels: u8,
    },
}

/// The marker segments of a JPEG, read without entropy decoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JpegLayout {
    /// Progressive (SOF2, SOF6, SOF10, SOF14): libjpeg holds every DCT coefficient of the image.
    pub progressive: bool,
    /// Start-of-scan markers: each scan is one pass over (part of) the image.
    pub scans: u32,
    /// Each component's horizontal and vertical sampling factors.
    pub sampling: Vec<(u8, u8)>,
    /// The start-of-frame marker (0xC0 baseline, 0xC1 extended, 0xC2 progressive, ...).
    pub sof: u8,
    /// Bits per sample.
    pub precision: u8,
    /// The file's length: a bound on its entropy-coded data.
    pub bytes: u64,
}

impl JpegLayout {
    /// Bytes of the DCT coefficients of the whole image (64 two-byte values per 8x8 block of
    /// each component, in whole MCUs), which libjpeg keeps for a progressive file.
    pub fn coefficient_bytes(&self, width: u32, height: u32) -> u64 {
        let h_max = u64::from(self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1));
        let v_max = u64::from(self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1));
        let mcus_x = u64::from(width).div_ceil(8 * h_max);
        let mcus_y = u64::from(height).div_ceil(8 * v_max);
        let blocks: u64 = self.sampling.iter().map(|&(h, v)| mcus_x * u64::from(h) * mcus_y * u64::from(v)).sum();
        blocks * 128
    }
}

/// Counts the scans and reads the frame's sampling factors from the marker segments: one pass
/// over the bytes, no decoding.
pub fn jpeg_layout(bytes: &[u8]) -> JpegLayout {
    let mut layout = JpegLayout { bytes: bytes.len() as u64, ..JpegLayout::default() };
    for Segment { marker, body } in metadata::jpeg_segments(bytes) {
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                layout.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                layout.sof = marker;
                layout.precision = body.first().copied().unwrap_or(0);
                let components = usize::from(body.get(5).copied().unwrap_or(0));
                layout.sampling = (0..components)
                    .filter_map(|i| body.get(6 + 3 * i + 1))
                    .map(|&factors| ((factors >> 4).max(1), (factors & 0x0F).max(1)))
                    .collect();
            }
            0xDA => layout.scans += 1,
            _ => {}
        }
    }
    layout
}

/// Reads what a render must know before decoding, and refuses a source over `limits` (pixels,
/// JPEG scans) from its headers alone.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, EngineError> {
    if bytes.is_empty() {
        return Err(EngineError::Empty);
    }
    let format = match sniff(bytes) {
        Sniffed::Supported(format) => format,
        Sniffed::Refused(name) => return Err(EngineError::RefusedFormat(name)),
        Sniffed::Unknown => return Err(EngineError::UnknownFormat),
    };
    let probe = match format {
        InputFormat::Jpeg => probe_jpeg(bytes)?,
        InputFormat::Png => probe_png(bytes)?,
        InputFormat::Gif => probe_gif(bytes)?,
        InputFormat::Webp => probe_webp(bytes)?,
        InputFormat::Tiff => probe_tiff(bytes)?,
        InputFormat::Jxl => probe_jxl(bytes)?,
        InputFormat::Avif => probe_avif(bytes)?,
        InputFormat::Heic => probe_heic(bytes)?,
    };
    check_pixels(u64::from(probe.width), u64::from(probe.height), limits.max_input_pixels, format)?;
    if let Layout::Jpeg(jpeg) = &probe.layout
        && jpeg.scans > limits.max_jpeg_scans
    {
        return Err(EngineError::TooManyScans { scans: jpeg.scans, limit: limits.max_jpeg_scans });
    }
    if let Some(animation) = probe.animation
        && animation.frames > limits.max_animation_frames
    {
        return Err(EngineError::TooManyFrames { frames: animation.frames, limit: limits.max_animation_frames });
    }
    Ok(probe)
}

/// Walks a GIF's blocks without decompressing a frame: its frames and plays, or `None` if it
/// has one frame. A walk that meets the end of the data or a block it does not know stops
/// there: the decoder reports what is wrong when it gets there.
fn gif_animation(bytes: &[u8]) -> Option<Animation> {
    // After the header and logical screen descriptor, the global colour table if any.
    let table = |packed: u8| if packed & 0x80 != 0 { 3usize << ((packed & 7) + 1) } else { 0 };
    let mut pos = 13 + table(*bytes.get(10)?);
    let (mut frames, mut plays) = (0u32, 1u32);
    // Data sub-blocks: a length byte and that many bytes, to a zero length.
    let skip_sub_blocks = |mut pos: usize| loop {
        match bytes.get(pos) {
            Some(0) => return pos + 1,
            Some(&length) => pos += 1 + usize::from(length),
            None => return bytes.len(),
        }
    };
    loop {
        match bytes.get(pos) {
            Some(0x21) => {
                let label = bytes.get(pos + 1).copied();
                pos += 2;
                if label == Some(0xFF)
                    && bytes.get(pos..pos + 12) == Some(b"\x0bNETSCAPE2.0".as_slice())
                    && let Some(&[3, 1, low, high]) = bytes.get(pos + 12..pos + 16)
                {
                    let repeats = u32::from(u16::from_le_bytes([low, high]));
                    plays = if repeats == 0 { 0 } else { repeats + 1 };
                }
                pos = skip_sub_blocks(pos);
            }
            Some(0x2C) => {
                let packed = *bytes.get(pos + 9)?;
                // The image descriptor, its local colour table, the LZW code size, the data.
                pos = skip_sub_blocks(pos + 10 + table(packed) + 1);
                frames += 1;
            }
            _ => break,
        }
    }
    (frames > 1).then_some(Animation { frames, plays })
}

/// Walks an animated WebP's chunks: its ANMF frames and the ANIM chunk's loop count.
fn webp_animation(bytes: &[u8]) -> Animation {
    let (mut frames, mut plays) = (0u32, 0u32);
    let mut pos = 12;
    while let (Some(fourcc), Some(size)) = (bytes.get(pos..pos + 4), bytes.get(pos + 4..pos + 8)) {
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        match fourcc {
            b"ANMF" => frames += 1,
            b"ANIM" => {
                if let Some(&[low, high]) = bytes.get(pos + 12..pos + 14) {
                    plays = u32::from(u16::from_le_bytes([low, high]));
                }
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = pos.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    Animation { frames: frames.max(1), plays }
}

fn check_pixels(width: u64, height: u64, max_pixels: u64, format: InputFormat) -> Result<(), EngineError> {
    if width == 0 || height == 0 {
        return Err(EngineError::corrupt(format.name(), "zero width or height"));
    }
    let pixels = width * height;
    if pixels > max_pixels {
        return Err(EngineError::TooManyPixels { width, height, pixels, limit: max_pixels });
    }
    Ok(())
}

fn jpeg_error(error: turbojpeg::Error) -> EngineError {
    EngineError::corrupt("jpeg", error)
}

fn probe_jpeg(bytes: &[u8]) -> Result<Probe, EngineError> {
    let header = turbojpeg::read_header(bytes).map_err(jpeg_error)?;
    Ok(Probe {
        format: InputFormat::Jpeg,
        width: dimension(header.width, "jpeg")?,
        height: dimension(header.height, "jpeg")?,
        metadata: metadata::jpeg(bytes),
        layout: Layout::Jpeg(jpeg_layout(bytes)),
        animation: None,
        jpeg_colorspace: Some(header.colorspace),
    })
}

fn dimension(value: usize, format: &'static str) -> Result<u32, EngineError> {
    u32::try_from(value).map_err(|_| EngineError::corrupt(format, "dimension does not fit in 32 bits"))
}

fn probe_png(bytes: &[u8]) -> Result<Probe, EngineError> {
    let mut decoder =
        image::codecs::png::PngDecoder::new(Cursor::new(bytes)).map_err(|e| EngineError::corrupt("png", e))?;
    let (width, height) = decoder.dimensions();
    let orientation =
        decoder.exif_metadata().ok().flatten().and_then(|exif| image::metadata::Orientation::from_exif_chunk(&exif));
    let icc_profile = decoder.icc_profile().ok().flatten();
    let color = decoder.color_type();
    Ok(Probe {
        format: InputFormat::Png,
        width,
        height,
        metadata: Metadata { orientation, icc_profile, adobe: false },
        layout: Layout::Png {
            channels: color.channel_count(),
            bytes_per_sample: color.bytes_per_pixel() / color.channel_count(),
        },
        animation: None,
        jpeg_colorspace: None,
    })
}

fn probe_gif(bytes: &[u8]) -> Result<Probe, EngineError> {
    // The logical screen is in bytes 6..10; the `gif` decoder would read further than needed.
    if bytes.len() < 13 {
        return Err(EngineError::corrupt("gif", "shorter than its header"));
    }
    let width = u32::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let height = u32::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    Ok(Probe {
        format: InputFormat::Gif,
        width,
        height,
        metadata: Metadata::default(),
        layout: Layout::Gif,
        animation: gif_animation(bytes),
        jpeg_colorspace: None,
    })
}

fn probe_tiff(bytes: &[u8]) -> Result<Probe, EngineError> {
    let corrupt = |e: image::ImageError| EngineError::corrupt("tiff", e);
    // The first image file directory: size, samples, orientation and profile; no pixel data.
    let mut decoder = image::codecs::tiff::TiffDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().ok().filter(|&o| o != image::metadata::Orientation::NoTransforms);
    let icc_profile = decoder.icc_profile().ok().flatten();
    let color = decoder.color_type();
    let stored = decoder.original_color_type();
    Ok(Probe {
        format: InputFormat::Tiff,
        width,
        height,
        metadata: Metadata { orientation, icc_profile, adobe: false },
        layout: Layout::Tiff {
            channels: color.channel_count(),
            bytes_per_sample: color.bytes_per_pixel() / color.channel_count(),
            stored_channels: stored.channel_count().max(color.channel_count()),
        },
        animation: None,
        jpeg_colorspace: None,
    })
}

fn probe_jxl(bytes: &[u8]) -> Result<Probe, EngineError> {
    let header = crate::engine::jxl::header(bytes)?;
    Ok(Probe {
        format: InputFormat::Jxl,
        // The decoder applies the orientation and converts to sRGB itself: the probe describes
        // the pixels it returns, which need neither step again.
        width: header.width,
        height: header.height,
        metadata: Metadata::default(),
        layout: Layout::Jxl { channels: header.channels, xyb: header.xyb },
        animation: None,
        jpeg_colorspace: None,
    })
}

fn probe_avif(bytes: &[u8]) -> Result<Probe, EngineError> {
    let still = crate::engine::avif::read(bytes)?;
    let (bits, planes_x2) = crate::engine::avif::samples(&still);
    let alpha = still.alpha.is_some();
    if alpha && still.alpha_size.is_some_and(|size| size != (still.width, still.height)) {
        return Err(EngineError::corrupt("avif", "the alpha plane's size is not the image's"));
    }
    Ok(Probe {
        format: InputFormat::Avif,
        width: still.width,
        height: still.height,
        metadata: Metadata { orientation: still.orientation, icc_profile: still.profile(), adobe: false },
        layout: Layout::Avif {
            channels: if planes_x2 == 2 { 1 } else { 3 } + u8::from(alpha),
            bits: bits as u8,
            planes_x2,
            alpha,
        },
        animation: None,
        jpeg_colorspace: None,
    })
}

#[cfg(feature = "heic")]
fn probe_heic(bytes: &[u8]) -> Result<Probe, EngineError> {
    let still = crate::engine::heic::read(bytes)?;
    // libheif applies the rotation and mirror itself: the probe describes its pixels.
    let swapped = still.orientation.is_some_and(crate::engine::swaps_axes);
    let (width, height) = if swapped { (still.height, still.width) } else { (still.width, still.height) };
    Ok(Probe {
        format: InputFormat::Heic,
        width,
        height,
        metadata: Metadata { orientation: None, icc_profile: still.profile(), adobe: false },
        layout: Layout::Heic { channels: 3 + u8::from(still.alpha.is_some()) },
        animation: None,
        jpeg_colorspace: None,
    })
}

#[cfg(not(feature = "heic"))]
fn probe_heic(_bytes: &[u8]) -> Result<Probe, EngineError> {
    Err(EngineError::RefusedFormat("heic"))
}

fn probe_webp(bytes: &[u8]) -> Result<Probe, EngineError> {
    let mut features = std::mem::MaybeUninit::<webp::WebPBitstreamFeatures>::zeroed();
    // SAFETY: libwebp reads at most `bytes.len()` bytes and fills `features`, which is a plain
    // C struct for which all-zero is a valid value.
    let status = unsafe { webp::WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr()) };
    if status != webp::VP8StatusCode::VP8_STATUS_OK {
        return Err(EngineError::corrupt("webp", format!("header not readable ({status:?})")));
    }
    // SAFETY: initialised above (zeroed, then written by libwebp).
    let features = unsafe { features.assume_init() };
    Ok(Probe {
        format: InputFormat::Webp,
        width: u32::try_from(features.width).unwrap_or(0),
        height: u32::try_from(features.height).unwrap_or(0),
        metadata: metadata::webp(bytes),
        // `format` is 2 for lossless, 1 for lossy and 0 for mixed (animations).
        layout: Layout::Webp {
            alpha: features.has_alpha != 0,
            lossless: features.format != 1,
            animated: features.has_animation != 0,
        },
        animation: if features.has_animation != 0 { Some(webp_animation(bytes)) } else { None },
        jpeg_colorspace: None,
    })
}

impl Probe {
    fn is_animated_webp(&self) -> bool {
        matches!(self.layout, Layout::Webp { animated: true, .. })
    }

    /// The channels of the pixels [`decode`] returns (1 gray, 2 gray and alpha, 3 RGB, 4 RGBA).
    pub fn decoded_channels(&self) -> u8 {
        match &self.layout {
            Layout::Jpeg(_) => match self.jpeg_colorspace {
                Some(Colorspace::Gray) => 1,
                _ => 3,
            },
            Layout::Webp { alpha, .. } => {
                if *alpha {
                    4
                } else {
                    3
                }
            }
            Layout::Png { channels, .. }
            | Layout::Tiff { channels, .. }
            | Layout::Jxl { channels, .. }
            | Layout::Avif { channels, .. }
            | Layout::Heic { channels } => *channels,
            Layout::Gif => 4,
        }
    }

    /// Whether Pixelmill's own JPEG decoder can decode this file at 1/`shrink`.
    pub fn own_jpeg_decoder_handles(&self, shrink: u32) -> bool {
        let ycc_or_gray = matches!(self.jpeg_colorspace, Some(Colorspace::YCbCr | Colorspace::Gray));
        matches!(&self.layout, Layout::Jpeg(layout) if crate::engine::jpeg::supports(layout, ycc_or_gray, shrink))
    }

    /// Whether [`decode`] uses Pixelmill's own JPEG decoder for this file at 1/`shrink`: where
    /// it handles the file and is the faster of the two (`jpeg::is_faster`).
    pub fn own_jpeg_decoder(&self, shrink: u32) -> bool {
        self.own_jpeg_decoder_handles(shrink)
            && matches!(&self.layout, Layout::Jpeg(layout) if crate::engine::jpeg::is_faster(layout, shrink))
    }

    /// Whether decoding at 1/`shrink` with [`Chroma::Half`] decodes less chroma than with
    /// [`Chroma::Full`]: the own JPEG decoder reads the file, and its layout allows it.
    pub fn halves_chroma(&self, shrink: u32) -> bool {
        // The own decoder reads only YCbCr or gray, and three components are not gray.
        self.own_jpeg_decoder(shrink)
            && matches!(&self.layout, Layout::Jpeg(layout) if crate::engine::jpeg::halves_chroma(layout, shrink))
    }

    /// Whether libjpeg decodes to CMYK, which is then converted to RGB.
    pub fn is_cmyk(&self) -> bool {
        matches!(self.jpeg_colorspace, Some(Colorspace::CMYK | Colorspace::YCCK))
    }
}

/// The shrink factors decoders can apply while decoding, largest first.
pub const SHRINK_FACTORS: [u32; 4] = [8, 4, 2, 1];

/// Whether [`decode`] can shrink this image on load.
pub fn can_shrink_on_load(probe: &Probe) -> bool {
    match probe.format {
        InputFormat::Jpeg => true,
        InputFormat::Webp => !probe.is_animated_webp(),
        InputFormat::Png
        | InputFormat::Gif
        | InputFormat::Tiff
        | InputFormat::Jxl
        | InputFormat::Avif
        | InputFormat::Heic => false,
    }
}

/// The size a dimension has after shrinking by `shrink` on load (rounded up, as libjpeg does).
pub fn shrunk(dimension: u32, shrink: u32) -> u32 {
    dimension.div_ceil(shrink)
}

/// Decodes pixels at 1/`shrink` of the stored size (`shrink` is one of [`SHRINK_FACTORS`], and 1
/// unless [`can_shrink_on_load`]). The result is in stored orientation.
pub fn decode(bytes: &[u8], probe: &Probe, shrink: u32, limits: &Limits) -> Result<DynamicImage, EngineError> {
    decode_with(bytes, probe, shrink, Chroma::Full, limits)
}

/// [`decode`], with chroma at half the luma's resolution where the own JPEG decoder reads the
/// file and `chroma` asks for it (see [`Probe::halves_chroma`]); elsewhere the same as [`decode`].
pub fn decode_with(
    bytes: &[u8],
    probe: &Probe,
    shrink: u32,
    chroma: Chroma,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    match probe.format {
        InputFormat::Jpeg if probe.own_jpeg_decoder(shrink) => {
            crate::engine::jpeg::decode_with(bytes, shrink, chroma, limits.max_jpeg_scans)
        }
        InputFormat::Jpeg => decode_jpeg(bytes, probe, shrink, limits.max_jpeg_scans),
        InputFormat::Webp if !probe.is_animated_webp() => decode_webp(bytes, probe, shrink),
        InputFormat::Jxl => crate::engine::jxl::decode(bytes, limits.max_render_bytes),
        InputFormat::Avif => decode_avif(bytes, probe, limits),
        #[cfg(feature = "heic")]
        InputFormat::Heic => crate::engine::heic::decode(bytes, probe.width, probe.height),
        #[cfg(not(feature = "heic"))]
        InputFormat::Heic => Err(EngineError::RefusedFormat("heic")),
        InputFormat::Png | InputFormat::Gif | InputFormat::Webp | InputFormat::Tiff => {
            decode_with_image_crate(bytes, probe)
        }
    }
}

/// The frames of an animated GIF or WebP, decoded one at a time, each composed on the whole
/// canvas (disposal and blending resolved), with its delay in milliseconds. The pixels have the
/// channels [`Probe::decoded_channels`] says.
pub fn frames<'a>(
    bytes: &'a [u8],
    probe: &Probe,
) -> Result<impl Iterator<Item = Result<(DynamicImage, u32), EngineError>> + 'a, EngineError> {
    use image::AnimationDecoder;
    let format = probe.format;
    let corrupt = move |e: image::ImageError| EngineError::corrupt(format.name(), e);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(probe.width);
    limits.max_image_height = Some(probe.height);
    let cursor = Cursor::new(bytes);
    let frames = match format {
        InputFormat::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(cursor).map_err(corrupt)?;
            decoder.set_limits(limits).map_err(corrupt)?;
            decoder.into_frames()
        }
        InputFormat::Webp => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(cursor).map_err(corrupt)?;
            decoder.set_limits(limits).map_err(corrupt)?;
            decoder.into_frames()
        }
        InputFormat::Jpeg
        | InputFormat::Png
        | InputFormat::Tiff
        | InputFormat::Jxl
        | InputFormat::Avif
        | InputFormat::Heic => {
            return Err(EngineError::Internal(format!("{} has no frames to iterate", format.name())));
        }
    };
    let rgb = probe.decoded_channels() == 3;
    Ok(frames.map(move |frame| {
        let frame = frame.map_err(corrupt)?;
        let (numerator, denominator) = frame.delay().numer_denom_ms();
        let delay = numerator.checked_div(denominator).unwrap_or(0);
        let rgba = DynamicImage::ImageRgba8(frame.into_buffer());
        Ok((if rgb { DynamicImage::ImageRgb8(rgba.into_rgb8()) } else { rgba }, delay))
    }))
}

/// Frame `index` of an animated GIF or WebP, as [`frames`] composes it.
pub fn frame(bytes: &[u8], probe: &Probe, index: u32) -> Result<DynamicImage, EngineError> {
    match frames(bytes, probe)?.nth(index as usize) {
        Some(frame) => frame.map(|(image, _)| image),
        None => Err(EngineError::corrupt(probe.format.name(), format!("frame {index} is missing"))),
    }
}

fn decode_avif(bytes: &[u8], probe: &Probe, limits: &Limits) -> Result<DynamicImage, EngineError> {
    let still = crate::engine::avif::read(bytes)?;
    let image = crate::engine::avif::decode(&still, limits.max_input_pixels)?;
    if image.color().channel_count() != probe.decoded_channels() {
        return Err(EngineError::corrupt("avif", "the AV1 data's channels are not the ones its header names"));
    }
    Ok(image)
}

fn decode_jpeg(bytes: &[u8], probe: &Probe, shrink: u32, scan_limit: u32) -> Result<DynamicImage, EngineError> {
    let mut decompressor = Decompressor::new().map_err(|e| EngineError::Internal(e.to_string()))?;
    let factor = ScalingFactor::new(1, shrink as usize);
    decompressor.set_scaling_factor(factor).map_err(jpeg_error)?;
    // `probe` counted the scans already; this guards the decoder itself all the same.
    decompressor.set_scan_limit(scan_limit).map_err(jpeg_error)?;
    let width = factor.scale(probe.width as usize);
    let height = factor.scale(probe.height as usize);
    let colorspace = probe.jpeg_colorspace.unwrap_or(Colorspace::YCbCr);
    let format = match colorspace {
        Colorspace::Gray => PixelFormat::GRAY,
        Colorspace::CMYK | Colorspace::YCCK => PixelFormat::CMYK,
        Colorspace::RGB | Colorspace::YCbCr => PixelFormat::RGB,
    };
    let pitch = width * format.size();
    let mut pixels = vec![0u8; pitch * height];
    let image = turbojpeg::Image { pixels: &mut pixels[..], width, pitch, height, format };
    decompressor.decompress(bytes, image).map_err(jpeg_error)?;
    let (w, h) = (width as u32, height as u32);
    let internal = || EngineError::Internal("decoded buffer has the wrong size".to_owned());
    Ok(match format {
        PixelFormat::GRAY => DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).ok_or_else(internal)?),
        PixelFormat::CMYK => {
            let rgb =
                crate::engine::color::cmyk_to_rgb(&pixels, probe.metadata.icc_profile.as_deref(), probe.metadata.adobe);
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb).ok_or_else(internal)?)
        }
        _ => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(internal)?),
    })
}

fn decode_webp(bytes: &[u8], probe: &Probe, shrink: u32) -> Result<DynamicImage, EngineError> {
    let mut features = std::mem::MaybeUninit::<webp::WebPBitstreamFeatures>::zeroed();
    // SAFETY: as in `probe_webp`.
    let status = unsafe { webp::WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr()) };
    if status != webp::VP8StatusCode::VP8_STATUS_OK {
        return Err(EngineError::corrupt("webp", format!("header not readable ({status:?})")));
    }
    // SAFETY: initialised above.
    let has_alpha = unsafe { features.assume_init() }.has_alpha != 0;
    let (width, height) = (shrunk(probe.width, shrink), shrunk(probe.height, shrink));
    let channels: usize = if has_alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let mut pixels = vec![0u8; stride * height as usize];

    let mut config =
        webp::WebPDecoderConfig::new().map_err(|()| EngineError::Internal("libwebp version mismatch".to_owned()))?;
    if shrink > 1 {
        config.options.use_scaling = 1;
        config.options.scaled_width = width as i32;
        config.options.scaled_height = height as i32;
    }
    config.output.colorspace = if has_alpha { webp::WEBP_CSP_MODE::MODE_RGBA } else { webp::WEBP_CSP_MODE::MODE_RGB };
    config.output.is_external_memory = 1;
    config.output.width = width as i32;
    config.output.height = height as i32;
    config.output.u.RGBA =
        webp::WebPRGBABuffer { rgba: pixels.as_mut_ptr(), stride: stride as i32, size: pixels.len() };
    // SAFETY: the output buffer is ours, `stride * height` bytes, and outlives the call; libwebp
    // writes within it and allocates nothing we must free when memory is external.
    let status = unsafe { webp::WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    // SAFETY: frees only libwebp's private memory; ours stays.
    unsafe { webp::WebPFreeDecBuffer(&mut config.output) };
    if status != webp::VP8StatusCode::VP8_STATUS_OK {
        return Err(EngineError::corrupt("webp", format!("decoding failed ({status:?})")));
    }
    let internal = || EngineError::Internal("decoded buffer has the wrong size".to_owned());
    Ok(if has_alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, pixels).ok_or_else(internal)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(internal)?)
    })
}

/// PNG, GIF (first frame) and animated WebP (first frame), at full size, as 8-bit samples.
fn decode_with_image_crate(bytes: &[u8], probe: &Probe) -> Result<DynamicImage, EngineError> {
    let format = probe.format;
    let corrupt = |e: image::ImageError| EngineError::corrupt(format.name(), e);
    let mut limits = image::Limits::default();
    // Room for the pixels at 16 bits a sample plus the decoder's own buffers; the pixel count was
    // checked by `probe`, so this only catches a decoder asking for far more than the header said.
    limits.max_alloc = Some(u64::from(probe.width) * u64::from(probe.height) * 8 * 2 + (64 << 20));
    limits.max_image_width = Some(probe.width);
    limits.max_image_height = Some(probe.height);
    let cursor = Cursor::new(bytes);
    let mut image = match format {
        InputFormat::Png => {
            let mut decoder = image::codecs::png::PngDecoder::new(cursor).map_err(corrupt)?;
            decoder.set_limits(limits).map_err(corrupt)?;
            DynamicImage::from_decoder(decoder).map_err(corrupt)?
        }
        InputFormat::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(cursor).map_err(corrupt)?;
            decoder.set_limits(limits).map_err(corrupt)?;
            DynamicImage::from_decoder(decoder).map_err(corrupt)?
        }
        InputFormat::Tiff => {
            let mut decoder = image::codecs::tiff::TiffDecoder::new(cursor).map_err(corrupt)?;
            decoder.set_limits(limits).map_err(corrupt)?;
            DynamicImage::from_decoder(decoder).map_err(corrupt)?
        }
        InputFormat::Webp | InputFormat::Jpeg | InputFormat::Jxl | InputFormat::Avif | InputFormat::Heic => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(cursor).map_err(corrupt)?;
            decoder.set_limits(limits).map_err(corrupt)?;
            DynamicImage::from_decoder(decoder).map_err(corrupt)?
        }
    };
    image = match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(image.into_luma8()),
        DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLumaA8(image.into_luma_alpha8()),
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgb32F(_) => DynamicImage::ImageRgb8(image.into_rgb8()),
        _ => DynamicImage::ImageRgba8(image.into_rgba8()),
    };
    Ok(image)
}
