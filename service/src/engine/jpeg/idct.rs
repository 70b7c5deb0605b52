//! Scaled inverse DCTs: an 8x8 block of coefficients to 1x1, 2x2, 4x4 or 8x8 pixels.
//!
//! Each output pixel of an `N` x `N` transform is the mean of its cell in the 8x8 inverse
//! transform of the block's frequencies below `N` on both axes: the 1-D basis functions are
//! averaged over each cell once, into a matrix, and the block is transformed by that matrix on
//! both axes. Reading only those frequencies (zigzag indices up to 4 at 2x2, 24 at 4x4) lets
//! the decoder walk over the rest of a block without keeping it; the higher frequencies would
//! change a cell's mean by little (at 2x2, frequency 3 weighs a third of frequency 1, and
//! photos hold less of it). At 1x1 this is the DC term alone, with the same integer rounding
//! as libjpeg-turbo's 1x1 transform, so those pixels are equal.

use std::sync::LazyLock;

/// The averaged basis for `n` cells: `matrix[i][u]` is the mean over cell `i` of frequency `u`.
fn averaged_basis<const N: usize>() -> [[f32; 8]; N] {
    let mut matrix = [[0f32; 8]; N];
    let cell = 8 / N;
    for (i, row) in matrix.iter_mut().enumerate() {
        for (u, value) in row.iter_mut().enumerate() {
            let scale = if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 } / 2.0;
            let sum: f64 = (i * cell..(i + 1) * cell)
                .map(|x| scale * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos())
                .sum();
            let mean = sum / cell as f64;
            // Only the frequencies below `N` are read: the decoder then stops keeping a block's
            // coefficients early, and can leave whole bands of a progressive file unread.
            let mean = if u < N { mean } else { 0.0 };
            // Cancelled frequencies come out as rounding noise; make them exactly zero.
            *value = if mean.abs() < 1e-9 { 0.0 } else { mean as f32 };
        }
    }
    matrix
}

static BASIS_4: LazyLock<[[f32; 8]; 4]> = LazyLock::new(averaged_basis::<4>);
static BASIS_8: LazyLock<[[f32; 8]; 8]> = LazyLock::new(averaged_basis::<8>);

/// [`BASIS_4`] laid out for the vector transforms, two cell rows a vector: `splat[p][v]` is
/// `basis[2p][v]` four times then `basis[2p + 1][v]` four times, `weights[u]` is `basis[j][u]`
/// for `j` in 0..4, twice. [`transform_4x4_avx2`] loads all eight of each, [`transform_4x4`]
/// the half of its cell row and the first four weights.
struct Basis4Vectors {
    splat: [[[f32; 8]; 4]; 2],
    weights: [[f32; 8]; 4],
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
static BASIS_4_VECTORS: LazyLock<Basis4Vectors> = LazyLock::new(|| {
    let basis = &*BASIS_4;
    Basis4Vectors {
        splat: std::array::from_fn(|p| std::array::from_fn(|v| std::array::from_fn(|lane| basis[2 * p + lane / 4][v]))),
        weights: std::array::from_fn(|u| std::array::from_fn(|lane| basis[lane % 4][u])),
    }
});

/// One pixel: the DC coefficient, dequantised, descaled with rounding, level-shifted, clamped.
#[inline(always)]
pub fn idct_1x1(dc: i16, quant: u16) -> u8 {
    let value = ((i32::from(dc) * i32::from(quant) + 4) >> 3) + 128;
    value.clamp(0, 255) as u8
}

/// [`idct_2x2`]'s constants: a * a, a * b and b * b, with b = (cos(pi/16) + cos(3pi/16) +
/// cos(5pi/16) + cos(7pi/16)) / 8, scaled by 2^16.
const A_A: i64 = 8192;
const A_B: i64 = 7423;
const B_B: i64 = 6726;

/// The 2x2 transform in integers. Its matrix is [[a, b], [a, -b]] with `a` the DC weight,
/// 1/(2 sqrt 2), and `b` the mean of frequency 1's basis over half a block; the products are
/// scaled by 2^16. a*a is 1/8 exactly, as in the 1x1 transform.
#[inline(always)]
fn idct_2x2(low: [i16; 4], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    // In 64 bits: a coefficient times a 16-bit quantiser times a constant overflows 32.
    let d = |lane: usize, index: usize| i64::from(low[lane]) * i64::from(quant[index]);
    let base = A_A * d(0, 0) + (128 << 16) + (1 << 15);
    let (horizontal, vertical, both) = (A_B * d(1, 1), A_B * d(2, 8), B_B * d(3, 9));
    let pixel = |value: i64| (value >> 16).clamp(0, 255) as u8;
    out[0] = pixel(base + horizontal + vertical + both);
    out[1] = pixel(base - horizontal + vertical - both);
    out[stride] = pixel(base + horizontal - vertical - both);
    out[stride + 1] = pixel(base - horizontal - vertical + both);
}

/// A quantisation table made ready for [`Dequantiser::transform`]: the table, and for 2x2 its
/// products with [`idct_2x2`]'s constants, scaled by 2^-16, in `f64`. Made once a scan, not a
/// block.
#[derive(Debug, Clone)]
pub struct Dequantiser {
    pub quant: [u16; 64],
    products_2x2: [f64; 4],
    avx2: bool,
}

impl Dequantiser {
    pub fn new(quant: &[u16; 64]) -> Dequantiser {
        // Each product is below 2^29 and the scale a power of two: all exact.
        let product = |constant: i64, index: usize| (constant * i64::from(quant[index])) as f64 / 65536.0;
        Dequantiser {
            quant: *quant,
            products_2x2: [product(A_A, 0), product(A_B, 1), product(A_B, 8), product(B_B, 9)],
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            avx2: false,
        }
    }

