//! Lanczos3 resampling down the columns of a plane, with its weights computed once and kept:
//! the pass [`super::ops::resize_plane`] makes twice (down the plane, then down its transpose).
//!
//! The weights and the arithmetic are fast_image_resize's for the same resize (its
//! `precompute_coefficients`, its rounding of them to 16-bit integers, and its sums with their
//! rounding and clamp), so the samples are the same to the bit; what differs is that a thread
//! keeps the weights of the last few resizes, where fast_image_resize computes them again on
//! every call (a few percent of a thumbnail's time, for sizes that repeat from one render to
//! the next).

use std::cell::RefCell;
use std::rc::Rc;

use super::ops::lanczos3_kernel;

/// Lanczos3's support, in source samples at scale 1.
const SUPPORT: f64 = 3.0;

/// Bits of the sum kept for the result and its overflow (fast_image_resize: 8 for the value,
/// two for the kernel's negative lobes and overshoot).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Weights are 16-bit: below 2^15.
const MAX_WEIGHT_BITS: u32 = 15;

/// Weight sets a thread keeps, most recently used first.
const KEPT: usize = 8;

/// Weights (16-bit values) beyond which a set is not kept: a set is as long as the output
/// times the window, and a large one is rare and would stay with the thread.
const KEPT_VALUES: usize = 1 << 16;

thread_local! {
    static CACHE: RefCell<Vec<(Key, Rc<Weights>)>> = const { RefCell::new(Vec::new()) };
}

/// What a weight set depends on: the source's samples down the axis, the region's edges on
/// it (as bits of the `f64`), and the output's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    source: u32,
    start: u64,
    end: u64,
    output: u32,
}

/// The integer weights of one resize down an axis.
#[derive(Debug)]
pub struct Weights {
    /// Fractional bits of the weights.
    precision: u32,
    /// For each output sample: its first source sample, and where its weights start and end
    /// in `values`.
    taps: Vec<(usize, usize, usize)>,
    values: Vec<i16>,
}

impl Weights {
    /// The weights of resampling `source` samples, from `start` to `end` (fractional), to
    /// `output` samples; this thread's kept set if it has one.
    pub fn cached(source: u32, start: f64, end: f64, output: u32) -> Rc<Weights> {
        let key = Key { source, start: start.to_bits(), end: end.to_bits(), output };
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(at) = cache.iter().position(|(k, _)| *k == key) {
                let entry = cache.remove(at);
                let weights = Rc::clone(&entry.1);
                cache.insert(0, entry);
                return weights;
            }
            let weights = Rc::new(Weights::new(source, start, end, output));
            if weights.values.len() <= KEPT_VALUES {
                cache.truncate(KEPT - 1);
                cache.insert(0, (key, Rc::clone(&weights)));
            }
            weights
        })
    }

    /// Computes them, with fast_image_resize's arithmetic step for step (the same `f64`
    /// operations in the same order, so the same roundings).
    fn new(source: u32, start: f64, end: f64, output: u32) -> Weights {
        let empty = Weights { precision: 0, taps: Vec::new(), values: Vec::new() };
        if source == 0 || output == 0 {
            return empty;
        }
        let scale = (end - start) / f64::from(output);
        if scale <= 0.0 {
            return empty;
        }
        // Downscaling widens the kernel to cover the samples each output sample stands for.
        let filter_scale = scale.max(1.0);
        let radius = SUPPORT * filter_scale;
        let window = radius.ceil() as usize * 2 + 1;
        let recip_filter_scale = 1.0 / filter_scale;
        let mut weights: Vec<f64> = Vec::with_capacity(window * output as usize);
        let mut bounds = Vec::with_capacity(output as usize);
        for out in 0..output {
            let center = start + (f64::from(out) + 0.5) * scale;
            let first = (center - radius).floor().max(0.0) as u32;
            let last = (center + radius).ceil().min(f64::from(source)) as u32;
            let at = weights.len();
            let mut sum = 0.0;
            let offset = center - 0.5;
            let (mut from, mut to) = (first, last);
            for x in first..last {
                let weight = lanczos3_kernel((f64::from(x) - offset) * recip_filter_scale);
                // Zero weights at the start are left out by moving the start.
                if x == from && weight == 0.0 {
                    from += 1;
                } else {
                    weights.push(weight);
                    sum += weight;
                }
            }
            // And zero weights at the end by moving the end back (over every weight so far,
            // as fast_image_resize walks them).
            for &weight in weights.iter().rev() {
                if to <= from || weight != 0.0 {
                    break;
                }
                to -= 1;
            }
            if sum != 0.0 {
                weights[at..].iter_mut().for_each(|weight| *weight /= sum);
            }
            weights.resize(at + window, 0.0);
            bounds.push((from, to - from));
        }
        // The most fractional bits for which the largest weight still fits in 15 bits.
        let largest = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max).max(0.0);
        let mut precision = 0;
        for bits in 0..PRECISION_BITS {
            precision = bits;
            if (largest * f64::from(1u32 << (bits + 1))).round() as i32 >= 1 << MAX_WEIGHT_BITS {
                break;
            }
        }
        let factor = f64::from(1u32 << precision);
        let mut values = Vec::new();
        let mut taps = Vec::with_capacity(bounds.len());
        for (row, &(from, count)) in weights.chunks_exact(window).zip(&bounds) {
            let at = values.len();
            values.extend(row.iter().take(count as usize).map(|&weight| (weight * factor).round() as i16));
            taps.push((from as usize, at, values.len()));
        }
        Weights { precision, taps, values }
    }

    /// Output samples.
    pub fn outputs(&self) -> usize {
        self.taps.len()
    }
}

