//! AVIF input: the container read by [`heif`](crate::engine::heif), the AV1 image and its alpha
//! plane decoded by rav1d (the Rust port of dav1d), and YUV turned into RGB with the matrix and
//! range the file states (its `nclx` colour box, else the AV1 sequence header). Colour that is not
//! sRGB is described by an ICC profile (the file's own, or one made from its `nclx` code points)
//! for the engine to convert like any other. A grid image (a picture in tiles) is decoded tile by
//! tile into its canvas. An image sequence is read as its still.

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dLogger, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422, Dav1dPixelLayout,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib as dav1d;

use crate::engine::error::EngineError;
use crate::engine::heif::{Coded, Nclx, Still};

fn corrupt(detail: impl ToString) -> EngineError {
    EngineError::corrupt("avif", detail)
}

/// Reads the container: size, orientation, colour and the coded data, nothing decoded.
pub fn read(bytes: &[u8]) -> Result<Still<'_>, EngineError> {
    let still = crate::engine::heif::read(bytes, "avif")?;
    if &still.data.kind != b"av01" || still.alpha.as_ref().is_some_and(|alpha| &alpha.kind != b"av01") {
        return Err(corrupt("the primary item is not an AV1 image"));
    }
    Ok(still)
}

/// An AV1 picture's planes, copied out of the decoder: samples of 8 to 12 bits, each plane row
/// after row without padding.
struct Planes {
    width: u32,
    height: u32,
    bits: u32,
    /// 0 gray (no chroma), 1 4:2:0, 2 4:2:2, 3 4:4:4.
    layout: Dav1dPixelLayout,
    y: Vec<u16>,
    u: Vec<u16>,
    v: Vec<u16>,
    /// The sequence header's matrix and range, used when the container has no `nclx` box.
    matrix: u16,
    full_range: bool,
}

impl Planes {
    fn chroma_size(&self) -> (u32, u32) {
        match self.layout {
            DAV1D_PIXEL_LAYOUT_I420 => (self.width.div_ceil(2), self.height.div_ceil(2)),
            DAV1D_PIXEL_LAYOUT_I422 => (self.width.div_ceil(2), self.height),
            DAV1D_PIXEL_LAYOUT_I400 => (0, 0),
            _ => (self.width, self.height),
        }
    }
}

