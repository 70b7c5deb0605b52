//! A baseline 4:2:0 JPEG encoder from planes, for thumbnails made from a JPEG's planes: the same
//! file as libjpeg-turbo's from `tj3CompressFromYUVPlanes8` with optimised Huffman tables, byte
//! for byte (the same integer transform, quantisation, edge padding, table building and
//! markers; tested), in about 0.7x its time for a 400 px thumbnail.
//!
//! Why: libjpeg-turbo builds optimised tables by walking every block's 64 coefficients one at a
//! time with a branch on each (`encode_mcu_gather`), which took more of a thumbnail's time than
//! its whole transform, quantisation and coding. Here each block's nonzero coefficients are a
//! bit mask, counted and coded by walking its set bits.
//!
//! Vocabulary as in the decoder: a *block* is 8x8 samples of one component, an *MCU* 16x16
//! pixels (four luma blocks, one of each chroma), *zigzag* the order a block's coefficients
//! are coded in. A *dummy block* is one of an MCU's blocks wholly past the image's edge:
//! libjpeg codes it as the DC value of its neighbour and no AC coefficients.

use super::NATURAL;

/// The quantisation tables of Annex K (luminance, chrominance), natural order.
const LUMINANCE: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMINANCE: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99,
];

/// A table scaled to `quality` (1 to 100) as libjpeg's `jpeg_set_quality` with baseline values.
fn quant_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let quality = u32::from(quality.clamp(1, 100));
    let scale = if quality < 50 { 5000 / quality } else { 200 - quality * 2 };
    base.map(|value| ((u32::from(value) * scale + 50) / 100).clamp(1, 255) as u16)
}

/// What quantises one coefficient without a division, as libjpeg-turbo does: the magnitude
/// plus `correction`, times `reciprocal`, shifted right by 16 twice with a multiplication by
/// `scale` between; exactly the rounded quotient by 8 times the table's value.
#[derive(Clone, Copy)]
struct Divisors {
    /// By row of the block, natural order.
    reciprocal: [[u32; 8]; 8],
    correction: [[u32; 8]; 8],
    scale: [[u32; 8]; 8],
}

impl Divisors {
    /// libjpeg-turbo's `compute_reciprocal` for the divisors `8 x table` (the transform's output
    /// is eight times the coefficient).
    fn new(table: &[u16; 64]) -> Divisors {
        let mut divisors = Divisors { reciprocal: [[0; 8]; 8], correction: [[0; 8]; 8], scale: [[0; 8]; 8] };
        for (i, &value) in table.iter().enumerate() {
            let divisor = u32::from(value) * 8;
            let mut r = 16 + (31 - divisor.leading_zeros());
            let mut fq = (1u64 << r) / u64::from(divisor);
            let fr = (1u64 << r) % u64::from(divisor);
            let mut c = divisor / 2;
            if fr == 0 {
                fq >>= 1;
                r -= 1;
            } else if fr <= u64::from(divisor / 2) {
                c += 1;
            } else {
                fq += 1;
            }
            let (v, u) = (i / 8, i % 8);
            divisors.reciprocal[v][u] = fq as u32;
            divisors.correction[v][u] = c;
            divisors.scale[v][u] = 1 << (32 - r);
        }
        divisors
    }
}

/// Eight lanes of 32 bits, what the transform works on: a row or a column of a block each pass.
/// Implemented by plain arrays and, where the CPU has it, by an AVX2 register.
trait Vector: Copy {
    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    fn mul(self, c: i32) -> Self;
    fn shl(self, n: u32) -> Self;
    /// `(x + 2^(n-1)) >> n`, libjpeg's DESCALE.
    fn descale(self, n: u32) -> Self;
    /// A row of samples, minus 128.
    fn load(row: &[u8; 8]) -> Self;
    /// Lane `j` of vector `i` becomes lane `i` of vector `j`.
    fn transpose(m: [Self; 8]) -> [Self; 8];
    /// Each lane quantised by its divisors: the magnitude plus the correction, times the
    /// reciprocal, shifted right by 16, times the scale, shifted by 16 again; the sign kept.
    fn quantize(self, reciprocal: &[u32; 8], correction: &[u32; 8], scale: &[u32; 8]) -> [i16; 8];
}

