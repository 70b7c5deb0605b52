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
    if planes.len() != 3 {
        return Err(internal());
    }
    let convert = converter();
    let mut buffers: [Vec<u8>; 3] = std::array::from_fn(|_| vec![0; width]);
    let mut sums = vec![0u16; width + 1];
    let mut pixels = vec![0u8; width * height * 3];
    let [first, second, third] = &mut buffers;
    for (y, out) in pixels.chunks_exact_mut(width * 3).enumerate() {
        let luma = component_row(frame, planes, 0, shrink, y, &mut sums, first);
        let cb = component_row(frame, planes, 1, shrink, y, &mut sums, second);
        let cr = component_row(frame, planes, 2, shrink, y, &mut sums, third);
        convert(luma, cb, cr, out);
    }
    Ok(DynamicImage::ImageRgb8(RgbImage::from_raw(width as u32, height as u32, pixels).ok_or_else(internal)?))
}

/// Row `y` of component `c` at the output's resolution: the plane's own row where it is not
/// subsampled, else upsampled into `buffer`.
fn component_row<'p>(
    frame: &Frame,
    planes: &'p [Plane],
    c: usize,
    shrink: usize,
    y: usize,
    sums: &mut [u16],
    buffer: &'p mut [u8],
) -> &'p [u8] {
    let (component, plane) = (&frame.components[c], &planes[c]);
    let (rx, ry) = (component.rx, component.ry);
    let width = buffer.len();
    if rx == 1 && ry == 1 && component.width >= width {
        return &plane.data[y.min(component.height - 1) * plane.stride..][..width];
    }
    // At 1/8 libjpeg-turbo replicates chroma subsampled on one axis (its blocks are one
    // sample, too few for its triangle filter); chroma subsampled on both is upsampled
    // only when a progressive file's DC coefficients are all there is, and then the
    // triangle filter is closer to the transform libjpeg-turbo scales it up with.
    let replicate = shrink == 8 && rx != ry;
    upsample_row(plane, component.width, component.height, rx, ry, y, replicate, sums, buffer);
    buffer
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
        fancy_row(sums, out);
    } else {
        for (x, pixel) in out.iter_mut().enumerate() {
            *pixel = ((sums[x.min(width - 1)] + 2) >> 2) as u8;
        }
    }
}

/// The horizontal triangle filter: output sample `x` weighs `sums[x / 2]` 3/4 and its
/// neighbour on `x`'s side 1/4, the edges repeated. In two parts: the pairs with both
/// neighbours inside, as a loop the compiler vectorises, and the rest one at a time.
fn fancy_row(sums: &[u16], out: &mut [u8]) {
    let last = sums.len() - 1;
    let sample = |x: usize| {
        let i = (x / 2).min(last);
        let neighbour = if x.is_multiple_of(2) { i.saturating_sub(1) } else { (i + 1).min(last) };
        ((3 * u32::from(sums[i]) + u32::from(sums[neighbour]) + 8) >> 4) as u8
    };
    // Pairs 1..=inner write out[2..2 + 2 * inner] from sums[0..inner + 2].
    let inner = last.saturating_sub(1).min((out.len() / 2).saturating_sub(1));
    let pairs = out.get_mut(2..2 + 2 * inner).unwrap_or_default().chunks_exact_mut(2);
    let (next, after_next) = (sums.get(1..).unwrap_or_default(), sums.get(2..).unwrap_or_default());
    for (pair, ((&before, &at), &after)) in pairs.zip(sums.iter().zip(next).zip(after_next)) {
        let near = 3 * u32::from(at) + 8;
        pair[0] = ((near + u32::from(before)) >> 4) as u8;
        pair[1] = ((near + u32::from(after)) >> 4) as u8;
    }
    for x in (0..2.min(out.len())).chain(2 + 2 * inner..out.len()) {
        out[x] = sample(x);
    }
}

