//! Pixel operations on decoded images. Every function takes 8-bit Luma, LumaA, Rgb or Rgba
//! images (what `decode` produces) and returns one of those.

use std::cell::RefCell;
use std::sync::LazyLock;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{Filter, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GenericImageView, GrayImage, ImageBuffer, Luma, Pixel, Rgb, RgbImage};

use crate::engine::error::EngineError;
use crate::engine::resample;
use crate::engine::spec::{Color, CropRect, Flip, Gravity, Rotation};

thread_local! {
    /// A resizer keeps its scratch buffers between calls; one per rayon worker.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
    /// [`resize_plane`]'s planes between its passes, kept as the resizer's scratch is.
    static SCRATCH: RefCell<[Vec<u8>; 3]> = RefCell::default();
}

/// The most scratch memory a worker's resizer keeps after a resize (a thumbnail's worth). A
/// larger resize frees its scratch when done: kept, it would stay with the worker past the
/// render that planned it, and each worker would come to hold the largest it ever resized.
pub const RETAINED_RESIZER_BYTES: usize = 1 << 20;

/// A rectangle with fractional edges, in pixels of the image being resized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl Region {
    pub fn whole(image: &DynamicImage) -> Region {
        Region { left: 0.0, top: 0.0, width: f64::from(image.width()), height: f64::from(image.height()) }
    }

    fn is_whole(&self, image: &DynamicImage) -> bool {
        *self == Region::whole(image)
    }
}

/// Lanczos3 resampling, its kernel with one sine a weight where fast_image_resize's own takes
/// two: with t = pi x / 3 and s = sin t, sin(pi x) = sin 3t = s (3 - 4 s^2), so
/// sinc(x) sinc(x / 3) = s^2 (3 - 4 s^2) / (3 t^2). The weights are computed for every resize
/// (about 10 a pixel of output on each axis), a few percent of a thumbnail's time.
fn lanczos3() -> ResizeAlg {
    // `Filter::new` refuses only a support that is not finite and positive.
    static FILTER: LazyLock<FilterType> = LazyLock::new(|| {
        Filter::new("Lanczos3", lanczos3_kernel, 3.0).map_or(FilterType::Lanczos3, FilterType::Custom)
    });
    ResizeAlg::Convolution(*FILTER)
}

pub(super) fn lanczos3_kernel(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    if !(-3.0..3.0).contains(&x) {
        return 0.0;
    }
    let t = x * (std::f64::consts::PI / 3.0);
    let s2 = sine_of_at_most_pi(t).powi(2);
    s2 * (3.0 - 4.0 * s2) / (3.0 * t * t)
}

/// `t.sin()` for |t| at most pi, up to its sign, without a branch: libm's sine tests the range of
/// its argument, and the weights' arguments take its branches at random. On [0, pi/2] (sin(pi - u)
/// is sin u) the odd Taylor series to u^17 is within 5e-14 of it: the next term, (pi/2)^19 / 19!.
fn sine_of_at_most_pi(t: f64) -> f64 {
    let u = t.abs();
    let u = u.min(std::f64::consts::PI - u);
    // 1 / (2k + 1)! with alternating signs, for k from 8 down to 0.
    const TERMS: [f64; 9] = {
        let mut terms = [1.0; 9];
        let mut k = 1;
        while k < 9 {
            terms[k] = -terms[k - 1] / ((2 * k) * (2 * k + 1)) as f64;
            k += 1;
        }
        terms
    };
    let u2 = u * u;
    let series = TERMS.iter().rev().fold(0.0, |sum, &term| sum * u2 + term);
    u * series
}

/// Resamples `region` of `image` to `size` with Lanczos3 on premultiplied alpha (SIMD, and
/// split across the current rayon pool when the image is large).
pub fn resize(image: &DynamicImage, region: Region, size: (u32, u32)) -> Result<DynamicImage, EngineError> {
    resample(image, region, size, true)
}

/// [`resize`], premultiplying alpha for the resampling only when `premultiply` is set (pixels
/// already premultiplied are resampled as they are).
pub fn resample(
    image: &DynamicImage,
    region: Region,
    size: (u32, u32),
    premultiply: bool,
) -> Result<DynamicImage, EngineError> {
    if region.is_whole(image) && image.dimensions() == size {
        return Ok(image.clone());
    }
    let mut resized = DynamicImage::new(size.0, size.1, image.color());
    let options = ResizeOptions::new()
        .resize_alg(lanczos3())
        .crop(region.left, region.top, region.width, region.height)
        .use_alpha(premultiply);
    with_resizer(|resizer| resizer.resize(image, &mut resized, &options))?;
    Ok(resized)
}