    /// [`idct_scaled`] with this table.
    #[inline(always)]
    pub fn transform(&self, coefficients: &[i16; 64], size: usize, out: &mut [u8], stride: usize) {
        match size {
            // SAFETY: the processor has AVX2, checked in `new`.
            #[cfg(target_arch = "x86_64")]
            2 if self.avx2 => unsafe { idct_2x2_avx2_block(coefficients, &self.products_2x2, out, stride) },
            _ => idct_scaled(coefficients, &self.quant, size, out, stride),
        }
    }

    /// The 2x2 transform of the coefficients it reads, at natural positions 0, 1, 8 and 9
    /// (zigzag 0, 1, 2 and 4).
    #[inline(always)]
    pub fn transform_2x2(&self, low: [i16; 4], out: &mut [u8], stride: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the processor has AVX2, checked in `new`.
            return unsafe { idct_2x2_avx2(low, &self.products_2x2, out, stride) };
        }
        idct_2x2(low, &self.quant, out, stride);
    }
}

/// The coefficients the 2x2 transform reads, from a block in natural order.
#[inline(always)]
fn low_2x2(coefficients: &[i16; 64]) -> [i16; 4] {
    [coefficients[0], coefficients[1], coefficients[8], coefficients[9]]
}

/// [`idct_2x2`] in four lanes of `f64`, the same pixels for every input: each product of a
/// coefficient and a scaled constant is an integer times 2^-16 below 2^44 times that, and so
/// is each sum of four of them and 128.5, all within the 53 bits of a double's mantissa. The
/// sums are a 4x4 Hadamard transform, two rounds of a lane swap and an add with alternate signs;
/// the floor is the shift by 16, and the packs with saturation the clamp.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn idct_2x2_avx2(low: [i16; 4], products: &[f64; 4], out: &mut [u8], stride: usize) {
    use std::arch::x86_64::*;
    let values = _mm_setr_epi32(low[0].into(), low[1].into(), low[2].into(), low[3].into());
    idct_2x2_lanes(values, products, out, stride);
}

/// [`idct_2x2_avx2`] from a block, its coefficients read two neighbours at a time (measured:
/// 1.5% less time a render than one at a time, in the decoding loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn idct_2x2_avx2_block(coefficients: &[i16; 64], products: &[f64; 4], out: &mut [u8], stride: usize) {
    use std::arch::x86_64::*;
    let pair = |at: usize| (i32::from(coefficients[at]) & 0xFFFF) | (i32::from(coefficients[at + 1]) << 16);
    let values = _mm_cvtepi16_epi32(_mm_set_epi32(0, 0, pair(8), pair(0)));
    idct_2x2_lanes(values, products, out, stride);
}