impl Vector for [i32; 8] {
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i] + other[i])
    }

    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i] - other[i])
    }

    #[inline(always)]
    fn mul(self, c: i32) -> Self {
        self.map(|x| x * c)
    }

    #[inline(always)]
    fn shl(self, n: u32) -> Self {
        self.map(|x| x << n)
    }

    #[inline(always)]
    fn descale(self, n: u32) -> Self {
        self.map(|x| (x + (1 << (n - 1))) >> n)
    }

    #[inline(always)]
    fn load(row: &[u8; 8]) -> Self {
        row.map(|sample| i32::from(sample) - 128)
    }

    #[inline(always)]
    fn transpose(m: [Self; 8]) -> [Self; 8] {
        std::array::from_fn(|j| std::array::from_fn(|i| m[i][j]))
    }

    #[inline(always)]
    fn quantize(self, reciprocal: &[u32; 8], correction: &[u32; 8], scale: &[u32; 8]) -> [i16; 8] {
        std::array::from_fn(|i| {
            let quotient = ((((self[i].unsigned_abs() + correction[i]) * reciprocal[i]) >> 16) * scale[i]) >> 16;
            (quotient as i32 * self[i].signum()) as i16
        })
    }
}

/// An AVX2 register of eight lanes; only made inside functions compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(std::arch::x86_64::__m256i);

#[cfg(target_arch = "x86_64")]
impl Vector for Avx2 {
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY (here and below): an `Avx2` only exists where the CPU has AVX2.
        Avx2(unsafe { std::arch::x86_64::_mm256_add_epi32(self.0, other.0) })
    }

    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        Avx2(unsafe { std::arch::x86_64::_mm256_sub_epi32(self.0, other.0) })
    }

    #[inline(always)]
    fn mul(self, c: i32) -> Self {
        use std::arch::x86_64::*;
        Avx2(unsafe { _mm256_mullo_epi32(self.0, _mm256_set1_epi32(c)) })
    }

    #[inline(always)]
    fn shl(self, n: u32) -> Self {
        use std::arch::x86_64::*;
        Avx2(unsafe { _mm256_sll_epi32(self.0, _mm_cvtsi32_si128(n as i32)) })
    }

    #[inline(always)]
    fn descale(self, n: u32) -> Self {
        use std::arch::x86_64::*;
        Avx2(unsafe {
            _mm256_sra_epi32(_mm256_add_epi32(self.0, _mm256_set1_epi32(1 << (n - 1))), _mm_cvtsi32_si128(n as i32))
        })
    }

    #[inline(always)]
    fn load(row: &[u8; 8]) -> Self {
        use std::arch::x86_64::*;
        Avx2(unsafe {
            let bytes = _mm_set_epi64x(0, i64::from_le_bytes(*row));
            _mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), _mm256_set1_epi32(128))
        })
    }

    #[inline(always)]
    fn transpose(m: [Self; 8]) -> [Self; 8] {
        use std::arch::x86_64::*;
        unsafe {
            let [r0, r1, r2, r3, r4, r5, r6, r7] = m.map(|v| v.0);
            let (t0, t1) = (_mm256_unpacklo_epi32(r0, r1), _mm256_unpackhi_epi32(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_epi32(r2, r3), _mm256_unpackhi_epi32(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_epi32(r4, r5), _mm256_unpackhi_epi32(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_epi32(r6, r7), _mm256_unpackhi_epi32(r6, r7));
            let (u0, u1) = (_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2));
            let (u2, u3) = (_mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3));
            let (u4, u5) = (_mm256_unpacklo_epi64(t4, t6), _mm256_unpackhi_epi64(t4, t6));
            let (u6, u7) = (_mm256_unpacklo_epi64(t5, t7), _mm256_unpackhi_epi64(t5, t7));
            [
                _mm256_permute2x128_si256::<0x20>(u0, u4),
                _mm256_permute2x128_si256::<0x20>(u1, u5),
                _mm256_permute2x128_si256::<0x20>(u2, u6),
                _mm256_permute2x128_si256::<0x20>(u3, u7),
                _mm256_permute2x128_si256::<0x31>(u0, u4),
                _mm256_permute2x128_si256::<0x31>(u1, u5),
                _mm256_permute2x128_si256::<0x31>(u2, u6),
                _mm256_permute2x128_si256::<0x31>(u3, u7),
            ]
            .map(Avx2)
        }
    }

    #[inline(always)]
    fn quantize(self, reciprocal: &[u32; 8], correction: &[u32; 8], scale: &[u32; 8]) -> [i16; 8] {
        use std::arch::x86_64::*;
        unsafe {
            let vector = |values: &[u32; 8]| _mm256_loadu_si256(values.as_ptr().cast());
            let magnitude = _mm256_add_epi32(_mm256_abs_epi32(self.0), vector(correction));
            let quotient = _mm256_srli_epi32::<16>(_mm256_mullo_epi32(magnitude, vector(reciprocal)));
            let quotient = _mm256_srli_epi32::<16>(_mm256_mullo_epi32(quotient, vector(scale)));
            let signed = _mm256_sign_epi32(quotient, self.0);
            // Both halves' words side by side in the low half.
            let words = _mm256_permute4x64_epi64::<0b1000>(_mm256_packs_epi32(signed, signed));
            let mut out = [0i16; 8];
            _mm_storeu_si128(out.as_mut_ptr().cast(), _mm256_castsi256_si128(words));
            out
        }
    }
}

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;
const FIX_0_298631336: i32 = 2446;
const FIX_0_390180644: i32 = 3196;
const FIX_0_541196100: i32 = 4433;
const FIX_0_765366865: i32 = 6270;
const FIX_0_899976223: i32 = 7373;
const FIX_1_175875602: i32 = 9633;
const FIX_1_501321110: i32 = 12299;
const FIX_1_847759065: i32 = 15137;
const FIX_1_961570560: i32 = 16069;
const FIX_2_053119869: i32 = 16819;
const FIX_2_562915447: i32 = 20995;
const FIX_3_072711026: i32 = 25172;