/// Resamples `region` of a plane of `width` x `height` samples of one byte (`interleaved` 1) or
/// of two bytes interleaved (2), row after row, into `out`, `size` samples likewise: Lanczos3,
/// as [`resize`]. Two interleaved bytes are two planes (Cb and Cr), not a value and its alpha.
///
/// Where both axes change, the rows are resampled as columns: down the plane, then down its
/// transpose, and the result transposed back. fast_image_resize resamples down a plane many
/// samples at once in each instruction, and along a row one output sample at a time, in about
/// six times the instructions a weight (benches/RESULTS.md); the two transposes cost far less
/// than the difference. Both passes are [`resample::down`], with weights a thread keeps from one
/// render to the next. The samples are the same to the bit as fast_image_resize's: the same
/// integer weights and rounding on both axes (tested).
pub fn resize_plane(
    plane: &[u8],
    interleaved: usize,
    (width, height): (u32, u32),
    region: Region,
    out: &mut [u8],
    size: (u32, u32),
) -> Result<(), EngineError> {
    let changes = |to: u32, from: f64, at: f64| f64::from(to) != from || at != at.round();
    // The first pass takes every column: where the region is under half of them, that would
    // cost more, and allocate more, than fast_image_resize's own passes over the region's.
    let narrow = region.width * 2.0 < f64::from(width);
    // A crop or buffer fast_image_resize refuses goes to it, for its error; so does an empty
    // output, which it leaves alone.
    let inside = |start: f64, length: f64, limit: u32| {
        start >= 0.0 && length > 0.0 && start < f64::from(limit) && start + length <= f64::from(limit)
    };
    let valid = inside(region.left, region.width, width)
        && inside(region.top, region.height, height)
        && plane.len() >= width as usize * height as usize * interleaved
        && out.len() >= size.0 as usize * size.1 as usize * interleaved
        && size.0 > 0
        && size.1 > 0;
    if narrow || !valid || !(changes(size.0, region.width, region.left) && changes(size.1, region.height, region.top)) {
        return resample_plane(plane, interleaved, (width, height), region, out, size);
    }
    let n = interleaved;
    let (columns, rows) = (width as usize, size.1 as usize);
    SCRATCH.with(|scratch| {
        let mut fresh = Default::default();
        let mut kept = scratch.try_borrow_mut();
        let [down, turned, across] = match kept.as_deref_mut() {
            Ok(kept) => kept,
            Err(_) => &mut fresh,
        };
        // Every column, down to the output's rows; the region's columns are picked out below.
        down.resize(columns * rows * n, 0);
        let weights = resample::Weights::cached(height, region.top, region.top + region.height, size.1);
        resample::down(plane, columns * n, &weights, down);
        turned.resize(down.len(), 0);
        transpose(down, n, (columns, rows), turned);
        across.resize(rows * size.0 as usize * n, 0);
        let weights = resample::Weights::cached(width, region.left, region.left + region.width, size.0);
        resample::down(turned, rows * n, &weights, across);
        transpose(across, n, (rows, size.0 as usize), out);
        if let Ok(kept) = kept.as_deref_mut()
            && kept.iter().map(Vec::capacity).sum::<usize>() > RETAINED_RESIZER_BYTES
        {
            *kept = Default::default();
        }
        Ok(())
    })
}

/// [`resize_plane`] in one call of fast_image_resize.
fn resample_plane(
    plane: &[u8],
    interleaved: usize,
    (width, height): (u32, u32),
    region: Region,
    out: &mut [u8],
    size: (u32, u32),
) -> Result<(), EngineError> {
    let internal = |e: fast_image_resize::ImageBufferError| EngineError::Internal(format!("resize: {e}"));
    let pixel = if interleaved == 2 { PixelType::U8x2 } else { PixelType::U8 };
    let source = ImageRef::new(width, height, plane, pixel).map_err(internal)?;
    let mut target = Image::from_slice_u8(size.0, size.1, out, pixel).map_err(internal)?;
    let options = ResizeOptions::new()
        .resize_alg(lanczos3())
        .crop(region.left, region.top, region.width, region.height)
        .use_alpha(false);
    with_resizer(|resizer| resizer.resize(&source, &mut target, &options))
}