/// [`idct_2x2_avx2`] of the coefficients at 0, 1, 8 and 9 in four lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn idct_2x2_lanes(values: std::arch::x86_64::__m128i, products: &[f64; 4], out: &mut [u8], stride: usize) {
    use std::arch::x86_64::*;
    // SAFETY: reads the four doubles of the array.
    let products = unsafe { _mm256_loadu_pd(products.as_ptr()) };
    let t = _mm256_mul_pd(_mm256_cvtepi32_pd(values), products);
    let negative = |mask: __m256d| _mm256_and_pd(mask, _mm256_set1_pd(-0.0));
    // [t0 + t1, t0 - t1, t8 + t9, t8 - t9]
    let odd = negative(_mm256_castsi256_pd(_mm256_set_epi64x(-1, 0, -1, 0)));
    let first = _mm256_add_pd(_mm256_xor_pd(t, odd), _mm256_permute_pd::<0b0101>(t));
    // [t0 + t1 + t8 + t9, t0 - t1 + t8 - t9, t0 + t1 - t8 - t9, t0 - t1 - t8 + t9]
    let high = negative(_mm256_castsi256_pd(_mm256_set_epi64x(-1, -1, 0, 0)));
    let second = _mm256_add_pd(_mm256_xor_pd(first, high), _mm256_permute2f128_pd::<0x01>(first, first));
    let pixels = _mm256_floor_pd(_mm256_add_pd(second, _mm256_set1_pd(128.5)));
    let words = _mm256_cvtpd_epi32(pixels);
    let bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(words, words), words)).to_le_bytes();
    out[..2].copy_from_slice(&bytes[..2]);
    out[stride..stride + 2].copy_from_slice(&bytes[2..]);
}

/// Writes the `size` x `size` pixels of one block (`size` is 1, 2, 4 or 8) at the start of `out`,
/// rows `stride` apart. `coefficients` and `quant` are in natural (row-major) order. Inlined,
/// so that the small transforms (one a block at 1/8 and 1/4) cost no call; the larger ones are
/// calls of their own.
#[inline(always)]
pub fn idct_scaled(coefficients: &[i16; 64], quant: &[u16; 64], size: usize, out: &mut [u8], stride: usize) {
    match size {
        1 => out[0] = idct_1x1(coefficients[0], quant[0]),
        2 => idct_2x2(low_2x2(coefficients), quant, out, stride),
        #[cfg(target_arch = "x86_64")]
        4 if std::arch::is_x86_feature_detected!("avx2") => {
            // SAFETY: the processor has AVX2, just checked.
            unsafe { transform_4x4_avx2(coefficients, quant, out, stride) }
        }
        // SAFETY: SSE2 is part of every x86-64 processor (elsewhere this is a plain call).
        #[allow(unused_unsafe)]
        4 => unsafe { transform_4x4(coefficients, quant, out, stride) },
        _ => transform::<8>(coefficients, quant, &BASIS_8, out, stride),
    }
}

#[inline(never)]
fn transform<const N: usize>(
    coefficients: &[i16; 64],
    quant: &[u16; 64],
    basis: &[[f32; 8]; N],
    out: &mut [u8],
    stride: usize,
) {
    // Only the frequencies below N on both axes are read.
    let mut dequantised = [[0f32; N]; N];
    for (v, row) in dequantised.iter_mut().enumerate() {
        for (u, value) in row.iter_mut().enumerate() {
            *value = f32::from(coefficients[v * 8 + u]) * f32::from(quant[v * 8 + u]);
        }
    }
    // Vertical pass: columns[i][u] is cell row i of horizontal frequency u.
    let mut columns = [[0f32; N]; N];
    for (i, column) in columns.iter_mut().enumerate() {
        for (v, row) in dequantised.iter().enumerate() {
            let weight = basis[i][v];
            for (c, &d) in column.iter_mut().zip(row) {
                *c += weight * d;
            }
        }
    }
    // Horizontal pass.
    for (i, column) in columns.iter().enumerate() {
        let row = &mut out[i * stride..i * stride + N];
        for (j, pixel) in row.iter_mut().enumerate() {
            let mut value = 128.5f32;
            for (u, &c) in column.iter().enumerate() {
                value += basis[j][u] * c;
            }
            *pixel = value.clamp(0.0, 255.0) as u8;
        }
    }
}

