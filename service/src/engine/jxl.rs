//! JPEG XL input, through jxl-oxide (pure Rust). Its renderer applies the codestream's
//! orientation and, with moxcms as its colour management, converts to sRGB (gray stays gray)
//! while it renders, so the pixels it returns need neither step again. A JPEG XL animation is
//! read as a still: its first frame.

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use jxl_bitstream::{Bitstream, ContainerParser, ParseEvent};
use jxl_oxide::{
    AllocTracker, EnumColourEncoding, ImageHeader, JxlImage, JxlThreadPool, Moxcms, PixelFormat, RenderingIntent,
};
use jxl_oxide_common::Bundle;

use crate::engine::error::EngineError;

/// What the headers say, before any frame is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// As displayed: the codestream's orientation applied.
    pub width: u32,
    pub height: u32,
    /// Of the pixels [`decode`] returns: 1 gray, 2 gray and alpha, 3 RGB, 4 RGBA.
    pub channels: u8,
    /// Whether the samples are coded in the XYB colour space (lossy VarDCT images usually are).
    pub xyb: bool,
}

fn corrupt(error: impl ToString) -> EngineError {
    EngineError::corrupt("jxl", error)
}

/// Bytes given to the container parser at a time: the image header is in the first of them.
const HEADER_CHUNK: usize = 4 << 10;

/// Reads the image header (size, orientation, channels) and nothing after it: a header that
/// declares too many pixels is refused before the rest of the file is looked at.
pub fn header(bytes: &[u8]) -> Result<Header, EngineError> {
    let mut parser = ContainerParser::new();
    let (mut pending, mut codestream) = (Vec::new(), Vec::new());
    for chunk in bytes.chunks(HEADER_CHUNK) {
        pending.extend_from_slice(chunk);
        for event in parser.feed_bytes(&pending) {
            if let ParseEvent::Codestream(data) = event.map_err(corrupt)? {
                codestream.extend_from_slice(data);
            }
        }
        let consumed = parser.previous_consumed_bytes();
        pending.drain(..consumed);
        match ImageHeader::parse(&mut Bitstream::new(&codestream), ()) {
            Ok(header) => return header_of(&header),
            Err(error) if error.unexpected_eof() => {}
            Err(error) => return Err(corrupt(error)),
        }
    }
    Err(corrupt("the data ends inside the image header"))
}

fn header_of(header: &ImageHeader) -> Result<Header, EngineError> {
    let metadata = &header.metadata;
    if metadata.ec_info.iter().any(|info| info.is_black()) {
        return Err(corrupt("CMYK JPEG XL images are not supported"));
    }
    let alpha = metadata.alpha().is_some();
    let channels = match (metadata.grayscale(), alpha) {
        (true, false) => 1,
        (true, true) => 2,
        (false, false) => 3,
        (false, true) => 4,
    };
    Ok(Header {
        width: header.width_with_orientation(),
        height: header.height_with_orientation(),
        channels,
        xyb: metadata.xyb_encoded,
    })
}

/// Decodes the first frame as 8-bit sRGB (or gray) samples, oriented. The decoder's pixel
/// buffers are counted against `max_bytes`: a file whose frames ask for more than its header
/// promised fails there instead of allocating it.
pub fn decode(bytes: &[u8], max_bytes: u64) -> Result<DynamicImage, EngineError> {
    let tracker = AllocTracker::with_limit(usize::try_from(max_bytes).unwrap_or(usize::MAX));
    let mut image =
        JxlImage::builder().pool(JxlThreadPool::none()).alloc_tracker(tracker).read(bytes).map_err(corrupt)?;
    let header = header_of(image.image_header())?;
    image.set_cms(Moxcms);
    let intent = RenderingIntent::Relative;
    image.request_color_encoding(if header.channels <= 2 {
        EnumColourEncoding::gray_srgb(intent)
    } else {
        EnumColourEncoding::srgb(intent)
    });
    let expected = match header.channels {
        1 => PixelFormat::Gray,
        2 => PixelFormat::Graya,
        3 => PixelFormat::Rgb,
        _ => PixelFormat::Rgba,
    };
    if image.pixel_format() != expected {
        return Err(corrupt(format!("renders as {:?}, not {expected:?}", image.pixel_format())));
    }
    if image.num_loaded_keyframes() == 0 {
        return Err(corrupt("the data ends before the first frame"));
    }
    let render = image.render_frame(0).map_err(corrupt)?;
    let mut stream = render.stream();
    let (width, height) = (stream.width(), stream.height());
    if (width, height) != (header.width, header.height) || stream.channels() != u32::from(header.channels) {
        return Err(corrupt(format!(
            "the frame renders as {width}x{height} with {} channels, not {}x{} with {}",
            stream.channels(),
            header.width,
            header.height,
            header.channels
        )));
    }
    let mut pixels = vec![0u8; width as usize * height as usize * usize::from(header.channels)];
    let written = stream.write_to_buffer(&mut pixels);
    if written != pixels.len() {
        return Err(corrupt("the frame rendered fewer samples than its size"));
    }
    let internal = || EngineError::Internal("decoded buffer has the wrong size".to_owned());
    Ok(match header.channels {
        1 => DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, pixels).ok_or_else(internal)?),
        2 => DynamicImage::ImageLumaA8(GrayAlphaImage::from_raw(width, height, pixels).ok_or_else(internal)?),
        3 => DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(internal)?),
        _ => DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, pixels).ok_or_else(internal)?),
    })
}