/// Writes the transpose of `data`, `width` x `height` samples of `n` bytes (1 or 2), to `out`:
/// sample (x, y) goes to (y, x), so `out` is `height` samples wide. By tiles of 16 x 16 bytes or
/// 8 x 8 pairs; a tile cut by the edge goes through a whole one on the stack.
fn transpose(data: &[u8], n: usize, (width, height): (usize, usize), out: &mut [u8]) {
    let side = 16 / n;
    let (row, column) = (width * n, height * n);
    for y in (0..height).step_by(side) {
        let rows = side.min(height - y);
        for x in (0..width).step_by(side) {
            let columns = side.min(width - x);
            let (from, to) = (y * row + x * n, x * column + y * n);
            if rows == side && columns == side {
                transpose_tile(n, &data[from..], row, &mut out[to..], column);
                continue;
            }
            let (mut tile, mut turned) = ([0u8; 256], [0u8; 256]);
            for r in 0..rows {
                tile[r * 16..][..columns * n].copy_from_slice(&data[from + r * row..][..columns * n]);
            }
            transpose_tile(n, &tile, 16, &mut turned, 16);
            for c in 0..columns {
                out[to + c * column..][..rows * n].copy_from_slice(&turned[c * 16..][..rows * n]);
            }
        }
    }
}

