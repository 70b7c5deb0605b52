//! Encoding to each output format. Inputs are 8-bit Luma, LumaA, Rgb or Rgba; alpha has been
//! flattened already for formats without it. No metadata is written: the pixels are sRGB.
//!
//! Settings follow what sharp does by default, so that size and speed compare fairly: JPEG with
//! optimised Huffman tables and 4:2:0 chroma below quality 90; WebP at effort 4.

use image::DynamicImage;
use libwebp_sys as webp;
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use crate::engine::error::EngineError;
use crate::engine::jpeg;
use crate::engine::quantize::Quantizer;
use crate::engine::spec::OutputFormat;

/// Encoder settings taken from the spec.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub quality: u8,
    pub progressive: bool,
    pub lossless: bool,
}

/// AVIF encoder speed (1 slowest .. 10 fastest): at 7 a 1000 px image encodes in under a
/// second on one core (benches/RESULTS.md); at quality 80 speed 8 writes the same bytes.
pub const AVIF_SPEED: u8 = 7;

pub fn encode(image: &DynamicImage, format: OutputFormat, options: EncodeOptions) -> Result<Vec<u8>, EngineError> {
    match format {
        OutputFormat::Jpeg => encode_jpeg(image, options),
        OutputFormat::Png => encode_png(image),
        OutputFormat::Webp => encode_webp(image, options),
        OutputFormat::Avif => encode_avif(image, options),
        OutputFormat::Gif => encode_gif(image),
    }
}

fn internal(what: &str) -> impl Fn(String) -> EngineError + '_ {
    move |detail| EngineError::Internal(format!("{what} encoder: {detail}"))
}

fn encode_jpeg(image: &DynamicImage, options: EncodeOptions) -> Result<Vec<u8>, EngineError> {
    let (pixels, format, subsamp) = match image {
        DynamicImage::ImageLuma8(buf) => (buf.as_raw().as_slice(), PixelFormat::GRAY, Subsamp::Gray),
        DynamicImage::ImageRgb8(buf) => {
            let subsamp = if jpeg_subsampled(options.quality) { Subsamp::Sub2x2 } else { Subsamp::None };
            (buf.as_raw().as_slice(), PixelFormat::RGB, subsamp)
        }
        other => return encode_jpeg(&DynamicImage::ImageRgb8(other.to_rgb8()), options),
    };
    let (width, height) = (image.width() as usize, image.height() as usize);
    let input = turbojpeg::Image { pixels, width, pitch: width * format.size(), height, format };
    compress_jpeg((width, height), subsamp, options, |compressor, output| {
        compressor.set_subsamp(subsamp)?;
        compressor.compress_to_slice(input, output)
    })
}

/// A JPEG from `compress` with the settings of every JPEG output (quality, optimised Huffman
/// tables, progressive or not), into one buffer of libjpeg-turbo's worst-case size for this
/// size and subsampling, which it then never grows: its own buffer would double as it fills
/// and be copied out at the end, up to three times the output at once. Pages of the zeroed
/// allocation that are not written are not touched. Sized for the subsampling:
/// `Compressor::buf_len` gave the 4:4:4 size (three times as large) for a gray image.
fn compress_jpeg(
    (width, height): (usize, usize),
    subsamp: Subsamp,
    options: EncodeOptions,
    compress: impl FnOnce(&mut Compressor, &mut [u8]) -> turbojpeg::Result<usize>,
) -> Result<Vec<u8>, EngineError> {
    let fail = internal("jpeg");
    let mut compressor = Compressor::new().map_err(|e| fail(e.to_string()))?;
    compressor.set_quality(i32::from(options.quality)).map_err(|e| fail(e.to_string()))?;
    compressor.set_optimize(true).map_err(|e| fail(e.to_string()))?;
    compressor.set_progressive(options.progressive).map_err(|e| fail(e.to_string()))?;
    let mut output = vec![0u8; turbojpeg::compressed_buf_len(width, height, subsamp).map_err(|e| fail(e.to_string()))?];
    let written = compress(&mut compressor, &mut output).map_err(|e| fail(e.to_string()))?;
    output.truncate(written);
    output.shrink_to_fit();
    Ok(output)
}