/// The 4x4 transform, four pixels at a time: the same products and sums in the same order as
/// [`transform`], so the same pixels, with the conversion to bytes done by vector instructions
/// (a float's conversion to `u8` is a clamp and a check for NaN otherwise, one pixel at a time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline(never)]
fn transform_4x4(coefficients: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    use std::arch::x86_64::*;
    let basis = &*BASIS_4_VECTORS;
    let vector = |row: &[f32]| _mm_set_ps(row[3], row[2], row[1], row[0]);
    let dequantised: [__m128; 4] = std::array::from_fn(|v| {
        let row: [f32; 4] = std::array::from_fn(|u| f32::from(coefficients[v * 8 + u]) * f32::from(quant[v * 8 + u]));
        vector(&row)
    });
    // Vertical pass: columns[i] holds cell row i, by horizontal frequency.
    let columns: [__m128; 4] = std::array::from_fn(|i| {
        let mut column = _mm_setzero_ps();
        for (v, &row) in dequantised.iter().enumerate() {
            column = _mm_add_ps(column, _mm_mul_ps(vector(&basis.splat[i / 2][v][i % 2 * 4..]), row));
        }
        column
    });
    // Horizontal pass, by output column: frequency u's weight in each of the four pixels.
    let weights = basis.weights.each_ref().map(|weights| vector(weights));
    let (low, high) = (_mm_setzero_ps(), _mm_set1_ps(255.0));
    for (i, &column) in columns.iter().enumerate() {
        let mut value = _mm_set1_ps(128.5);
        value = _mm_add_ps(value, _mm_mul_ps(weights[0], _mm_shuffle_ps::<0x00>(column, column)));
        value = _mm_add_ps(value, _mm_mul_ps(weights[1], _mm_shuffle_ps::<0x55>(column, column)));
        value = _mm_add_ps(value, _mm_mul_ps(weights[2], _mm_shuffle_ps::<0xAA>(column, column)));
        value = _mm_add_ps(value, _mm_mul_ps(weights[3], _mm_shuffle_ps::<0xFF>(column, column)));
        let words = _mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(value, low), high));
        let bytes = _mm_packus_epi16(_mm_packs_epi32(words, words), words);
        out[i * stride..i * stride + 4].copy_from_slice(&_mm_cvtsi128_si32(bytes).to_le_bytes());
    }
}