/// One pass of libjpeg's integer forward DCT (`jpeg_fdct_islow`, Loeffler-Ligtenberg-Moschytz)
/// on eight lanes at once: `x[j]` holds sample `j` of each lane's line, the result frequency
/// `u` of each. The first pass scales its output up by 2^PASS1_BITS, the second takes it out.
#[inline(always)]
fn fdct_pass<V: Vector>(x: [V; 8], first: bool) -> [V; 8] {
    let tmp0 = x[0].add(x[7]);
    let tmp7 = x[0].sub(x[7]);
    let tmp1 = x[1].add(x[6]);
    let tmp6 = x[1].sub(x[6]);
    let tmp2 = x[2].add(x[5]);
    let tmp5 = x[2].sub(x[5]);
    let tmp3 = x[3].add(x[4]);
    let tmp4 = x[3].sub(x[4]);

    let tmp10 = tmp0.add(tmp3);
    let tmp13 = tmp0.sub(tmp3);
    let tmp11 = tmp1.add(tmp2);
    let tmp12 = tmp1.sub(tmp2);

    let bits = if first { CONST_BITS - PASS1_BITS } else { CONST_BITS + PASS1_BITS };
    let (out0, out4) = if first {
        (tmp10.add(tmp11).shl(PASS1_BITS), tmp10.sub(tmp11).shl(PASS1_BITS))
    } else {
        (tmp10.add(tmp11).descale(PASS1_BITS), tmp10.sub(tmp11).descale(PASS1_BITS))
    };
    let z1 = tmp12.add(tmp13).mul(FIX_0_541196100);
    let out2 = z1.add(tmp13.mul(FIX_0_765366865)).descale(bits);
    let out6 = z1.add(tmp12.mul(-FIX_1_847759065)).descale(bits);

    let z1 = tmp4.add(tmp7);
    let z2 = tmp5.add(tmp6);
    let z3 = tmp4.add(tmp6);
    let z4 = tmp5.add(tmp7);
    let z5 = z3.add(z4).mul(FIX_1_175875602);
    let tmp4 = tmp4.mul(FIX_0_298631336);
    let tmp5 = tmp5.mul(FIX_2_053119869);
    let tmp6 = tmp6.mul(FIX_3_072711026);
    let tmp7 = tmp7.mul(FIX_1_501321110);
    let z1 = z1.mul(-FIX_0_899976223);
    let z2 = z2.mul(-FIX_2_562915447);
    let z3 = z3.mul(-FIX_1_961570560).add(z5);
    let z4 = z4.mul(-FIX_0_390180644).add(z5);
    let out7 = tmp4.add(z1).add(z3).descale(bits);
    let out5 = tmp5.add(z2).add(z4).descale(bits);
    let out3 = tmp6.add(z2).add(z3).descale(bits);
    let out1 = tmp7.add(z1).add(z4).descale(bits);
    [out0, out1, out2, out3, out4, out5, out6, out7]
}