/// A 4:2:0 JPEG from its planes as they are: no colour conversion nor chroma downsampling.
/// Baseline files come from Pixelmill's own encoder ([`jpeg::encoder`]), the same bytes as
/// libjpeg-turbo's in less time; progressive ones from libjpeg-turbo.
/// `luma` is `width` x `height` samples row after row, `cb` and `cr` half that each way,
/// rounded up. For a quality [`jpeg_subsampled`] accepts; the same settings as `encode_jpeg`
/// otherwise.
pub fn encode_jpeg_ycc(
    luma: &[u8],
    cb: &[u8],
    cr: &[u8],
    size: (usize, usize),
    options: EncodeOptions,
) -> Result<Vec<u8>, EngineError> {
    encode_jpeg_ycc_by(luma, cb, cr, size, options, true)
}

/// The most pixels a side of a JPEG can have.
const JPEG_MAX_SIDE: usize = 65_535;

/// [`encode_jpeg_ycc`], by the own encoder where `own` and the file is baseline, by
/// libjpeg-turbo otherwise (what the own encoder is tested against).
pub(crate) fn encode_jpeg_ycc_by(
    luma: &[u8],
    cb: &[u8],
    cr: &[u8],
    (width, height): (usize, usize),
    options: EncodeOptions,
    own: bool,
) -> Result<Vec<u8>, EngineError> {
    let fail = internal("jpeg");
    let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
    if width == 0
        || height == 0
        || luma.len() != width * height
        || [cb.len(), cr.len()] != [chroma_width * chroma_height; 2]
    {
        return Err(fail(format!(
            "planes of {}, {} and {} bytes for {width}x{height}",
            luma.len(),
            cb.len(),
            cr.len()
        )));
    }
    if own && !options.progressive && width <= JPEG_MAX_SIDE && height <= JPEG_MAX_SIDE {
        return Ok(jpeg::encoder::encode_420(luma, cb, cr, (width, height), options.quality));
    }
    // libjpeg-turbo reads the luma of whole 2x2 cells: an odd last column or row is repeated.
    let (padded_width, padded_height) = (width.next_multiple_of(2), height.next_multiple_of(2));
    let padded;
    let luma = if (padded_width, padded_height) == (width, height) {
        luma
    } else {
        let mut rows = Vec::with_capacity(padded_width * padded_height);
        for row in luma.chunks_exact(width) {
            rows.extend_from_slice(row);
            rows.resize(rows.len() + padded_width - width, row[width - 1]);
        }
        if padded_height > height {
            rows.extend_from_within(rows.len() - padded_width..);
        }
        padded = rows;
        &padded
    };
    let input = turbojpeg::YuvPlanesImage {
        y_plane: luma,
        u_plane: cb,
        v_plane: cr,
        width,
        height,
        y_stride: padded_width,
        u_stride: chroma_width,
        v_stride: chroma_width,
        subsamp: Subsamp::Sub2x2,
    };
    // The planes image sets the subsampling.
    compress_jpeg((width, height), Subsamp::Sub2x2, options, |compressor, output| {
        compressor.compress_yuv_planes_to_slice(&input, output)
    })
}

/// Whether a JPEG of this quality has its chroma subsampled 4:2:0 (below 90) or kept whole.
pub fn jpeg_subsampled(quality: u8) -> bool {
    quality < 90
}

/// The most bytes a PNG of `width` x `height` pixels of `channels` bytes can take: each row's
/// filter byte and samples, stored in deflate blocks of at most 65535 bytes (5 bytes of header
/// each) and IDAT chunks of at least 8 KiB (12 bytes each), the zlib and PNG framing around them.
/// [`encode_png`] reserves it up front, so the output never grows by doubling and copying.
/// The most bytes one GIF frame of `width` x `height` takes: LZW codes grow to 12 bits for 8-bit
/// indices (1.5 bytes a pixel at worst), a length byte for each 255 bytes of data, and the
/// frame's headers, palette and extensions.
pub fn gif_frame_bound(width: u32, height: u32) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    pixels * 3 / 2 + pixels / 128 + 1024
}