/// libjpeg's YCbCr to RGB constants (`jdcolor.c`), in its fixed point.
const CR_R: i32 = fix(1.40200);
const CB_B: i32 = fix(1.77200);
const CR_G: i32 = fix(0.71414);
const CB_G: i32 = fix(0.34414);

type Convert = fn(&[u8], &[u8], &[u8], &mut [u8]);

/// The fastest conversion this processor runs: the same arithmetic, built for AVX2 where it
/// has it (eight pixels at a time, and the interleaving into RGB done with byte shuffles).
fn converter() -> Convert {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return |luma, cb, cr, out| {
            // SAFETY: the processor has AVX2, checked above.
            unsafe { convert_row_avx2(luma, cb, cr, out) }
        };
    }
    convert_row
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn convert_row_avx2(luma: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    convert_row(luma, cb, cr, out);
}

/// libjpeg's conversion: the tables of `jdcolor.c` computed per pixel (a multiply each), so
/// that it vectorises; the results are the same.
#[inline(always)]
fn convert_row(luma: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    let n = out.len() / 3;
    let (luma, cb, cr) = (&luma[..n], &cb[..n], &cr[..n]);
    for ((pixel, &y), (&cb, &cr)) in out.chunks_exact_mut(3).zip(luma).zip(cb.iter().zip(cr)) {
        let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
        pixel[0] = (y + ((CR_R * cr + ONE_HALF) >> SCALE_BITS)).clamp(0, 255) as u8;
        pixel[1] = (y + ((-CB_G * cb + ONE_HALF - CR_G * cr) >> SCALE_BITS)).clamp(0, 255) as u8;
        pixel[2] = (y + ((CB_B * cb + ONE_HALF) >> SCALE_BITS)).clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The triangle filter one sample at a time, as libjpeg states it.
    fn fancy_reference(sums: &[u16], x: usize) -> u8 {
        let last = sums.len() - 1;
        let i = (x / 2).min(last);
        let neighbour = if x.is_multiple_of(2) { i.saturating_sub(1) } else { (i + 1).min(last) };
        ((3 * u32::from(sums[i]) + u32::from(sums[neighbour]) + 8) >> 4) as u8
    }

    #[test]
    fn the_split_triangle_filter_equals_the_plain_one_at_every_width_and_output_length() {
        for width in 1..24usize {
            let sums: Vec<u16> = (0..width).map(|i| ((i * 97 + 13) % 1021) as u16).collect();
            // Outputs shorter than twice the input, as long, and longer (edge repeated).
            for length in 1..2 * width + 4 {
                let mut out = vec![0u8; length];
                fancy_row(&sums, &mut out);
                let expected: Vec<u8> = (0..length).map(|x| fancy_reference(&sums, x)).collect();
                assert_eq!(out, expected, "width {width}, output {length}");
            }
        }
    }

    #[test]
    fn the_vector_conversion_equals_libjpegs_tables_for_every_chroma_pair() {
        // jdcolor.c's tables, as they were looked up before.
        let table = |f: f64, x: i32| (fix(f) * x + ONE_HALF) >> SCALE_BITS;
        let n = 256 * 256;
        let luma: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
        let cb: Vec<u8> = (0..n).map(|i| (i / 256) as u8).collect();
        let cr: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
        let mut out = vec![0u8; 3 * n];
        converter()(&luma, &cb, &cr, &mut out);
        for i in 0..n {
            let (y, b, r) = (i32::from(luma[i]), i32::from(cb[i]) - 128, i32::from(cr[i]) - 128);
            let g = y + ((-fix(0.34414) * b + ONE_HALF - fix(0.71414) * r) >> SCALE_BITS);
            let expected = [y + table(1.40200, r), g, y + table(1.77200, b)].map(|v| v.clamp(0, 255) as u8);
            assert_eq!(out[3 * i..3 * i + 3], expected, "y {y}, cb {}, cr {}", cb[i], cr[i]);
        }
    }
}