/// One block: its samples (row by row) transformed, quantised and put in zigzag order, with the
/// bit mask of its nonzero coefficients (bit `i` for zigzag index `i`).
#[inline(always)]
fn transform<V: Vector>(samples: &[[u8; 8]; 8], divisors: &Divisors, zigzag: &mut [i16; 64]) -> u64 {
    // First pass along rows: lane r is row r, so x[j] is column j.
    // Written out: a closure would be compiled apart, without the caller's target features.
    let [r0, r1, r2, r3, r4, r5, r6, r7] = samples;
    let rows = [V::load(r0), V::load(r1), V::load(r2), V::load(r3), V::load(r4), V::load(r5), V::load(r6), V::load(r7)];
    let columns = V::transpose(rows);
    // Frequency u across each row r; the second pass runs down the columns: lane u.
    let coefficients = fdct_pass(V::transpose(fdct_pass(columns, true)), false);
    let mut natural = [[0i16; 8]; 8];
    for (v, row) in natural.iter_mut().enumerate() {
        *row = coefficients[v].quantize(&divisors.reciprocal[v], &divisors.correction[v], &divisors.scale[v]);
    }
    for (i, slot) in zigzag.iter_mut().enumerate() {
        let at = usize::from(NATURAL[i]) & 63;
        *slot = natural[at / 8][at % 8];
    }
    nonzero_mask(zigzag)
}

/// Bit `i` set where value `i` is not zero.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn nonzero_mask(values: &[i16; 64]) -> u64 {
    use std::arch::x86_64::*;
    let mut mask = 0u64;
    for (k, sixteen) in values.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of x86_64; the loads read the sixteen values, eight each.
        let zeros = unsafe {
            let low = _mm_loadu_si128(sixteen.as_ptr().cast());
            let high = _mm_loadu_si128(sixteen.as_ptr().add(8).cast());
            let zero = _mm_setzero_si128();
            _mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(low, zero), _mm_cmpeq_epi16(high, zero)))
        };
        mask |= u64::from(!zeros as u16) << (16 * k);
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
fn nonzero_mask(values: &[i16; 64]) -> u64 {
    values.iter().enumerate().fold(0, |mask, (i, &value)| mask | u64::from(value != 0) << i)
}

/// Counts a block's symbols: its DC difference's size from `prediction` (then its DC), and its
/// AC codes: runs of 16 zeros, run/size pairs, the end of the block.
#[inline(always)]
fn count_symbols(block: &[i16; 64], mask: u64, prediction: &mut i32, counts: &mut Counts) {
    let dc = i32::from(block[0]);
    counts.dc[size_of(dc - *prediction) as usize] += 1;
    *prediction = dc;
    let mut runs_of_16 = 0;
    let mut at = 0;
    for_each_ac(mask, |zeros, next| {
        at = next;
        runs_of_16 += zeros / 16;
        let size = size_of(i32::from(block[at as usize]));
        counts.ac[(((zeros % 16) << 4) | size) as usize] += 1;
    });
    counts.ac[0xF0] += u64::from(runs_of_16);
    if at < 63 {
        counts.ac[0] += 1;
    }
}

/// Calls `coefficient` with the zeros before each nonzero AC coefficient of a block and its
/// index, in order, from the block's nonzero `mask`. Each step clears the lowest bit left:
/// the loop carries one instruction from one coefficient to the next, not a count of its
/// trailing zeros and two shifts.
#[inline(always)]
fn for_each_ac(mask: u64, mut coefficient: impl FnMut(u32, u32)) {
    let (mut rest, mut last) = (mask & !1, 0);
    while rest != 0 {
        let at = rest.trailing_zeros();
        rest &= rest - 1;
        coefficient(at - last - 1, at);
        last = at;
    }
}

/// The 8x8 samples of a plane from (`x`, `y`), the last column and row repeated past its edge.
#[inline(always)]
fn samples(plane: &[u8], (width, height): (usize, usize), x: usize, y: usize) -> [[u8; 8]; 8] {
    let mut block = [[0u8; 8]; 8];
    for (r, out) in block.iter_mut().enumerate() {
        let row = &plane[(y + r).min(height - 1) * width..][..width];
        match row.get(x..x + 8) {
            Some(eight) => out.copy_from_slice(eight),
            None => *out = std::array::from_fn(|c| row[(x + c).min(width - 1)]),
        }
    }
    block
}

/// The bits of a value's magnitude: JPEG's *size* category.
#[inline(always)]
fn size_of(value: i32) -> u32 {
    32 - value.unsigned_abs().leading_zeros()
}