/// The bytes one WebP frame of `width` x `height` is planned at, inside libwebp's animation
/// encoder: up to 4 bytes a pixel lossless (VP8L stores ARGB at worst), 2 lossy, plus the
/// frame's chunk headers.
pub fn webp_frame_bound(width: u32, height: u32, lossless: bool) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    pixels * if lossless { 4 } else { 2 } + 1024
}

/// The most bytes a PNG of `width` x `height` takes: the filtered rows (a filter byte each) as
/// stored deflate blocks, which the fast compressor falls short of on any input but noise, and
/// may pass by a few bytes a block on noise; a length and checksum for each IDAT chunk; the
/// headers. An eighth more covers what the compressor's own blocks add.
pub fn png_output_bound(width: u32, height: u32, channels: u64) -> u64 {
    let filtered = (u64::from(width) * channels + 1) * u64::from(height);
    let stored = filtered + 5 * (filtered / 65_535 + 1);
    stored + stored / 8 + 12 * (filtered / PNG_CHUNK as u64 + 1) + 1024
}

/// The size of the IDAT chunks PNG output is written in, as it is compressed.
pub const PNG_CHUNK: usize = 64 << 10;

/// PNG through the `png` crate's streaming writer: rows are filtered and compressed (fdeflate)
/// into IDAT chunks as they come, into one buffer of the worst-case size; the compressed stream
/// is never held whole beside it.
fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, EngineError> {
    let fail = |e: &dyn std::fmt::Display| internal("png")(e.to_string());
    let color = match image {
        DynamicImage::ImageLuma8(_) => png::ColorType::Grayscale,
        DynamicImage::ImageLumaA8(_) => png::ColorType::GrayscaleAlpha,
        DynamicImage::ImageRgb8(_) => png::ColorType::Rgb,
        DynamicImage::ImageRgba8(_) => png::ColorType::Rgba,
        other => return encode_png(&DynamicImage::ImageRgba8(other.to_rgba8())),
    };
    let channels = u64::from(image.color().bytes_per_pixel());
    let bound = png_output_bound(image.width(), image.height(), channels);
    let mut out = Vec::with_capacity(usize::try_from(bound).unwrap_or(usize::MAX));
    {
        let mut encoder = png::Encoder::new(&mut out, image.width(), image.height());
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        encoder.set_filter(png::Filter::Adaptive);
        let mut writer = encoder.write_header().map_err(|e| fail(&e))?;
        let mut stream = writer.stream_writer_with_size(PNG_CHUNK).map_err(|e| fail(&e))?;
        std::io::Write::write_all(&mut stream, image.as_bytes()).map_err(|e| fail(&e))?;
        stream.finish().map_err(|e| fail(&e))?;
    }
    Ok(out)
}

/// libwebp's settings for the spec: quality, effort 4, lossless when asked.
fn webp_config(options: EncodeOptions) -> Result<webp::WebPConfig, EngineError> {
    let mut config = webp::WebPConfig::new().map_err(|()| internal("webp")("version mismatch".into()))?;
    config.quality = f32::from(options.quality);
    config.method = 4;
    if options.lossless {
        config.lossless = 1;
        config.exact = 0;
    }
    Ok(config)
}