/// 16 rows of 16 bytes, `stride` bytes apart, transposed into rows `out_stride` apart: as bytes
/// (`n` 1) or as pairs of bytes (2, eight rows of eight).
fn transpose_tile(n: usize, data: &[u8], stride: usize, out: &mut [u8], out_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if n == 1 {
        sse2::transpose_bytes(data, stride, out, out_stride);
    } else {
        sse2::transpose_pairs(data, stride, out, out_stride);
    }
    #[cfg(not(target_arch = "x86_64"))]
    for y in 0..16 / n {
        for x in 0..16 / n {
            out[x * out_stride + y * n..][..n].copy_from_slice(&data[y * stride + x * n..][..n]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// [`super::transpose_tile`] of bytes, eight rows at a time: row 2p of the transpose is the
    /// low half of vector p of [`interleave_three_times`], row 2p + 1 the high half.
    pub fn transpose_bytes(data: &[u8], stride: usize, out: &mut [u8], out_stride: usize) {
        assert!(data.len() >= 15 * stride + 16 && out.len() >= 15 * out_stride + 16);
        for half in 0..2 {
            // SAFETY: SSE2 is part of x86_64; every load and store is within the bounds asserted.
            unsafe {
                let rows = std::array::from_fn(|i| load(data, (8 * half + i) * stride));
                for (p, columns) in interleave_three_times(rows, 1).into_iter().enumerate() {
                    store_half(out, 2 * p * out_stride + 8 * half, columns);
                    store_half(out, (2 * p + 1) * out_stride + 8 * half, _mm_unpackhi_epi64(columns, columns));
                }
            }
        }
    }

    /// [`super::transpose_tile`] of pairs: eight rows of eight.
    pub fn transpose_pairs(data: &[u8], stride: usize, out: &mut [u8], out_stride: usize) {
        assert!(data.len() >= 7 * stride + 16 && out.len() >= 7 * out_stride + 16);
        // SAFETY: SSE2 is part of x86_64; every load and store is within the bounds asserted.
        unsafe {
            let rows = std::array::from_fn(|i| load(data, i * stride));
            for (c, column) in interleave_three_times(rows, 2).into_iter().enumerate() {
                store(out, c * out_stride, column);
            }
        }
    }

    /// Eight rows of samples of `n` bytes (1 or 2), each round vector j interleaving the low
    /// (j even) or high halves of vectors j / 2 and j / 2 + 4: after three rounds vector j holds
    /// the eight rows' samples of column j (pairs), or of columns 2j and 2j + 1 (bytes).
    #[inline(always)]
    fn interleave_three_times(mut rows: [__m128i; 8], n: usize) -> [__m128i; 8] {
        for _ in 0..3 {
            rows = std::array::from_fn(|j| {
                let (a, b) = (rows[j / 2], rows[j / 2 + 4]);
                // SAFETY: SSE2 is part of x86_64.
                unsafe {
                    match (n, j % 2) {
                        (1, 0) => _mm_unpacklo_epi8(a, b),
                        (1, _) => _mm_unpackhi_epi8(a, b),
                        (_, 0) => _mm_unpacklo_epi16(a, b),
                        _ => _mm_unpackhi_epi16(a, b),
                    }
                }
            });
        }
        rows
    }

    /// The 16 bytes of `bytes` from `at`.
    ///
    /// # Safety
    /// `at + 16` is at most `bytes.len()`.
    #[inline(always)]
    unsafe fn load(bytes: &[u8], at: usize) -> __m128i {
        // SAFETY: in bounds (the caller); the load is unaligned.
        unsafe { _mm_loadu_si128(bytes.as_ptr().add(at).cast()) }
    }

    /// The low 8 bytes of `value` to `bytes` at `at`.
    ///
    /// # Safety
    /// `at + 8` is at most `bytes.len()`.
    #[inline(always)]
    unsafe fn store_half(bytes: &mut [u8], at: usize, value: __m128i) {
        // SAFETY: in bounds (the caller); the store is unaligned.
        unsafe { _mm_storel_epi64(bytes.as_mut_ptr().add(at).cast(), value) }
    }

    /// `value` to `bytes` at `at`.
    ///
    /// # Safety
    /// `at + 16` is at most `bytes.len()`.
    #[inline(always)]
    unsafe fn store(bytes: &mut [u8], at: usize, value: __m128i) {
        // SAFETY: in bounds (the caller); the store is unaligned.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().add(at).cast(), value) }
    }
}

/// Runs `resize` with this thread's resizer. The resizer splits large images across the rayon
/// pool, and a pool thread waiting for its parts may meanwhile run another render that resizes
/// too: then this thread's resizer is in use further up its own stack, and that render takes
/// a fresh one.
fn with_resizer(
    resize: impl FnOnce(&mut Resizer) -> Result<(), fast_image_resize::ResizeError>,
) -> Result<(), EngineError> {
    RESIZER
        .with(|resizer| match resizer.try_borrow_mut() {
            Ok(mut resizer) => {
                let result = resize(&mut resizer);
                if resizer.size_of_internal_buffers() > RETAINED_RESIZER_BYTES {
                    resizer.reset_internal_buffers();
                }
                result
            }
            Err(_) => resize(&mut Resizer::new()),
        })
        .map_err(|e| EngineError::Internal(format!("resize: {e}")))
}

pub fn rotate(image: DynamicImage, rotation: Rotation) -> DynamicImage {
    match rotation {
        Rotation::R0 => image,
        Rotation::R90 => image.rotate90(),
        Rotation::R180 => image.rotate180(),
        Rotation::R270 => image.rotate270(),
    }
}

pub fn flip(image: DynamicImage, flip: Flip) -> DynamicImage {
    match flip {
        Flip::Horizontal => image.fliph(),
        Flip::Vertical => image.flipv(),
    }
}

/// Where a `width` x `height` window sits in an image with `free` room around it.
fn gravity_offset(gravity: Gravity, free_x: u32, free_y: u32) -> (u32, u32) {
    let (x, y) = match gravity {
        Gravity::Center | Gravity::Smart => (free_x / 2, free_y / 2),
        Gravity::North => (free_x / 2, 0),
        Gravity::South => (free_x / 2, free_y),
        Gravity::East => (free_x, free_y / 2),
        Gravity::West => (0, free_y / 2),
        Gravity::NorthEast => (free_x, 0),
        Gravity::NorthWest => (0, 0),
        Gravity::SouthEast => (free_x, free_y),
        Gravity::SouthWest => (0, free_y),
    };
    (x, y)
}

/// The region left when the borders of one colour are cropped away: the colour of `border`
/// when given, else of the top-left pixel; a pixel is border when no channel (alpha included)
/// is more than `threshold` from it. The whole image when it is all border. In the pixels of
/// `image` (8-bit, as decoded).
pub fn trim_box(image: &DynamicImage, border: Option<Color>, threshold: u8) -> CropRect {
    let (width, height) = image.dimensions();
    let whole = CropRect { x: 0, y: 0, width, height };
    let channels = usize::from(image.color().bytes_per_pixel());
    let bytes = image.as_bytes();
    if width == 0 || height == 0 || bytes.len() < width as usize * height as usize * channels {
        return whole;
    }
    let reference: Vec<u8> = match border {
        None => bytes[..channels].to_vec(),
        Some(c) => {
            let pixel = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(1, 1, image::Rgba([c.r, c.g, c.b, c.a])));
            let converted = match image {
                DynamicImage::ImageLuma8(_) => DynamicImage::ImageLuma8(pixel.to_luma8()),
                DynamicImage::ImageLumaA8(_) => DynamicImage::ImageLumaA8(pixel.to_luma_alpha8()),
                DynamicImage::ImageRgb8(_) => DynamicImage::ImageRgb8(pixel.to_rgb8()),
                _ => pixel,
            };
            converted.as_bytes()[..channels].to_vec()
        }
    };
    let row_len = width as usize * channels;
    let content = |pixels: &[u8]| {
        pixels.chunks_exact(channels).any(|p| p.iter().zip(&reference).any(|(a, b)| a.abs_diff(*b) > threshold))
    };
    let row = |y: u32| &bytes[y as usize * row_len..(y as usize + 1) * row_len];
    let Some(top) = (0..height).find(|&y| content(row(y))) else { return whole };
    let bottom = (top..height).rev().find(|&y| content(row(y))).unwrap_or(top);
    let column = |x: u32| {
        (top..=bottom).any(|y| {
            let at = y as usize * row_len + x as usize * channels;
            content(&bytes[at..at + channels])
        })
    };
    let left = (0..width).find(|&x| column(x)).unwrap_or(0);
    let right = (left..width).rev().find(|&x| column(x)).unwrap_or(left);
    CropRect { x: left, y: top, width: right - left + 1, height: bottom - top + 1 }
}

/// Cuts `image` down to `width` x `height` at `gravity`.
pub fn trim(image: &DynamicImage, width: u32, height: u32, gravity: Gravity) -> DynamicImage {
    let free_x = image.width().saturating_sub(width);
    let free_y = image.height().saturating_sub(height);
    let (x, y) = if gravity == Gravity::Smart {
        smart_offset(image, width, height)
    } else {
        gravity_offset(gravity, free_x, free_y)
    };
    image.crop_imm(x, y, width.min(image.width()), height.min(image.height()))
}

/// The offset of the window with the most edge energy. Energy is summed per column and per row
/// and each axis is searched on its own, so the cost is linear in the pixel count; on ties the
/// window nearest the centre wins, so a flat image is cut at the centre.
pub fn smart_offset(image: &DynamicImage, width: u32, height: u32) -> (u32, u32) {
    let luma = image.to_luma8();
    let (w, h) = luma.dimensions();
    let mut columns = vec![0u64; w as usize];
    let mut rows = vec![0u64; h as usize];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let at = |x: u32, y: u32| i32::from(luma.get_pixel(x, y).0[0]);
            let energy = ((at(x + 1, y) - at(x - 1, y)).abs() + (at(x, y + 1) - at(x, y - 1)).abs()) as u64;
            columns[x as usize] += energy;
            rows[y as usize] += energy;
        }
    }
    (best_window(&columns, width as usize), best_window(&rows, height as usize))
}