/// An optimal Huffman code for these symbol counts, as libjpeg-turbo's `jpeg_gen_optimal_table`
/// builds it (the same ties broken the same way, so the same table): the counts of codes of
/// each length 1 to 16, and the symbols in code order.
fn optimal_table(counts: &[u64; 256]) -> ([u8; 16], Vec<u8>) {
    const MAX_LENGTH: usize = 32;
    // The symbols that occur, and a pseudo-symbol 256 that keeps the all-ones code unused.
    let mut symbols: Vec<usize> = (0..256).filter(|&s| counts[s] > 0).collect();
    symbols.push(256);
    let mut freq: Vec<u64> = symbols.iter().map(|&s| if s == 256 { 1 } else { counts[s] }).collect();
    let n = symbols.len();
    let mut code_size = vec![0usize; n];
    let mut others = vec![usize::MAX; n];
    const MERGED: u64 = 1_000_000_001;
    loop {
        // The two smallest counts; of equal counts the later symbol first.
        let (mut c1, mut c2) = (usize::MAX, usize::MAX);
        let (mut v, mut v2) = (1_000_000_000u64, 1_000_000_000u64);
        for (i, &f) in freq.iter().enumerate() {
            if f <= v2 {
                if f <= v {
                    (c2, v2) = (c1, v);
                    (c1, v) = (i, f);
                } else {
                    (c2, v2) = (i, f);
                }
            }
        }
        if c2 == usize::MAX {
            break;
        }
        freq[c1] += freq[c2];
        freq[c2] = MERGED;
        for start in [c1, c2] {
            let mut c = start;
            code_size[c] += 1;
            while others[c] != usize::MAX {
                c = others[c];
                code_size[c] += 1;
            }
            if start == c1 {
                others[c] = c2;
            }
        }
    }
    let mut bits = [0u32; MAX_LENGTH + 1];
    for &size in &code_size {
        bits[size.min(MAX_LENGTH)] += 1;
    }
    let mut position = [0usize; MAX_LENGTH + 1];
    let mut p = 0;
    for length in 1..=MAX_LENGTH {
        position[length] = p;
        p += bits[length] as usize;
    }
    // No code longer than 16 bits (K.2's adjustment).
    let mut i = MAX_LENGTH;
    while i > 16 {
        while bits[i] > 0 {
            let mut j = i - 2;
            while bits[j] == 0 {
                j -= 1;
            }
            bits[i] -= 2;
            bits[i - 1] += 1;
            bits[j + 1] += 2;
            bits[j] -= 1;
        }
        i -= 1;
    }
    // The pseudo-symbol's code goes from the longest length.
    while bits[i] == 0 {
        i -= 1;
    }
    bits[i] -= 1;
    let mut values = vec![0u8; n - 1];
    for k in 0..n - 1 {
        let slot = &mut position[code_size[k]];
        if let Some(value) = values.get_mut(*slot) {
            *value = symbols[k] as u8;
        }
        *slot += 1;
    }
    (std::array::from_fn(|l| bits[l + 1] as u8), values)
}

/// A table's codes by symbol: code (bits 0..16) and length (bits 16..), canonical order.
fn codes(bits: &[u8; 16], values: &[u8]) -> [u32; 256] {
    let mut codes = [0u32; 256];
    let (mut code, mut k) = (0u32, 0usize);
    for (l, &count) in bits.iter().enumerate() {
        for _ in 0..count {
            if let Some(&symbol) = values.get(k) {
                codes[usize::from(symbol)] = code | ((l as u32 + 1) << 16);
            }
            code += 1;
            k += 1;
        }
        code <<= 1;
    }
    codes
}

/// Entropy-coded output, a zero byte stuffed after each 0xFF. After each code the whole bytes
/// are written, eight at once into room reserved ahead, without a branch on the data but a
/// rare one for a 0xFF among them.
struct BitWriter {
    /// Written up to `at`; zeros past it, the room [`BitWriter::reserve`] keeps.
    out: Vec<u8>,
    at: usize,
    /// The bits not yet written, the last `count` (at most 7 between codes).
    word: u64,
    count: u32,
}

/// The most bytes one block can take: 64 codes of at most 16 + 11 bits, each byte stuffed,
/// and the eight a write touches.
const BLOCK_BYTES: usize = 64 * 27 / 8 * 2 + 8;

impl BitWriter {
    fn new(out: Vec<u8>) -> BitWriter {
        BitWriter { at: out.len(), out, word: 0, count: 0 }
    }

    /// Room for one more block.
    #[inline(always)]
    fn reserve(&mut self) {
        if self.out.len() - self.at < BLOCK_BYTES {
            self.out.resize(self.out.len() * 2 + BLOCK_BYTES, 0);
        }
    }