fn encode_webp(image: &DynamicImage, options: EncodeOptions) -> Result<Vec<u8>, EngineError> {
    let fail = internal("webp");
    let rgb;
    let rgba;
    let (pixels, channels): (&[u8], usize) = match image {
        DynamicImage::ImageRgb8(buf) => (buf.as_raw(), 3),
        DynamicImage::ImageRgba8(buf) => (buf.as_raw(), 4),
        DynamicImage::ImageLumaA8(_) => {
            rgba = image.to_rgba8();
            (rgba.as_raw(), 4)
        }
        _ => {
            rgb = image.to_rgb8();
            (rgb.as_raw(), 3)
        }
    };
    let config = webp_config(options)?;
    let mut picture = webp::WebPPicture::new().map_err(|()| fail("version mismatch".into()))?;
    picture.width = image.width() as i32;
    picture.height = image.height() as i32;
    picture.use_argb = i32::from(options.lossless);
    let stride = (image.width() as usize * channels) as i32;
    // SAFETY: `pixels` holds `height` rows of `stride` bytes; libwebp copies them into the
    // picture, which we free below on every path; the writer's memory is freed after copying.
    unsafe {
        let imported = if channels == 4 {
            webp::WebPPictureImportRGBA(&mut picture, pixels.as_ptr(), stride)
        } else {
            webp::WebPPictureImportRGB(&mut picture, pixels.as_ptr(), stride)
        };
        if imported == 0 {
            webp::WebPPictureFree(&mut picture);
            return Err(fail("import failed (out of memory)".into()));
        }
        let mut writer = std::mem::MaybeUninit::<webp::WebPMemoryWriter>::zeroed();
        webp::WebPMemoryWriterInit(writer.as_mut_ptr());
        let mut writer = writer.assume_init();
        picture.writer = Some(webp::WebPMemoryWrite);
        picture.custom_ptr = (&raw mut writer).cast();
        let ok = webp::WebPEncode(&config, &mut picture);
        let error = picture.error_code;
        webp::WebPPictureFree(&mut picture);
        let result = if ok != 0 {
            Ok(std::slice::from_raw_parts(writer.mem, writer.size).to_vec())
        } else {
            Err(fail(format!("{error:?}")))
        };
        webp::WebPMemoryWriterClear(&mut writer);
        result
    }
}

fn encode_avif(image: &DynamicImage, options: EncodeOptions) -> Result<Vec<u8>, EngineError> {
    use ravif::{Img, RGB8, RGBA8};
    let fail = internal("avif");
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(options.quality))
        .with_alpha_quality(f32::from(options.quality))
        .with_speed(AVIF_SPEED)
        .with_bit_depth(ravif::BitDepth::Eight);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let encoded = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        let pixels: Vec<RGBA8> = rgba.pixels().map(|p| RGBA8::new(p[0], p[1], p[2], p[3])).collect();
        encoder.encode_rgba(Img::new(&pixels[..], width, height))
    } else {
        let rgb = image.to_rgb8();
        let pixels: Vec<RGB8> = rgb.pixels().map(|p| RGB8::new(p[0], p[1], p[2])).collect();
        encoder.encode_rgb(Img::new(&pixels[..], width, height))
    };
    encoded.map(|e| e.avif_file).map_err(|e| fail(e.to_string()))
}

fn encode_gif(image: &DynamicImage) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    let mut encoder = GifAnimation::new(&mut out, None);
    encoder.add(image, None)?;
    encoder.finish()?;
    Ok(out)
}

/// GIF output, a frame at a time: each frame quantised by [`Quantizer`] (palettes shared while
/// they fit, ordered dithering), LZW-coded as it comes. The writer starts with the first frame,
/// whose palette becomes the global one.
pub struct GifAnimation<'w> {
    out: Option<&'w mut Vec<u8>>,
    encoder: Option<gif::Encoder<&'w mut Vec<u8>>>,
    quantizer: Quantizer,
    /// The loop extension to write: `None` for a still or an animation that plays once.
    repeat: Option<gif::Repeat>,
}

impl<'w> GifAnimation<'w> {
    fn new(out: &'w mut Vec<u8>, repeat: Option<gif::Repeat>) -> GifAnimation<'w> {
        GifAnimation { out: Some(out), encoder: None, quantizer: Quantizer::default(), repeat }
    }

    /// Adds a frame; `delay_ms` is `None` for a still (GIF keeps hundredths of a second).
    fn add(&mut self, image: &DynamicImage, delay_ms: Option<u32>) -> Result<(), EngineError> {
        let fail = |e: gif::EncodingError| internal("gif")(e.to_string());
        let size = |side: u32| u16::try_from(side).map_err(|_| internal("gif")(format!("a side of {side} px")));
        let (width, height) = (size(image.width())?, size(image.height())?);
        let rgba = match image {
            DynamicImage::ImageRgba8(buffer) => std::borrow::Cow::Borrowed(buffer.as_raw()),
            other => std::borrow::Cow::Owned(other.to_rgba8().into_raw()),
        };
        let indexed = self.quantizer.frame(&rgba, image.width());
        drop(rgba);
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => {
                let out = self.out.take().expect("the writer is there until the first frame");
                let global = indexed.palette.as_deref().unwrap_or_default();
                let mut encoder = gif::Encoder::new(out, width, height, global).map_err(fail)?;
                if let Some(repeat) = self.repeat {
                    encoder.set_repeat(repeat).map_err(fail)?;
                }
                self.encoder.insert(encoder)
            }
        };
        let frame = gif::Frame {
            width,
            height,
            delay: delay_ms.map_or(0, |ms| u16::try_from(ms.saturating_add(5) / 10).unwrap_or(u16::MAX)),
            // The first frame's palette is the global one.
            palette: if self.quantizer.frames() == 1 { None } else { indexed.palette },
            transparent: indexed.transparent,
            // Each frame is drawn whole, so the next one starts from a clear canvas: what a
            // transparent pixel leaves visible is the background, not the frame before.
            dispose: gif::DisposalMethod::Background,
            buffer: std::borrow::Cow::Owned(indexed.indices),
            ..gif::Frame::default()
        };
        encoder.write_frame(&frame).map_err(fail)
    }