/// [`transform_4x4`] two rows of cells at a time: the same products and sums in the same
/// order, so the same pixels, with half the vector operations.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn transform_4x4_avx2(coefficients: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    use std::arch::x86_64::*;
    let basis = &*BASIS_4_VECTORS;
    // SAFETY: reads the eight floats of the array.
    let load = |values: &[f32; 8]| unsafe { _mm256_loadu_ps(values.as_ptr()) };
    // Each row of frequencies twice, one copy a half: both halves' cells read all of them.
    let dequantised: [__m256; 4] = std::array::from_fn(|v| {
        let row: [f32; 4] = std::array::from_fn(|u| f32::from(coefficients[v * 8 + u]) * f32::from(quant[v * 8 + u]));
        // SAFETY: reads the four floats of the array.
        let row = unsafe { _mm_loadu_ps(row.as_ptr()) };
        _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(row), row)
    });
    let (low, high) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
    for (p, splat) in basis.splat.iter().enumerate() {
        // Vertical pass: cell rows 2p and 2p + 1, by horizontal frequency.
        let mut columns = _mm256_setzero_ps();
        for (weights, &row) in splat.iter().zip(&dequantised) {
            columns = _mm256_add_ps(columns, _mm256_mul_ps(load(weights), row));
        }
        // Horizontal pass: frequency u's weight in each of the four pixels of both rows.
        let mut value = _mm256_set1_ps(128.5);
        value =
            _mm256_add_ps(value, _mm256_mul_ps(load(&basis.weights[0]), _mm256_shuffle_ps::<0x00>(columns, columns)));
        value =
            _mm256_add_ps(value, _mm256_mul_ps(load(&basis.weights[1]), _mm256_shuffle_ps::<0x55>(columns, columns)));
        value =
            _mm256_add_ps(value, _mm256_mul_ps(load(&basis.weights[2]), _mm256_shuffle_ps::<0xAA>(columns, columns)));
        value =
            _mm256_add_ps(value, _mm256_mul_ps(load(&basis.weights[3]), _mm256_shuffle_ps::<0xFF>(columns, columns)));
        let words = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(value, low), high));
        let (first, second) = (_mm256_castsi256_si128(words), _mm256_extracti128_si256::<1>(words));
        let bytes = _mm_packus_epi16(_mm_packs_epi32(first, second), first);
        let pixels = _mm_cvtsi128_si64(bytes).to_le_bytes();
        let row = 2 * p * stride;
        out[row..row + 4].copy_from_slice(&pixels[..4]);
        out[row + stride..row + stride + 4].copy_from_slice(&pixels[4..]);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn transform_4x4(coefficients: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    transform::<4>(coefficients, quant, &BASIS_4, out, stride);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full 8x8 inverse DCT, straight from its definition.
    fn reference_idct(coefficients: &[i16; 64], quant: &[u16; 64]) -> [[f64; 8]; 8] {
        let mut out = [[0f64; 8]; 8];
        let c = |u: usize| if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
        for (y, row) in out.iter_mut().enumerate() {
            for (x, pixel) in row.iter_mut().enumerate() {
                let mut sum = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        let f = f64::from(coefficients[v * 8 + u]) * f64::from(quant[v * 8 + u]);
                        sum += c(u)
                            * c(v)
                            * f
                            * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                            * ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                }
                *pixel = sum / 4.0 + 128.0;
            }
        }
        out
    }

    #[test]
    fn each_scaled_pixel_is_the_mean_of_its_cell_in_the_transform_of_the_low_frequencies() {
        // A deterministic spread of coefficients, small enough that nothing clamps.
        let mut coefficients = [0i16; 64];
        for (k, c) in coefficients.iter_mut().enumerate() {
            *c = ((k as i32 * 37 % 11) - 5) as i16;
        }
        coefficients[0] = 3;
        let quant = [2u16; 64];
        for size in [2usize, 4, 8] {
            // The frequencies the transform reads.
            let mut low = coefficients;
            for (index, c) in low.iter_mut().enumerate() {
                if index / 8 >= size || index % 8 >= size {
                    *c = 0;
                }
            }
            let full = reference_idct(&low, &quant);
            let mut out = vec![0u8; size * size];
            idct_scaled(&coefficients, &quant, size, &mut out, size);
            let cell = 8 / size;
            for i in 0..size {
                for j in 0..size {
                    let mean: f64 = (0..cell)
                        .flat_map(|dy| (0..cell).map(move |dx| (dy, dx)))
                        .map(|(dy, dx)| full[i * cell + dy][j * cell + dx])
                        .sum::<f64>()
                        / (cell * cell) as f64;
                    assert!(
                        (f64::from(out[i * size + j]) - mean).abs() <= 0.51,
                        "size {size} cell ({i},{j}): {} against {mean}",
                        out[i * size + j]
                    );
                }
            }
        }
    }

    /// 64 coefficients spread evenly over -`spread`..`spread`, clamped to 16 bits.
    #[cfg(target_arch = "x86_64")]
    fn random_block(next: &mut impl FnMut() -> u64, spread: i64) -> [i16; 64] {
        std::array::from_fn(|_| ((next() % (2 * spread as u64)) as i64 - spread).clamp(-32768, 32767) as i16)
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_4x4_transform_gives_the_sse2_pixels() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        // Pseudo-random coefficients and quantisers, from small to clamping.
        let mut next = crate::engine::xorshift(0x2545_f491_4f6c_dd1d);
        for round in 0..2000 {
            let spread = [8i64, 64, 512, 4096, 65536][round % 5];
            let coefficients = random_block(&mut next, spread);
            let quant: [u16; 64] = std::array::from_fn(|_| 1 + (next() % [4, 64, 255, 65535][round % 4]) as u16);
            let (mut sse2, mut avx2) = ([0u8; 4 * 7], [0u8; 4 * 7]);
            // SAFETY: SSE2 is part of every x86-64 processor; AVX2 was checked above.
            unsafe {
                transform_4x4(&coefficients, &quant, &mut sse2, 7);
                transform_4x4_avx2(&coefficients, &quant, &mut avx2, 7);
            }
            assert_eq!(sse2, avx2, "round {round}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_2x2_transform_gives_the_integer_pixels() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut next = crate::engine::xorshift(0x9e37_79b9_7f4a_7c15);
        // From small values to the extremes a hostile file can declare, where the sums cancel
        // or clamp; every fifth round one coefficient at each end of its range.
        for round in 0..20_000 {
            let spread = [8i64, 256, 4096, 32768][round % 4];
            let mut coefficients = random_block(&mut next, spread);
            if round % 5 == 0 {
                coefficients[[0, 1, 8, 9][round / 5 % 4]] = [i16::MIN, i16::MAX][round / 20 % 2];
            }
            let quant: [u16; 64] = std::array::from_fn(|_| 1 + (next() % [16, 255, 65535][round % 3]) as u16);
            let (mut integer, mut block, mut low) = ([0u8; 2 * 5], [0u8; 2 * 5], [0u8; 2 * 5]);
            idct_2x2(low_2x2(&coefficients), &quant, &mut integer, 5);
            let dequantiser = Dequantiser::new(&quant);
            dequantiser.transform(&coefficients, 2, &mut block, 5);
            dequantiser.transform_2x2(low_2x2(&coefficients), &mut low, 5);
            assert_eq!((integer, integer), (block, low), "round {round}: {:?} {:?}", &coefficients[..10], &quant[..10]);
        }
    }

    #[test]
    fn the_integer_2x2_transform_uses_the_averaged_basis() {
        let basis = averaged_basis::<2>();
        let scaled = |x: f32| (f64::from(x) * 65536.0).round() as i32;
        assert_eq!(scaled(basis[0][0] * basis[0][0]), 8192);
        assert_eq!(scaled(basis[0][0] * basis[0][1]), 7423);
        assert_eq!(scaled(basis[0][1] * basis[0][1]), 6726);
        assert_eq!(basis[1][1], -basis[0][1]);
    }

    #[test]
    fn extreme_coefficients_and_quantisers_clamp_at_every_size() {
        // The largest 16-bit quantiser times the largest coefficient, as a hostile file can
        // declare: no overflow, and the pixels clamp.
        for (value, expected) in [(i16::MAX, 255u8), (i16::MIN, 0u8)] {
            let coefficients = [value; 64];
            let mut dc_only = [0i16; 64];
            dc_only[0] = value;
            let quant = [u16::MAX; 64];
            for size in [1usize, 2, 4, 8] {
                let mut out = vec![0u8; size * size];
                idct_scaled(&coefficients, &quant, size, &mut out, size);
                idct_scaled(&dc_only, &quant, size, &mut out, size);
                assert!(out.iter().all(|&p| p == expected), "size {size}: {out:?}");
            }
        }
    }

    #[test]
    fn the_1x1_transform_rounds_like_libjpeg_turbo() {
        // (dc * q + 4) >> 3, level-shifted and clamped.
        assert_eq!(idct_1x1(0, 16), 128);
        assert_eq!(i32::from(idct_1x1(-3, 5)), 128 + ((-15 + 4) >> 3));
        assert_eq!(idct_1x1(100, 16), 255);
        assert_eq!(idct_1x1(-100, 16), 0);
    }
}