    /// Appends the low `length` bits of `bits` (`length` 1 to 32).
    #[inline(always)]
    fn put(&mut self, bits: u32, length: u32) {
        self.word = (self.word << length) | u64::from(bits);
        self.count += length;
        // At most 39 bits: the first `whole` bytes of `aligned` are complete.
        let aligned = self.word << (64 - self.count);
        let whole = self.count / 8;
        let complete = !(u64::MAX >> (8 * whole));
        // A zero byte in the complement (or a false alarm past one), where a 0xFF is.
        let inverse = !aligned;
        let ff = inverse.wrapping_sub(0x0101_0101_0101_0101) & aligned & 0x8080_8080_8080_8080 & complete;
        if ff == 0 {
            if let Some(room) = self.out.get_mut(self.at..self.at + 8) {
                room.copy_from_slice(&aligned.to_be_bytes());
            }
            self.at += whole as usize;
        } else {
            self.stuffed(aligned, whole);
        }
        self.count -= 8 * whole;
    }

    /// The bytes of a write with a 0xFF among them, one at a time.
    #[cold]
    #[inline(never)]
    fn stuffed(&mut self, aligned: u64, whole: u32) {
        for &byte in &aligned.to_be_bytes()[..whole as usize] {
            let stuffing: &[u8] = if byte == 0xFF { &[0xFF, 0] } else { &[byte] };
            for &b in stuffing {
                if let Some(slot) = self.out.get_mut(self.at) {
                    *slot = b;
                }
                self.at += 1;
            }
        }
    }

    /// Pads the last byte with one bits, as libjpeg does, and returns the output.
    fn finish(mut self) -> Vec<u8> {
        self.reserve();
        if self.count > 0 {
            let pad = 8 - self.count;
            self.put((1 << pad) - 1, pad);
        }
        self.out.truncate(self.at);
        self.out
    }
}

/// A coded value: its size category's code, then its low bits (negative values minus one).
#[inline(always)]
fn put_value(writer: &mut BitWriter, code: u32, value: i32) {
    let size = size_of(value);
    let low = (value - i32::from(value < 0)) as u32 & ((1u32 << size) - 1);
    let length = code >> 16;
    writer.put(((code & 0xFFFF) << size) | low, length + size);
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// Symbol counts of a table pair (DC size categories, AC run/size symbols).
struct Counts {
    dc: [u64; 256],
    ac: [u64; 256],
}

/// Every block of the image, MCU by MCU (four luma blocks, then Cb and Cr), transformed and
/// quantised in zigzag order with its nonzero mask, and its symbols counted (luma, chroma);
/// dummy blocks as libjpeg makes them.
#[inline(always)]
fn transform_image<V: Vector>(
    luma: &[u8],
    cb: &[u8],
    cr: &[u8],
    (width, height): (usize, usize),
    divisors: &[Divisors; 2],
    counts: &mut [Counts; 2],
) -> (Vec<[i16; 64]>, Vec<u64>) {
    let chroma = (width.div_ceil(2), height.div_ceil(2));
    let (mcus_x, mcus_y) = (width.div_ceil(16), height.div_ceil(16));
    let (luma_blocks_x, luma_blocks_y) = (width.div_ceil(8), height.div_ceil(8));
    let count = mcus_x * mcus_y * 6;
    let mut blocks = vec![[0i16; 64]; count];
    let mut masks = vec![0u64; count];
    let mut index = 0;
    let mut predictions = [0i32; 3];
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            for b in 0..4 {
                let (bx, by) = (mx * 2 + (b & 1), my * 2 + (b >> 1));
                if bx < luma_blocks_x && by < luma_blocks_y {
                    let block = samples(luma, (width, height), bx * 8, by * 8);
                    masks[index] = transform::<V>(&block, &divisors[0], &mut blocks[index]);
                } else {
                    // Past the bottom: the DC of the MCU's top right block; past the right
                    // edge: of the block to the left.
                    let from = if by >= luma_blocks_y { index - b + 1 } else { index - 1 };
                    blocks[index][0] = blocks[from][0];
                    masks[index] = u64::from(blocks[index][0] != 0);
                }
                count_symbols(&blocks[index], masks[index], &mut predictions[0], &mut counts[0]);
                index += 1;
            }
            for (c, plane) in [cb, cr].into_iter().enumerate() {
                let block = samples(plane, chroma, mx * 8, my * 8);
                masks[index] = transform::<V>(&block, &divisors[1], &mut blocks[index]);
                count_symbols(&blocks[index], masks[index], &mut predictions[1 + c], &mut counts[1]);
                index += 1;
            }
        }
    }

    (blocks, masks)
}