/// An open rav1d decoder, closed when dropped.
struct Decoder(Option<Dav1dContext>);

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from `dav1d_open` and is closed once, here.
        unsafe { dav1d::dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

/// A picture the decoder returned, released when dropped.
struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture was filled by `dav1d_get_picture` and is released once, here.
        unsafe { dav1d::dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// "Try again" as dav1d returns it: the error number, negated.
const EAGAIN: c_int = -libc::EAGAIN;

/// Decodes one AV1 still image (an item's OBUs) of at most `max_pixels`, single-threaded.
fn decode_av1(data: &[u8], max_pixels: u64) -> Result<Planes, EngineError> {
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: `dav1d_default_settings` writes every field of the settings.
    let mut settings = unsafe {
        dav1d::dav1d_default_settings(NonNull::new_unchecked(settings.as_mut_ptr()));
        settings.assume_init()
    };
    // Two frame contexts, so two threads: with one, rav1d 1.1 unwraps a frame header its error
    // path has already taken, and the panic, which cannot unwind out of its `extern "C"`
    // functions, aborts the process on a corrupt AV1 payload (memorysafety/rav1d#1497). The
    // pixel limit the probe checked applies to every frame the decoder is asked to make.
    settings.n_threads = 2;
    settings.max_frame_delay = 2;
    settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    // No logger: rav1d's default prints each parse error to stderr, beside the service's JSON
    // log lines; the error comes back as the render's own.
    // SAFETY: no callback, so nothing is ever called with the (absent) cookie.
    settings.logger = unsafe { Dav1dLogger::new(None, None) };
    settings.all_layers = 0;
    let mut decoder = Decoder(None);
    // SAFETY: both pointers are to live values of the types dav1d expects.
    let opened = unsafe { dav1d::dav1d_open(Some(NonNull::from(&mut decoder.0)), Some(NonNull::from(&mut settings))) };
    if opened.0 != 0 || decoder.0.is_none() {
        return Err(EngineError::Internal(format!("the AV1 decoder did not start ({})", opened.0)));
    }
    let mut input = Dav1dData::default();
    // SAFETY: `dav1d_data_create` allocates `data.len()` bytes that `input` owns and returns
    // them; they are written once, whole, before dav1d reads them.
    unsafe {
        let buffer = dav1d::dav1d_data_create(Some(NonNull::from(&mut input)), data.len());
        if buffer.is_null() {
            return Err(corrupt("the image data is empty"));
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len());
    }
    let mut picture = Picture(Dav1dPicture::default());
    let mut drains = 0;
    let result = loop {
        if input.sz > 0 {
            // SAFETY: the context is open and `input` holds data from `dav1d_data_create`.
            let sent = unsafe { dav1d::dav1d_send_data(decoder.0, Some(NonNull::from(&mut input))) };
            if sent.0 != 0 && sent.0 != EAGAIN {
                break Err(corrupt(format!("the AV1 data does not decode (error {})", sent.0)));
            }
        }
        // SAFETY: the context is open; `picture` is written by dav1d.
        let got = unsafe { dav1d::dav1d_get_picture(decoder.0, Some(NonNull::from(&mut picture.0))) };
        match got.0 {
            0 => break Ok(()),
            EAGAIN if input.sz > 0 => continue,
            // All data is in: the next call drains the frame threads (waits for them).
            EAGAIN if drains < 2 => drains += 1,
            EAGAIN => break Err(corrupt("the AV1 data holds no picture")),
            error => break Err(corrupt(format!("the AV1 data does not decode (error {error})"))),
        }
    };
    // SAFETY: `input` came from `dav1d_data_create` and is released once, here.
    unsafe { dav1d::dav1d_data_unref(Some(NonNull::from(&mut input))) };
    result?;
    copy_planes(&picture.0)
}

/// Copies a picture's planes into vectors of samples.
fn copy_planes(picture: &Dav1dPicture) -> Result<Planes, EngineError> {
    let params = &picture.p;
    let (width, height) = (u32::try_from(params.w).unwrap_or(0), u32::try_from(params.h).unwrap_or(0));
    if width == 0 || height == 0 {
        return Err(corrupt("the AV1 picture is empty"));
    }
    let bits = u32::try_from(params.bpc).unwrap_or(0);
    if !matches!(bits, 8 | 10 | 12) {
        return Err(corrupt(format!("{bits}-bit samples")));
    }
    // SAFETY: a picture dav1d returned has its sequence header set for as long as it lives.
    let (matrix, full_range) = match picture.seq_hdr {
        Some(header) => unsafe {
            let header = header.as_ref();
            (header.mtrx as u16, header.color_range != 0)
        },
        None => (2, false),
    };
    let mut planes = Planes {
        width,
        height,
        bits,
        layout: params.layout,
        y: Vec::new(),
        u: Vec::new(),
        v: Vec::new(),
        matrix,
        full_range,
    };
    let (chroma_width, chroma_height) = planes.chroma_size();
    let copy = |index: usize, stride: isize, w: u32, h: u32| -> Result<Vec<u16>, EngineError> {
        let base = picture.data[index].ok_or_else(|| corrupt("a plane is missing"))?.as_ptr().cast::<u8>();
        let mut out = Vec::with_capacity(w as usize * h as usize);
        for row in 0..h as isize {
            // SAFETY: dav1d's plane `index` holds `h` rows of at least `w` samples, `stride`
            // bytes apart (negative strides included), alive while `picture` is.
            unsafe {
                let start = base.offset(row * stride);
                if bits == 8 {
                    out.extend(std::slice::from_raw_parts(start, w as usize).iter().map(|&s| u16::from(s)));
                } else {
                    out.extend_from_slice(std::slice::from_raw_parts(start.cast::<u16>(), w as usize));
                }
            }
        }
        Ok(out)
    };
    planes.y = copy(0, picture.stride[0], width, height)?;
    if chroma_width > 0 {
        planes.u = copy(1, picture.stride[1], chroma_width, chroma_height)?;
        planes.v = copy(2, picture.stride[1], chroma_width, chroma_height)?;
    }
    Ok(planes)
}

/// Luma and colour-difference weights (Kr, Kb) of a matrix, or `None` for identity (GBR).
fn weights(matrix: u16) -> Option<(f32, f32)> {
    match matrix {
        0 => None,
        1 => Some((0.2126, 0.0722)),
        4 => Some((0.30, 0.11)),
        9 | 10 => Some((0.2627, 0.0593)),
        7 => Some((0.212, 0.087)),
        // BT.601 (5, 6) and what is unspecified or not known, as libavif reads it.
        _ => Some((0.299, 0.114)),
    }
}

/// Sample value to [0, 1] (luma) or [-0.5, 0.5] (chroma), by range.
struct Range {
    offset: f32,
    scale: f32,
    chroma_offset: f32,
    chroma_scale: f32,
}

fn range(bits: u32, full: bool) -> Range {
    let shift = (1u32 << (bits - 8)) as f32;
    let max = ((1u32 << bits) - 1) as f32;
    if full {
        Range { offset: 0.0, scale: 1.0 / max, chroma_offset: (1u32 << (bits - 1)) as f32, chroma_scale: 1.0 / max }
    } else {
        Range {
            offset: 16.0 * shift,
            scale: 1.0 / (219.0 * shift),
            chroma_offset: 128.0 * shift,
            chroma_scale: 1.0 / (224.0 * shift),
        }
    }
}

fn to_u8(value: f32) -> u8 {
    (value * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}

/// The planes as 8-bit gray or RGB, interleaved.
fn to_pixels(planes: &Planes, nclx: Option<&Nclx>) -> (Vec<u8>, u8) {
    let matrix = nclx.map_or(planes.matrix, |n| n.matrix);
    let full = nclx.map_or(planes.full_range, |n| n.full_range);
    let r = range(planes.bits, full);
    let (width, height) = (planes.width as usize, planes.height as usize);
    let level = |sample: u16| ((f32::from(sample) - r.offset) * r.scale).clamp(0.0, 1.0);
    let luma = |i: usize| level(planes.y[i]);
    if planes.layout == DAV1D_PIXEL_LAYOUT_I400 {
        return ((0..width * height).map(|i| to_u8(luma(i))).collect(), 1);
    }
    let (chroma_width, _) = planes.chroma_size();
    let (shift_x, shift_y) = match planes.layout {
        DAV1D_PIXEL_LAYOUT_I420 => (1, 1),
        DAV1D_PIXEL_LAYOUT_I422 => (1, 0),
        _ => (0, 0),
    };
    let mut out = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        let chroma_row = (y >> shift_y) * chroma_width as usize;
        for x in 0..width {
            let c = chroma_row + (x >> shift_x);
            let (u, v) = (planes.u[c], planes.v[c]);
            let l = luma(y * width + x);
            let rgb = match weights(matrix) {
                // Identity: Y is G, U is B, V is R, each scaled like luma.
                None => [level(v), l, level(u)],
                Some((kr, kb)) => {
                    let cb = (f32::from(u) - r.chroma_offset) * r.chroma_scale;
                    let cr = (f32::from(v) - r.chroma_offset) * r.chroma_scale;
                    let red = l + 2.0 * (1.0 - kr) * cr;
                    let blue = l + 2.0 * (1.0 - kb) * cb;
                    let green = (l - kr * red - kb * blue) / (1.0 - kr - kb);
                    [red, green, blue]
                }
            };
            out.extend(rgb.map(to_u8));
        }
    }
    (out, 3)
}

/// What the AV1 configuration record says of the samples: their bits, and the full-size planes
/// they make, times two (6 for 4:4:4, 4 for 4:2:2, 3 for 4:2:0, 2 for monochrome). Without the
/// record, the most a picture can be: 12 bits, 4:4:4.
pub fn samples(still: &Still) -> (u32, u8) {
    // av1C: marker and version, profile and level, then tier, high bit depth, twelve bit,
    // monochrome, and the chroma subsampling in x and y.
    let Some(&flags) = still.config.as_deref().and_then(|c| c.get(2)) else {
        return (12, 6);
    };
    let bits = match (flags & 0x40 != 0, flags & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    let planes_x2 = match (flags & 0x10 != 0, flags & 0x08 != 0, flags & 0x04 != 0) {
        (true, _, _) => 2,
        (false, true, true) => 3,
        (false, true, false) => 4,
        _ => 6,
    };
    (bits, planes_x2)
}

/// The samples of `coded` (`size`, in one item or in tiles), each tile decoded and turned into
/// samples by `convert` (which says how many channels it made) and copied into place, the last
/// column and row cropped to the image. A single item is used as it comes, without a copy.
fn assemble(
    coded: &Coded,
    size: (u32, u32),
    max_pixels: u64,
    convert: impl Fn(&Planes) -> (Vec<u8>, u8),
) -> Result<(Vec<u8>, u8), EngineError> {
    let mut canvas: Option<(Vec<u8>, u8)> = None;
    let (tile_width, tile_height) = coded.tile_size;
    for (index, data) in coded.tiles.iter().enumerate() {
        let planes = decode_av1(data, max_pixels)?;
        if (planes.width, planes.height) != coded.tile_size {
            return Err(corrupt(format!(
                "an AV1 picture is {}x{}, the container says {}x{}",
                planes.width, planes.height, tile_width, tile_height
            )));
        }
        let (samples, channels) = convert(&planes);
        drop(planes);
        if coded.tiles.len() == 1 && coded.tile_size == size {
            return Ok((samples, channels));
        }
        let (canvas, canvas_channels) = canvas
            .get_or_insert_with(|| (vec![0; size.0 as usize * size.1 as usize * usize::from(channels)], channels));
        if channels != *canvas_channels {
            return Err(corrupt("a grid's tiles differ in their colour channels"));
        }
        let channels = usize::from(channels);
        let (column, row) = (index as u32 % coded.columns, index as u32 / coded.columns);
        let (left, top) = (column * tile_width, row * tile_height);
        let visible = (tile_width.min(size.0 - left) as usize, tile_height.min(size.1 - top) as usize);
        for y in 0..visible.1 {
            let from = y * tile_width as usize * channels;
            let to = ((top as usize + y) * size.0 as usize + left as usize) * channels;
            canvas[to..to + visible.0 * channels].copy_from_slice(&samples[from..from + visible.0 * channels]);
        }
    }
    canvas.ok_or_else(|| corrupt("an image without coded data"))
}

/// Decodes the image (and its alpha plane) as 8-bit samples in stored orientation.
pub fn decode(still: &Still, max_pixels: u64) -> Result<DynamicImage, EngineError> {
    let (width, height) = (still.width, still.height);
    let (mut pixels, channels) =
        assemble(&still.data, (width, height), max_pixels, |planes| to_pixels(planes, still.nclx.as_ref()))?;
    let internal = || EngineError::Internal("decoded buffer has the wrong size".to_owned());
    let Some(alpha_data) = &still.alpha else {
        return Ok(if channels == 1 {
            DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, pixels).ok_or_else(internal)?)
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(internal)?)
        });
    };
    let (alpha, _) = assemble(alpha_data, (width, height), max_pixels, |alpha| {
        let r = range(alpha.bits, alpha.full_range);
        (alpha.y.iter().map(|&a| to_u8(((f32::from(a) - r.offset) * r.scale).clamp(0.0, 1.0))).collect(), 1)
    })?;
    let channels = usize::from(channels);
    let mut with_alpha = Vec::with_capacity(alpha.len() * (channels + 1));
    for (pixel, &a) in pixels.chunks_exact_mut(channels).zip(&alpha) {
        if still.premultiplied && a > 0 {
            for sample in pixel.iter_mut() {
                *sample = ((u32::from(*sample) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8;
            }
        }
        with_alpha.extend_from_slice(pixel);
        with_alpha.push(a);
    }
    drop(pixels);
    Ok(if channels == 1 {
        DynamicImage::ImageLumaA8(GrayAlphaImage::from_raw(width, height, with_alpha).ok_or_else(internal)?)
    } else {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, with_alpha).ok_or_else(internal)?)
    })
}
