//! From planes to pixels: chroma upsampled where it was subsampled, then YCbCr to RGB, one
//! output row at a time.
//!
//! Upsampling is the triangle filter libjpeg calls "fancy": each output sample weighs the
//! nearest input sample 3/4 and the next nearest 1/4 on each subsampled axis; at 1/8, chroma
//! subsampled on one axis only is replicated, as libjpeg-turbo does at that scale. Colour conversion
//! is libjpeg's fixed-point arithmetic (16 fraction bits, the same constants and rounding), so
//! the same planes give the same pixels.

use image::{DynamicImage, GrayImage, RgbImage};

use crate::engine::error::EngineError;
use crate::engine::jpeg::{Frame, Plane};

const SCALE_BITS: u32 = 16;
const ONE_HALF: i32 = 1 << (SCALE_BITS - 1);

const fn fix(x: f64) -> i32 {
    (x * (1 << SCALE_BITS) as f64 + 0.5) as i32
}

/// Pixels of `ceil(width / shrink)` x `ceil(height / shrink)`: gray for one component, RGB for three.
pub(super) fn to_image(frame: &Frame, planes: &[Plane], shrink: usize) -> Result<DynamicImage, EngineError> {
    let (width, height) = (frame.width.div_ceil(shrink), frame.height.div_ceil(shrink));
    let internal = || EngineError::Internal("decoded buffer has the wrong size".to_owned());
    if planes.len() != frame.components.len() {
        return Err(internal());
    }
    if let [luma] = planes {
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            pixels.extend_from_slice(&luma.data[y * luma.stride..y * luma.stride + width]);
        }
        return Ok(DynamicImage::ImageLuma8(
            GrayImage::from_raw(width as u32, height as u32, pixels).ok_or_else(internal)?,
        ));
    }
    let tables = Tables::new();
    let mut rows: Vec<Vec<u8>> = vec![vec![0; width]; 3];
    let mut sums = vec![0u16; width + 1];
    let mut pixels = vec![0u8; width * height * 3];
    for (y, out) in pixels.chunks_exact_mut(width * 3).enumerate() {
        for (c, (component, plane)) in frame.components.iter().zip(planes).enumerate() {
            let (rx, ry) = (component.rx, component.ry);
            // At 1/8 libjpeg-turbo replicates chroma subsampled on one axis (its blocks are one
            // sample, too few for its triangle filter); chroma subsampled on both is upsampled
            // only when a progressive file's DC coefficients are all there is, and then the
            // triangle filter is closer to the transform libjpeg-turbo scales it up with.
            let replicate = shrink == 8 && rx != ry;
            upsample_row(plane, component.width, component.height, rx, ry, y, replicate, &mut sums, &mut rows[c]);
        }
        convert_row(&tables, &rows[0], &rows[1], &rows[2], out);
    }
    Ok(DynamicImage::ImageRgb8(RgbImage::from_raw(width as u32, height as u32, pixels).ok_or_else(internal)?))
}

/// Output row `y` of a component whose samples are `rx` and `ry` (1 or 2) output pixels apart.
#[allow(clippy::too_many_arguments)]
fn upsample_row(
    plane: &Plane,
    width: usize,
    height: usize,
    rx: usize,
    ry: usize,
    y: usize,
    replicate: bool,
    sums: &mut [u16],
    out: &mut [u8],
) {
    let row = |index: usize| &plane.data[index.min(height - 1) * plane.stride..][..width];
    if rx == 1 && ry == 1 {
        let source = row(y);
        let n = out.len().min(width);
        out[..n].copy_from_slice(&source[..n]);
        return;
    }
    // Vertical: four times the sample, or three times the nearest row plus the next nearest.
    let sums = &mut sums[..width];
    if ry == 2 && replicate {
        for (sum, &n) in sums.iter_mut().zip(row(y / 2)) {
            *sum = 4 * u16::from(n);
        }
    } else if ry == 2 {
        let near_index = (y / 2).min(height - 1);
        let far_index = if y.is_multiple_of(2) { near_index.saturating_sub(1) } else { near_index + 1 };
        let (near, far) = (row(near_index), row(far_index));
        for ((sum, &n), &f) in sums.iter_mut().zip(near).zip(far) {
            *sum = 3 * u16::from(n) + u16::from(f);
        }
    } else {
        for (sum, &n) in sums.iter_mut().zip(row(y)) {
            *sum = 4 * u16::from(n);
        }
    }
    if rx == 2 && replicate {
        for (x, pixel) in out.iter_mut().enumerate() {
            *pixel = ((sums[(x / 2).min(width - 1)] + 2) >> 2) as u8;
        }
    } else if rx == 2 {
        let last = width - 1;
        for (x, pixel) in out.iter_mut().enumerate() {
            let i = (x / 2).min(last);
            let neighbour = if x % 2 == 0 { i.saturating_sub(1) } else { (i + 1).min(last) };
            *pixel = ((3 * u32::from(sums[i]) + u32::from(sums[neighbour]) + 8) >> 4) as u8;
        }
    } else {
        for (x, pixel) in out.iter_mut().enumerate() {
            *pixel = ((sums[x.min(width - 1)] + 2) >> 2) as u8;
        }
    }
}

/// libjpeg's YCbCr to RGB tables, indexed by the chroma sample.
struct Tables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl Tables {
    fn new() -> Tables {
        let mut tables = Tables { cr_r: [0; 256], cb_b: [0; 256], cr_g: [0; 256], cb_g: [0; 256] };
        for i in 0..256 {
            let x = i as i32 - 128;
            tables.cr_r[i] = (fix(1.40200) * x + ONE_HALF) >> SCALE_BITS;
            tables.cb_b[i] = (fix(1.77200) * x + ONE_HALF) >> SCALE_BITS;
            tables.cr_g[i] = -fix(0.71414) * x;
            tables.cb_g[i] = -fix(0.34414) * x + ONE_HALF;
        }
        tables
    }
}

fn convert_row(tables: &Tables, luma: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    for ((pixel, &y), (&cb, &cr)) in out.chunks_exact_mut(3).zip(luma).zip(cb.iter().zip(cr)) {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        pixel[0] = (y + tables.cr_r[cr]).clamp(0, 255) as u8;
        pixel[1] = (y + ((tables.cb_g[cb] + tables.cr_g[cr]) >> SCALE_BITS)).clamp(0, 255) as u8;
        pixel[2] = (y + tables.cb_b[cb]).clamp(0, 255) as u8;
    }
}