fn best_window(energy: &[u64], window: usize) -> u32 {
    if window >= energy.len() {
        return 0;
    }
    let centre = (energy.len() - window) / 2;
    let mut sum: u64 = energy[..window].iter().sum();
    let mut best = (sum, std::cmp::Reverse(centre), 0usize);
    for start in 1..=energy.len() - window {
        sum = sum + energy[start + window - 1] - energy[start - 1];
        let candidate = (sum, std::cmp::Reverse(start.abs_diff(centre)), start);
        if (candidate.0, candidate.1) > (best.0, best.1) {
            best = candidate;
        }
    }
    best.2 as u32
}

/// Places `image` on a `width` x `height` canvas of `background` at `gravity`. The canvas keeps
/// an alpha channel when the image has one or the background is not opaque.
pub fn pad(image: &DynamicImage, width: u32, height: u32, gravity: Gravity, background: Color) -> DynamicImage {
    let (x, y) = gravity_offset(gravity, width.saturating_sub(image.width()), height.saturating_sub(image.height()));
    let bg = image::Rgba([background.r, background.g, background.b, background.a]);
    if image.color().has_alpha() || background.a < 255 {
        let mut canvas = image::RgbaImage::from_pixel(width, height, bg);
        image::imageops::replace(&mut canvas, &image.to_rgba8(), i64::from(x), i64::from(y));
        DynamicImage::ImageRgba8(canvas)
    } else {
        let mut canvas = RgbImage::from_pixel(width, height, bg.to_rgb());
        image::imageops::replace(&mut canvas, &image.to_rgb8(), i64::from(x), i64::from(y));
        DynamicImage::ImageRgb8(canvas)
    }
}