/// Resamples the rows of `plane` (each `row` bytes, as many as the weights' source has) down
/// to the weights' output, into `out` (`row` bytes a row): each byte column on its own.
pub fn down(plane: &[u8], row: usize, weights: &Weights, out: &mut [u8]) {
    assert!(out.len() >= row * weights.outputs(), "the output holds every row");
    for (index, &(first, from, to)) in weights.taps.iter().enumerate() {
        let taps = &weights.values[from..to];
        let source = &plane[first * row..(first + taps.len()) * row];
        let target = &mut out[index * row..(index + 1) * row];
        #[cfg(target_arch = "x86_64")]
        if row >= 32 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, just checked.
            unsafe { avx2::row(source, row, taps, weights.precision, target) };
            continue;
        }
        row_of(source, row, taps, weights.precision, target);
    }
}

/// One output row: for each column, the weighted sum of the source rows (`source` holds
/// exactly the rows the taps weigh), rounded at `precision` and clamped.
fn row_of(source: &[u8], row: usize, taps: &[i16], precision: u32, target: &mut [u8]) {
    let half = (1i32 << precision) >> 1;
    for (x, sample) in target.iter_mut().enumerate() {
        let sum =
            taps.iter().enumerate().fold(half, |sum, (k, &tap)| sum + i32::from(tap) * i32::from(source[k * row + x]));
        *sample = (sum >> precision).clamp(0, 255) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// [`super::row_of`] 32 columns at a time, two source rows a step (their bytes paired
    /// with the two taps for `madd`); the last 32 columns overlap the ones before where the
    /// row is not a multiple of 32 (the same sums, written twice). `row` is at least 32.
    #[target_feature(enable = "avx2")]
    pub fn row(source: &[u8], row: usize, taps: &[i16], precision: u32, target: &mut [u8]) {
        assert!(row >= 32 && source.len() >= taps.len() * row && target.len() >= row);
        let half = _mm256_set1_epi32((1i32 << precision) >> 1);
        let shift = _mm_cvtsi32_si128(precision as i32);
        let zero = _mm256_setzero_si256();
        let mut x = 0;
        loop {
            let mut sums = [half; 4];
            let mut k = 0;
            while k < taps.len() {
                let next = if k + 1 < taps.len() { taps[k + 1] } else { 0 };
                let pair = _mm256_set1_epi32((i32::from(next) << 16) | i32::from(taps[k] as u16));
                // SAFETY: rows k and k + 1 (when there is a tap for it) hold `row` bytes from
                // their start, and x + 32 is at most `row` (asserted above).
                let (a, b) = unsafe {
                    let a = _mm256_loadu_si256(source.as_ptr().add(k * row + x).cast());
                    let b = match k + 1 < taps.len() {
                        true => _mm256_loadu_si256(source.as_ptr().add((k + 1) * row + x).cast()),
                        false => zero,
                    };
                    (a, b)
                };
                let (low, high) = (_mm256_unpacklo_epi8(a, b), _mm256_unpackhi_epi8(a, b));
                sums[0] = _mm256_add_epi32(sums[0], _mm256_madd_epi16(_mm256_unpacklo_epi8(low, zero), pair));
                sums[1] = _mm256_add_epi32(sums[1], _mm256_madd_epi16(_mm256_unpackhi_epi8(low, zero), pair));
                sums[2] = _mm256_add_epi32(sums[2], _mm256_madd_epi16(_mm256_unpacklo_epi8(high, zero), pair));
                sums[3] = _mm256_add_epi32(sums[3], _mm256_madd_epi16(_mm256_unpackhi_epi8(high, zero), pair));
                k += 2;
            }
            let [s0, s1, s2, s3] = sums.map(|sum| _mm256_sra_epi32(sum, shift));
            let bytes = _mm256_packus_epi16(_mm256_packs_epi32(s0, s1), _mm256_packs_epi32(s2, s3));
            // SAFETY: x + 32 is at most `row`, at most the target's length.
            unsafe { _mm256_storeu_si256(target.as_mut_ptr().add(x).cast(), bytes) };
            if x + 32 == row {
                break;
            }
            x = (x + 32).min(row - 32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_weights_are_the_ones_computed_again() {
        let first = Weights::cached(640, 0.5, 637.25, 400);
        let again = Weights::cached(640, 0.5, 637.25, 400);
        assert!(Rc::ptr_eq(&first, &again));
        let fresh = Weights::new(640, 0.5, 637.25, 400);
        assert_eq!((first.precision, &first.taps, &first.values), (fresh.precision, &fresh.taps, &fresh.values));
        // Another key is another set; more than KEPT others push the first out.
        for output in 1..=KEPT as u32 {
            assert!(!Rc::ptr_eq(&first, &Weights::cached(640, 0.5, 637.25, output)));
        }
        assert!(!Rc::ptr_eq(&first, &Weights::cached(640, 0.5, 637.25, 400)));
    }

    #[test]
    fn each_set_of_weights_sums_to_one_at_its_precision() {
        for (source, start, end, output) in [(640, 0.0, 640.0, 400), (100, 0.0, 100.0, 125), (5000, 12.5, 4980.0, 7)] {
            let weights = Weights::new(source, start, end, output);
            assert_eq!(weights.outputs(), output as usize);
            for &(first, from, to) in &weights.taps {
                assert!(first + (to - from) <= source as usize);
                let sum: i32 = weights.values[from..to].iter().map(|&w| i32::from(w)).sum();
                // Each weight rounds by at most half a unit.
                let slack = (to - from) as i32;
                assert!((sum - (1 << weights.precision)).abs() <= slack, "{sum} at {}", weights.precision);
            }
        }
    }
}