    fn finish(self) -> Result<(), EngineError> {
        // Dropping the writer writes the trailer; `into_inner` reports a failure to.
        match self.encoder {
            Some(encoder) => encoder.into_inner().map(drop).map_err(|e| internal("gif")(e.to_string())),
            None => Err(internal("gif")("no frame".to_owned())),
        }
    }
}

/// An animation's output, a frame at a time, in GIF or WebP.
///
/// GIF: see [`GifAnimation`]. WebP: libwebp's animation encoder, which stores each
/// frame as the rectangle that changed, lossy or lossless as the spec asks, at the spec's quality.
pub enum AnimationEncoder<'w> {
    Gif(GifAnimation<'w>),
    Webp(WebpAnimation<'w>),
}

impl<'w> AnimationEncoder<'w> {
    /// An encoder of `format` (one with [`OutputFormat::is_animated`]) for frames of `size`
    /// that plays `plays` times (0: forever, as [`crate::engine::decode::Animation`] counts).
    pub fn new(
        out: &'w mut Vec<u8>,
        format: OutputFormat,
        size: (u32, u32),
        plays: u32,
        options: EncodeOptions,
    ) -> Result<AnimationEncoder<'w>, EngineError> {
        match format {
            OutputFormat::Webp => WebpAnimation::new(out, size, plays, options).map(AnimationEncoder::Webp),
            _ => {
                // Without a loop extension a GIF plays once; with one, it repeats that many
                // more times.
                let repeat = match plays {
                    0 => Some(gif::Repeat::Infinite),
                    1 => None,
                    n => Some(gif::Repeat::Finite(u16::try_from(n - 1).unwrap_or(u16::MAX))),
                };
                Ok(AnimationEncoder::Gif(GifAnimation::new(out, repeat)))
            }
        }
    }

    /// Adds a frame shown for `delay_ms` (GIF keeps hundredths of a second).
    pub fn add(&mut self, image: DynamicImage, delay_ms: u32) -> Result<(), EngineError> {
        match self {
            AnimationEncoder::Gif(encoder) => encoder.add(&image, Some(delay_ms)),
            AnimationEncoder::Webp(encoder) => encoder.add(&image, delay_ms),
        }
    }

    /// Writes what is left: the GIF's trailer, or the whole WebP.
    pub fn finish(self) -> Result<(), EngineError> {
        match self {
            AnimationEncoder::Gif(encoder) => encoder.finish(),
            AnimationEncoder::Webp(encoder) => encoder.finish(),
        }
    }
}

/// libwebp's `WebPAnimEncoder`, owned: deleted on drop.
pub struct WebpAnimation<'w> {
    out: &'w mut Vec<u8>,
    encoder: std::ptr::NonNull<webp::WebPAnimEncoder>,
    config: webp::WebPConfig,
    size: (u32, u32),
    /// When the next frame starts, in milliseconds.
    timestamp: i32,
}