/// Gaussian blur, approximated by three box passes (exact enough for sigma >= 0.3, and linear
/// in the pixel count whatever the sigma).
pub fn blur(image: &DynamicImage, sigma: f32) -> DynamicImage {
    image.fast_blur(sigma)
}

/// Unsharp mask: adds the difference between the image and its blur, on colour channels only.
pub fn sharpen(image: &DynamicImage, sigma: f32) -> DynamicImage {
    let blurred = image.fast_blur(sigma);
    let channels = usize::from(image.color().channel_count());
    let colour_channels = if image.color().has_alpha() { channels - 1 } else { channels };
    let mut sharpened = image.clone();
    let out: &mut [u8] = match &mut sharpened {
        DynamicImage::ImageLuma8(b) => b.as_mut(),
        DynamicImage::ImageLumaA8(b) => b.as_mut(),
        DynamicImage::ImageRgb8(b) => b.as_mut(),
        DynamicImage::ImageRgba8(b) => b.as_mut(),
        _ => return sharpened,
    };
    for (i, (value, soft)) in out.iter_mut().zip(blurred.as_bytes()).enumerate() {
        if i % channels < colour_channels {
            let detail = i16::from(*value) - i16::from(*soft);
            *value = (i16::from(*value) + detail).clamp(0, 255) as u8;
        }
    }
    sharpened
}

pub fn grayscale(image: &DynamicImage) -> DynamicImage {
    image.grayscale()
}

