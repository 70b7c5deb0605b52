//! Encoding to each output format. Inputs are 8-bit Luma, LumaA, Rgb or Rgba; alpha has been
//! flattened already for formats without it. No metadata is written: the pixels are sRGB.
//!
//! Settings follow what sharp does by default, so that size and speed compare fairly: JPEG with
//! optimised Huffman tables and 4:2:0 chroma below quality 90; WebP at effort 4.

use std::io::Cursor;

use image::{DynamicImage, ImageEncoder};
use libwebp_sys as webp;
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use crate::engine::error::EngineError;
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
    let fail = internal("jpeg");
    let (pixels, format, subsamp) = match image {
        DynamicImage::ImageLuma8(buf) => (buf.as_raw().as_slice(), PixelFormat::GRAY, Subsamp::Gray),
        DynamicImage::ImageRgb8(buf) => {
            let subsamp = if jpeg_subsampled(options.quality) { Subsamp::Sub2x2 } else { Subsamp::None };
            (buf.as_raw().as_slice(), PixelFormat::RGB, subsamp)
        }
        other => return encode_jpeg(&DynamicImage::ImageRgb8(other.to_rgb8()), options),
    };
    let mut compressor = Compressor::new().map_err(|e| fail(e.to_string()))?;
    compressor.set_quality(i32::from(options.quality)).map_err(|e| fail(e.to_string()))?;
    compressor.set_subsamp(subsamp).map_err(|e| fail(e.to_string()))?;
    compressor.set_optimize(true).map_err(|e| fail(e.to_string()))?;
    compressor.set_progressive(options.progressive).map_err(|e| fail(e.to_string()))?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    let input = turbojpeg::Image { pixels, width, pitch: width * format.size(), height, format };
    // Into one buffer of libjpeg-turbo's worst-case size, which it then never grows: its own
    // buffer would double as it fills and be copied out at the end, up to three times the
    // output at once. Pages of the zeroed allocation that are not written are not touched.
    let mut output = vec![0u8; compressor.buf_len(width, height).map_err(|e| fail(e.to_string()))?];
    let written = compressor.compress_to_slice(input, &mut output).map_err(|e| fail(e.to_string()))?;
    output.truncate(written);
    output.shrink_to_fit();
    Ok(output)
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

pub fn png_output_bound(width: u32, height: u32, channels: u64) -> u64 {
    let filtered = (u64::from(width) * channels + 1) * u64::from(height);
    filtered + 5 * (filtered / 65_535 + 1) + 12 * (filtered / 8192 + 1) + 1024
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, EngineError> {
    let channels = u64::from(image.color().bytes_per_pixel());
    let bound = png_output_bound(image.width(), image.height(), channels);
    let mut out = Vec::with_capacity(usize::try_from(bound).unwrap_or(usize::MAX));
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        Cursor::new(&mut out),
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    encoder
        .write_image(image.as_bytes(), image.width(), image.height(), image.color().into())
        .map_err(|e| internal("png")(e.to_string()))?;
    Ok(out)
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
    let mut config = webp::WebPConfig::new().map_err(|()| fail("version mismatch".into()))?;
    config.quality = f32::from(options.quality);
    config.method = 4;
    if options.lossless {
        config.lossless = 1;
        config.exact = 0;
    }
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
    {
        // Speed 10 of 30: NeuQuant palette quality close to the best at a third of the time.
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
        let frame = image::Frame::new(image.to_rgba8());
        encoder.encode_frame(frame).map_err(|e| internal("gif")(e.to_string()))?;
    }
    Ok(out)
}

/// GIF output of an animation, a frame at a time: each frame gets a palette of its own
/// (NeuQuant, as for a still), without dithering, so that nothing shimmers between frames.
pub struct AnimationEncoder<'w> {
    encoder: image::codecs::gif::GifEncoder<&'w mut Vec<u8>>,
}

impl<'w> AnimationEncoder<'w> {
    /// `plays` as [`crate::engine::decode::Animation`] counts them: 0 forever.
    pub fn new(out: &'w mut Vec<u8>, plays: u32) -> Result<AnimationEncoder<'w>, EngineError> {
        use image::codecs::gif::Repeat;
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(out, 10);
        // Without a loop extension a GIF plays once; with one, it repeats that many more times.
        let repeat = match plays {
            0 => Some(Repeat::Infinite),
            1 => None,
            n => Some(Repeat::Finite(u16::try_from(n - 1).unwrap_or(u16::MAX))),
        };
        if let Some(repeat) = repeat {
            encoder.set_repeat(repeat).map_err(|e| internal("gif")(e.to_string()))?;
        }
        Ok(AnimationEncoder { encoder })
    }

    /// Adds a frame shown for `delay_ms` (GIF keeps hundredths of a second).
    pub fn add(&mut self, image: DynamicImage, delay_ms: u32) -> Result<(), EngineError> {
        let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
        let frame = image::Frame::from_parts(image.into_rgba8(), 0, 0, delay);
        self.encoder.encode_frame(frame).map_err(|e| internal("gif")(e.to_string()))
    }
}