impl<'w> WebpAnimation<'w> {
    fn new(
        out: &'w mut Vec<u8>,
        size: (u32, u32),
        plays: u32,
        options: EncodeOptions,
    ) -> Result<WebpAnimation<'w>, EngineError> {
        let fail = internal("webp");
        let config = webp_config(options)?;
        let mut anim_options = std::mem::MaybeUninit::<webp::WebPAnimEncoderOptions>::zeroed();
        // SAFETY: the options are a plain C struct, zeroed, then set to libwebp's defaults by its
        // own initialiser (checked for the ABI version); the encoder copies them.
        let encoder = unsafe {
            if webp::WebPAnimEncoderOptionsInitInternal(anim_options.as_mut_ptr(), webp::WEBP_MUX_ABI_VERSION as i32)
                == 0
            {
                return Err(fail("animation options: version mismatch".into()));
            }
            let mut anim_options = anim_options.assume_init();
            anim_options.anim_params.loop_count = i32::try_from(plays.min(65_535)).unwrap_or(0);
            webp::WebPAnimEncoderNewInternal(
                size.0 as i32,
                size.1 as i32,
                &anim_options,
                webp::WEBP_MUX_ABI_VERSION as i32,
            )
        };
        let encoder =
            std::ptr::NonNull::new(encoder).ok_or_else(|| fail("animation encoder (out of memory)".into()))?;
        Ok(WebpAnimation { out, encoder, config, size, timestamp: 0 })
    }

    fn add(&mut self, image: &DynamicImage, delay_ms: u32) -> Result<(), EngineError> {
        let fail = internal("webp");
        if (image.width(), image.height()) != self.size {
            return Err(fail(format!(
                "a frame of {}x{} in a {:?} animation",
                image.width(),
                image.height(),
                self.size
            )));
        }
        let rgba = image.to_rgba8();
        let mut picture = webp::WebPPicture::new().map_err(|()| fail("version mismatch".into()))?;
        picture.width = image.width() as i32;
        picture.height = image.height() as i32;
        picture.use_argb = 1;
        // SAFETY: `rgba` holds `height` rows of `4 * width` bytes; libwebp copies them into the
        // picture, which is freed on every path; the encoder copies what it keeps of it.
        unsafe {
            if webp::WebPPictureImportRGBA(&mut picture, rgba.as_raw().as_ptr(), (image.width() * 4) as i32) == 0 {
                webp::WebPPictureFree(&mut picture);
                return Err(fail("import failed (out of memory)".into()));
            }
            let added = webp::WebPAnimEncoderAdd(self.encoder.as_ptr(), &mut picture, self.timestamp, &self.config);
            webp::WebPPictureFree(&mut picture);
            if added == 0 {
                return Err(fail(format!("frame at {} ms: {}", self.timestamp, self.error())));
            }
        }
        self.timestamp = self.timestamp.saturating_add(i32::try_from(delay_ms).unwrap_or(i32::MAX));
        Ok(())
    }

    fn finish(self) -> Result<(), EngineError> {
        let fail = internal("webp");
        let mut data = webp::WebPData { bytes: std::ptr::null(), size: 0 };
        // SAFETY: a null frame ends the animation at `timestamp` (the last frame's duration);
        // the assembled bytes are libwebp's, copied out and then freed.
        unsafe {
            let ended =
                webp::WebPAnimEncoderAdd(self.encoder.as_ptr(), std::ptr::null_mut(), self.timestamp, std::ptr::null());
            if ended == 0 || webp::WebPAnimEncoderAssemble(self.encoder.as_ptr(), &mut data) == 0 {
                return Err(fail(format!("assembling: {}", self.error())));
            }
            self.out.extend_from_slice(std::slice::from_raw_parts(data.bytes, data.size));
            webp::WebPDataClear(&mut data);
        }
        Ok(())
    }

    fn error(&self) -> String {
        // SAFETY: libwebp returns a NUL-terminated message owned by the encoder, or null.
        unsafe {
            let message = webp::WebPAnimEncoderGetError(self.encoder.as_ptr());
            if message.is_null() {
                "unknown error".to_owned()
            } else {
                std::ffi::CStr::from_ptr(message).to_string_lossy().into_owned()
            }
        }
    }
}

impl Drop for WebpAnimation<'_> {
    fn drop(&mut self) {
        // SAFETY: the encoder was made by WebPAnimEncoderNew and is deleted once, here.
        unsafe { webp::WebPAnimEncoderDelete(self.encoder.as_ptr()) }
    }
}