/// A 4:2:0 baseline JPEG with optimised Huffman tables: `luma` is `width` x `height` samples,
/// `cb` and `cr` half that each way (rounded up); quality 1 to 100. The caller checks the
/// sizes (`encode::encode_jpeg_ycc_by`); a plane too short would panic here.
pub fn encode_420(luma: &[u8], cb: &[u8], cr: &[u8], size: (usize, usize), quality: u8) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
    {
        // SAFETY: the CPU has the features.
        return unsafe { encode_avx2(luma, cb, cr, size, quality) };
    }
    encode::<[i32; 8]>(luma, cb, cr, size, quality)
}

/// [`encode_420`] with AVX2 for the transform, and BMI and LZCNT for the bit twiddling of the
/// coding (bit counts and variable shifts in one instruction each).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt")]
fn encode_avx2(luma: &[u8], cb: &[u8], cr: &[u8], size: (usize, usize), quality: u8) -> Vec<u8> {
    encode::<Avx2>(luma, cb, cr, size, quality)
}

#[inline(always)]
fn encode<V: Vector>(luma: &[u8], cb: &[u8], cr: &[u8], (width, height): (usize, usize), quality: u8) -> Vec<u8> {
    let tables = [quant_table(&LUMINANCE, quality), quant_table(&CHROMINANCE, quality)];
    let divisors = [Divisors::new(&tables[0]), Divisors::new(&tables[1])];
    let mut counts = [Counts { dc: [0; 256], ac: [0; 256] }, Counts { dc: [0; 256], ac: [0; 256] }];
    let (blocks, masks) = transform_image::<V>(luma, cb, cr, (width, height), &divisors, &mut counts);
    let table_of = |i: usize| usize::from(i % 6 >= 4);
    let huffman: Vec<([u8; 16], Vec<u8>)> =
        [&counts[0].dc, &counts[0].ac, &counts[1].dc, &counts[1].ac].into_iter().map(optimal_table).collect();

    // The headers as libjpeg-turbo writes them.
    let mut out = Vec::with_capacity(width * height / 4 + 1024);
    out.extend_from_slice(&[0xFF, 0xD8]);
    segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    for (id, table) in tables.iter().enumerate() {
        let mut body = vec![id as u8];
        body.extend((0..64).map(|i| table[usize::from(NATURAL[i])] as u8));
        segment(&mut out, 0xDB, &body);
    }
    let mut frame = vec![8];
    frame.extend_from_slice(&(height as u16).to_be_bytes());
    frame.extend_from_slice(&(width as u16).to_be_bytes());
    frame.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    segment(&mut out, 0xC0, &frame);
    for (k, (bits, values)) in huffman.iter().enumerate() {
        let mut body = vec![((k as u8 & 1) << 4) | (k as u8 >> 1)];
        body.extend_from_slice(bits);
        body.extend_from_slice(values);
        segment(&mut out, 0xC4, &body);
    }
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);

    // The entropy-coded data.
    let codes: Vec<[u32; 256]> = huffman.iter().map(|(bits, values)| codes(bits, values)).collect();
    let mut writer = BitWriter::new(out);
    let mut last = [0i32; 3];
    for (i, (block, &mask)) in blocks.iter().zip(&masks).enumerate() {
        let (table, component) = (table_of(i), (i % 6).saturating_sub(3));
        let (dc_codes, ac_codes) = (&codes[table * 2], &codes[table * 2 + 1]);
        writer.reserve();
        let dc = i32::from(block[0]);
        let difference = dc - last[component];
        last[component] = dc;
        put_value(&mut writer, dc_codes[size_of(difference) as usize], difference);
        let mut at = 0;
        for_each_ac(mask, |zeros, next| {
            at = next;
            for _ in 0..zeros / 16 {
                let zrl = ac_codes[0xF0];
                writer.put(zrl & 0xFFFF, zrl >> 16);
            }
            let value = i32::from(block[at as usize]);
            put_value(&mut writer, ac_codes[(((zeros % 16) << 4) | size_of(value)) as usize], value);
        });
        if at < 63 {
            let eob = ac_codes[0];
            writer.put(eob & 0xFFFF, eob >> 16);
        }
    }
    let mut out = writer.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libjpeg-turbo's file for the same planes and quality.
    fn libjpeg_turbo(luma: &[u8], cb: &[u8], cr: &[u8], (width, height): (usize, usize), quality: u8) -> Vec<u8> {
        let options = crate::engine::encode::EncodeOptions { quality, progressive: false, lossless: false };
        crate::engine::encode::encode_jpeg_ycc_by(luma, cb, cr, (width, height), options, false).expect("libjpeg-turbo")
    }

    /// Planes of `width` x `height` from a seed: smooth gradients with noise of `noise` levels.
    fn planes(width: usize, height: usize, seed: u64, noise: u32) -> [Vec<u8>; 3] {
        let mut next = crate::engine::xorshift(seed | 1);
        let mut plane = |w: usize, h: usize, phase: usize| {
            (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    let base = (x * 255 / w.max(1) + y * 97 / h.max(1) + phase) % 256;
                    let jitter = if noise == 0 { 0 } else { (next() % u64::from(noise)) as usize };
                    ((base + jitter) % 256) as u8
                })
                .collect::<Vec<u8>>()
        };
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        [plane(width, height, 0), plane(cw, ch, 60), plane(cw, ch, 180)]
    }

    #[test]
    fn the_files_are_libjpeg_turbos_byte_for_byte() {
        // Sizes: whole MCUs, odd, a column or row of dummy blocks, one pixel; qualities across
        // the range, with flat, smooth and noisy content (long zero runs to large values).
        let sizes = [(16, 16), (1, 1), (7, 3), (24, 40), (17, 9), (40, 24), (400, 250), (33, 65), (250, 401)];
        let mut checked = 0;
        for (k, &(width, height)) in sizes.iter().enumerate() {
            for (quality, noise) in [(80, 0), (80, 24), (1, 256), (50, 8), (89, 256), (100, 3), (23, 40)] {
                let [y, cb, cr] = planes(width, height, k as u64 * 31 + u64::from(quality), noise);
                let ours = encode_420(&y, &cb, &cr, (width, height), quality);
                let theirs = libjpeg_turbo(&y, &cb, &cr, (width, height), quality);
                assert!(
                    ours == theirs,
                    "{width}x{height} q{quality} noise {noise}: {} against {} bytes",
                    ours.len(),
                    theirs.len()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, sizes.len() * 7);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any size, quality and content: libjpeg-turbo's bytes.
        #[test]
        fn any_planes_make_libjpeg_turbos_file(
            width in 1usize..72,
            height in 1usize..72,
            quality in 1u8..=100,
            seed in proptest::prelude::any::<u64>(),
            noise in 0u32..=256,
        ) {
            let [y, cb, cr] = planes(width, height, seed, noise);
            let ours = encode_420(&y, &cb, &cr, (width, height), quality);
            proptest::prop_assert!(ours == libjpeg_turbo(&y, &cb, &cr, (width, height), quality));
        }
    }

    #[test]
    fn both_transforms_give_the_same_coefficients() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let divisors = Divisors::new(&quant_table(&LUMINANCE, 95));
            for seed in 0..200u64 {
                let [plane, ..] = planes(8, 8, seed, if seed % 2 == 0 { 256 } else { 16 });
                let samples: [[u8; 8]; 8] = std::array::from_fn(|r| std::array::from_fn(|c| plane[r * 8 + c]));
                let (mut plain, mut avx2) = ([0i16; 64], [0i16; 64]);
                let mask = transform::<[i32; 8]>(&samples, &divisors, &mut plain);
                // SAFETY: the CPU has AVX2.
                let mask_avx2 = unsafe { transform_avx2_for_test(&samples, &divisors, &mut avx2) };
                assert_eq!((mask, plain), (mask_avx2, avx2), "seed {seed}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn transform_avx2_for_test(samples: &[[u8; 8]; 8], divisors: &Divisors, zigzag: &mut [i16; 64]) -> u64 {
        transform::<Avx2>(samples, divisors, zigzag)
    }

    #[test]
    fn an_optimal_table_with_codes_past_16_bits_is_cut_to_16() {
        // Counts of Fibonacci numbers make a code as deep as there are symbols.
        let mut counts = [0u64; 256];
        let (mut a, mut b) = (1u64, 1u64);
        for count in counts.iter_mut().take(30) {
            *count = a;
            (a, b) = (b, a + b);
        }
        let (bits, values) = optimal_table(&counts);
        assert_eq!(bits.iter().map(|&b| usize::from(b)).sum::<usize>(), 30);
        assert_eq!(values.len(), 30);
        // A valid prefix code with the all-ones code unused (Kraft sum below one).
        let kraft: f64 = bits.iter().enumerate().map(|(l, &n)| f64::from(n) / f64::from(1u32 << (l + 1))).sum();
        assert!(kraft < 1.0, "{kraft}");
        // Every symbol once, and none longer than 16 bits where the plain algorithm went to 29.
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..30).collect::<Vec<u8>>());
        assert!(bits[15] > 0, "{bits:?}");
    }
}