/// Composites an image with alpha over an opaque `background`, dropping the alpha channel.
pub fn flatten(image: DynamicImage, background: Color) -> DynamicImage {
    let blend = |value: u8, bg: u8, alpha: u8| -> u8 {
        let a = u16::from(alpha);
        ((u16::from(value) * a + u16::from(bg) * (255 - a) + 127) / 255) as u8
    };
    match image {
        DynamicImage::ImageLumaA8(buf) if background.r == background.g && background.g == background.b => {
            let flat: GrayImage = ImageBuffer::from_fn(buf.width(), buf.height(), |x, y| {
                let [l, a] = buf.get_pixel(x, y).0;
                Luma([blend(l, background.r, a)])
            });
            DynamicImage::ImageLuma8(flat)
        }
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageRgba8(_) => {
            let rgba = image.into_rgba8();
            let flat: RgbImage = ImageBuffer::from_fn(rgba.width(), rgba.height(), |x, y| {
                let [r, g, b, a] = rgba.get_pixel(x, y).0;
                Rgb([blend(r, background.r, a), blend(g, background.g, a), blend(b, background.b, a)])
            });
            DynamicImage::ImageRgb8(flat)
        }
        opaque => opaque,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_interleaved_planes_resize_apart() {
        // Cb varies, Cr is 0 in the left half: as a value and its alpha, Cb would be lost there.
        let (width, height) = (64u32, 48u32);
        let plane: Vec<u8> = (0..width * height)
            .flat_map(|i| {
                let x = i % width;
                [(100 + x) as u8, if x < width / 2 { 0 } else { 200 }]
            })
            .collect();
        let region = Region { left: 0.0, top: 0.0, width: f64::from(width), height: f64::from(height) };
        let mut out = vec![0u8; 16 * 12 * 2];
        resize_plane(&plane, 2, (width, height), region, &mut out, (16, 12)).expect("a resize");
        for (i, pair) in out.chunks_exact(2).enumerate() {
            // Output column x covers source columns 4x..4x+4: Cb about 100 + 4x + 1.5.
            let x = (i % 16) as i32;
            assert!((i32::from(pair[0]) - (101 + 4 * x)).abs() <= 3, "column {x}: Cb {}", pair[0]);
        }
    }

    /// Bytes that look like neither a ramp nor noise alone: what a transpose or a crop mixes up
    /// shows.
    fn samples(length: usize, seed: u64) -> Vec<u8> {
        let mut next = crate::engine::xorshift(seed | 1);
        (0..length).map(|i| (i as u64 * 7 + (next() & 63)) as u8).collect()
    }

    #[test]
    fn a_transpose_moves_each_sample_to_its_mirror() {
        for n in [1, 2] {
            for (width, height) in [(1, 1), (16, 16), (8, 8), (17, 33), (40, 9), (3, 50), (64, 48)] {
                let data = samples(width * height * n, (width * 131 + height) as u64);
                let mut out = vec![0u8; data.len()];
                transpose(&data, n, (width, height), &mut out);
                for y in 0..height {
                    for x in 0..width {
                        let (from, to) = ((y * width + x) * n, (x * height + y) * n);
                        assert_eq!(out[to..to + n], data[from..from + n], "{n} bytes, {width}x{height}: ({x}, {y})");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Down the columns and down the transpose makes the very samples of fast_image_resize's
        /// own pass along the rows: up, down, cropped at fractions, one or two bytes a sample.
        #[test]
        fn resampling_rows_as_columns_changes_no_sample(
            n in 1usize..=2,
            (width, height) in (1u32..90, 1u32..90),
            size in (1u32..70, 1u32..70),
            crop in (0.0f64..0.4, 0.0f64..0.4, 0.5f64..1.0, 0.5f64..1.0),
            seed: u64,
        ) {
            let (w, h) = (f64::from(width), f64::from(height));
            let region = Region { left: crop.0 * w, top: crop.1 * h, width: crop.2 * w * (1.0 - crop.0), height: crop.3 * h * (1.0 - crop.1) };
            let plane = samples(width as usize * height as usize * n, seed);
            let mut ours = vec![0u8; size.0 as usize * size.1 as usize * n];
            let mut theirs = ours.clone();
            resize_plane(&plane, n, (width, height), region, &mut ours, size).unwrap();
            resample_plane(&plane, n, (width, height), region, &mut theirs, size).unwrap();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn the_series_is_the_sine_to_5e14_over_its_range() {
        for i in -1000..=1000 {
            let t = f64::from(i) / 1000.0 * std::f64::consts::PI;
            let (series, sine) = (sine_of_at_most_pi(t), t.sin().abs());
            assert!((series - sine).abs() < 5e-14, "{t}: {series} against {sine}");
        }
    }

    #[test]
    fn the_one_sine_lanczos3_kernel_is_the_two_sine_one() {
        let sinc = |x: f64| if x == 0.0 { 1.0 } else { (x * std::f64::consts::PI).sin() / (x * std::f64::consts::PI) };
        for i in -400..=400 {
            let x = f64::from(i) / 128.0 + 1e-3 * f64::from(i % 7);
            let expected = if (-3.0..3.0).contains(&x) { sinc(x) * sinc(x / 3.0) } else { 0.0 };
            assert!((lanczos3_kernel(x) - expected).abs() < 1e-12, "{x}: {} against {expected}", lanczos3_kernel(x));
        }
    }

    /// `inner` (x, y, w, h) of one colour inside a border of another, in each 8-bit layout.
    fn framed(
        width: u32,
        height: u32,
        inner: (u32, u32, u32, u32),
        border: [u8; 4],
        fill: [u8; 4],
    ) -> Vec<DynamicImage> {
        let rgba = image::RgbaImage::from_fn(width, height, |x, y| {
            let inside = x >= inner.0 && x < inner.0 + inner.2 && y >= inner.1 && y < inner.1 + inner.3;
            image::Rgba(if inside { fill } else { border })
        });
        let rgba = DynamicImage::ImageRgba8(rgba);
        vec![
            DynamicImage::ImageRgb8(rgba.to_rgb8()),
            DynamicImage::ImageLuma8(rgba.to_luma8()),
            DynamicImage::ImageLumaA8(rgba.to_luma_alpha8()),
            rgba,
        ]
    }

    #[test]
    fn trim_finds_known_borders_exactly_in_every_layout() {
        // Borders of different widths on each side, down to none, and a one-pixel content. When
        // the content holds the top-left corner, its colour is the border's: the white band
        // below is then what stays.
        for inner in [(13, 7, 50, 30), (0, 0, 80, 40), (0, 9, 80, 1), (79, 49, 1, 1), (5, 0, 3, 50)] {
            for image in framed(80, 50, inner, [255, 255, 255, 255], [20, 40, 60, 255]) {
                let found = trim_box(&image, None, 10);
                let expected = if inner == (0, 0, 80, 40) { (0, 40, 80, 10) } else { inner };
                assert_eq!((found.x, found.y, found.width, found.height), expected, "{:?}", image.color());
            }
        }
    }

    #[test]
    fn trim_is_a_no_op_without_a_border_and_on_a_flat_image() {
        let pattern = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 5, 7])));
        assert_eq!(trim_box(&pattern, None, 10), CropRect { x: 0, y: 0, width: 64, height: 48 });
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, Rgb([9, 9, 9])));
        assert_eq!(trim_box(&flat, None, 0), CropRect { x: 0, y: 0, width: 64, height: 48 });
    }

    #[test]
    fn trim_threshold_and_border_colour() {
        // A border 6 levels off the inner colour: border at threshold 10, content at 5.
        let image = &framed(40, 30, (10, 5, 20, 20), [100, 100, 100, 255], [106, 100, 100, 255])[0];
        assert_eq!(trim_box(image, None, 10), CropRect { x: 0, y: 0, width: 40, height: 30 });
        assert_eq!(trim_box(image, None, 5), CropRect { x: 10, y: 5, width: 20, height: 20 });
        // `bg` names the border colour: here the inner colour, so the frame is what stays.
        let black_frame = &framed(40, 30, (10, 5, 20, 20), [0, 0, 0, 255], [200, 200, 200, 255])[3];
        let found = trim_box(black_frame, Some(Color { r: 200, g: 200, b: 200, a: 255 }), 10);
        assert_eq!(found, CropRect { x: 0, y: 0, width: 40, height: 30 });
        // A transparent border differs from opaque content by its alpha.
        let clear = &framed(40, 30, (3, 4, 5, 6), [0, 0, 0, 0], [0, 0, 0, 255])[3];
        assert_eq!(trim_box(clear, None, 10), CropRect { x: 3, y: 4, width: 5, height: 6 });
    }

    #[test]
    fn smart_finds_the_detailed_region() {
        // A flat gray field with a checkerboard in its right quarter.
        let mut image = GrayImage::from_pixel(400, 100, Luma([128]));
        for y in 0..100 {
            for x in 300..400 {
                image.put_pixel(x, y, Luma([if (x / 4 + y / 4) % 2 == 0 { 0 } else { 255 }]));
            }
        }
        let (x, _) = smart_offset(&DynamicImage::ImageLuma8(image), 100, 100);
        assert!((290..=300).contains(&x), "window starts at {x}");
    }

    #[test]
    fn smart_cuts_a_flat_image_at_the_centre() {
        let image = DynamicImage::ImageLuma8(GrayImage::from_pixel(400, 100, Luma([7])));
        assert_eq!(smart_offset(&image, 100, 100), (150, 0));
    }

    #[test]
    fn gravity_places_the_window() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(10, 4, |x, _| Rgb([x as u8, 0, 0])));
        assert_eq!(trim(&image, 4, 4, Gravity::West).as_rgb8().unwrap().get_pixel(0, 0).0[0], 0);
        assert_eq!(trim(&image, 4, 4, Gravity::East).as_rgb8().unwrap().get_pixel(0, 0).0[0], 6);
        assert_eq!(trim(&image, 4, 4, Gravity::Center).as_rgb8().unwrap().get_pixel(0, 0).0[0], 3);
    }

    #[test]
    fn flatten_blends_alpha_over_background() {
        let image = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(1, 1, image::Rgba([255, 0, 0, 128])));
        let flat = flatten(image, Color { r: 0, g: 0, b: 255, a: 255 });
        assert_eq!(flat.as_rgb8().unwrap().get_pixel(0, 0).0, [128, 0, 127]);
    }

    #[test]
    fn pad_centres_the_image() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([0, 0, 0])));
        let padded = pad(&image, 4, 6, Gravity::Center, Color::WHITE);
        let padded = padded.as_rgb8().unwrap();
        assert_eq!(padded.dimensions(), (4, 6));
        assert_eq!(padded.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(padded.get_pixel(1, 2).0, [0, 0, 0]);
        assert_eq!(padded.get_pixel(2, 3).0, [0, 0, 0]);
        assert_eq!(padded.get_pixel(3, 5).0, [255, 255, 255]);
    }

    #[test]
    fn sharpen_raises_edge_contrast() {
        let image = DynamicImage::ImageLuma8(GrayImage::from_fn(20, 1, |x, _| Luma([if x < 10 { 100 } else { 150 }])));
        let sharp = sharpen(&image, 1.0);
        let row = sharp.as_luma8().unwrap();
        assert!(row.get_pixel(9, 0).0[0] < 100 && row.get_pixel(10, 0).0[0] > 150);
        assert_eq!(row.get_pixel(0, 0).0[0], 100);
    }
}
