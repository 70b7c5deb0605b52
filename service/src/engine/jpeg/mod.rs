//! Pixelmill's own JPEG decoder, for shrink on load: baseline and progressive, 8-bit, gray or
//! YCbCr with sampling factors of 1 and 2 (4:4:4, 4:2:2, 4:2:0, 4:4:0), restart markers, at 1/2,
//! 1/4 and 1/8 of the stored size. Everything else (full size, arithmetic coding, 12-bit,
//! lossless, CMYK and RGB colour, other sampling) stays with libjpeg-turbo: [`supports`] says
//! which, from the headers alone.
//!
//! Why a decoder of our own: at a reduced scale most of the file need not be decoded. At 1/8
//! every block becomes one pixel, its DC coefficient, so a progressive file's AC scans are
//! skipped without decoding a bit of them, and a baseline file's AC codes are only walked over.
//! libjpeg-turbo decodes a progressive file whole at every scale. And where the output keeps
//! chroma at half its resolution, chroma is decoded at half the luma's resolution
//! ([`Chroma::Half`]): a 4:4:4 file's at 1/4 is its DC values, and a progressive file's chroma
//! AC scans are skipped too; a 4:2:0 file's takes transforms a quarter the area of
//! libjpeg-turbo's.
//!
//! Vocabulary: a *block* is 8x8 samples of one component; an *MCU* is the blocks of every
//! component of a scan that cover one area; a component's *size* here is the side of the square
//! its blocks shrink to (8 / shrink); *planes* are the decoded samples of each component, at that
//! size, before upsampling and colour conversion ([`output`]).

pub mod encoder;
mod entropy;
mod idct;
mod output;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use image::DynamicImage;

use crate::engine::decode::JpegLayout;
use crate::engine::error::EngineError;
use entropy::{BitReader, EntropyError, HuffmanTable, TableCache, Walks, extend};

/// Zigzag position to natural (row-major) position, with 16 extra entries so that a corrupt
/// run past the end of a block lands on the last coefficient rather than out of bounds.
const NATURAL: [u8; 80] = {
    let zigzag: [u8; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
        21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
        61, 54, 47, 55, 62, 63,
    ];
    let mut table = [63u8; 80];
    let mut i = 0;
    while i < 64 {
        table[i] = zigzag[i];
        i += 1;
    }
    table
};

/// Whether this decoder handles a file with these headers at 1/`shrink` (colour as libjpeg-turbo
/// reads it: `ycc_or_gray` is false for RGB, CMYK and YCCK).
pub fn supports(layout: &JpegLayout, ycc_or_gray: bool, shrink: u32) -> bool {
    matches!(shrink, 2 | 4 | 8)
        && ycc_or_gray
        && matches!(layout.sof, 0xC0..=0xC2)
        && layout.precision == 8
        && matches!(layout.sampling.len(), 1 | 3)
        && layout.sampling.iter().all(|&(h, v)| matches!(h, 1 | 2) && matches!(v, 1 | 2))
}

/// Whether this decoder is faster than libjpeg-turbo at 1/`shrink` for such a file, as
/// measured (`cargo bench -p pixelmill-benches --bench engine -- decode/`, benches/RESULTS.md):
/// at 1/8 and 1/4 always, at 1/2 for progressive files. A progressive file's AC scans are not
/// read at 1/8, and elsewhere only the coefficients the reduced transform reads are kept, the
/// others' refinement bits read past in bulk; a baseline file's AC codes past those are walked
/// over several at a lookup. At 1/2 a baseline file's 4x4 transforms dominate, and libjpeg-
/// turbo's SIMD ones are faster.
pub fn is_faster(layout: &JpegLayout, shrink: u32) -> bool {
    shrink == 8 || shrink == 4 || (shrink == 2 && layout.progressive)
}

/// The bytes [`decode`] holds beyond the pixels it returns: the planes, for a progressive file
/// the coefficients (only the DC ones at 1/8), and the unstuffed copy of the scan it reads
/// (no larger than the file, and a position for each restart, at most one an MCU).
pub fn working_bytes(layout: &JpegLayout, width: u32, height: u32, shrink: u32) -> u64 {
    let size = u64::from(8 / shrink.clamp(1, 8));
    let h_max = u64::from(layout.sampling.iter().map(|s| s.0).max().unwrap_or(1));
    let v_max = u64::from(layout.sampling.iter().map(|s| s.1).max().unwrap_or(1));
    let mcus_x = u64::from(width).div_ceil(8 * h_max);
    let mcus_y = u64::from(height).div_ceil(8 * v_max);
    // 128 bytes of coefficients a block, in whole MCUs.
    let blocks = layout.coefficient_bytes(width, height) / 128;
    // Chroma subsampled on both axes may be decoded at twice the side (see `Component::size`).
    let side = |h: u8, v: u8| {
        let scaled_up = h_max / u64::from(h) == 2 && v_max / u64::from(v) == 2;
        if scaled_up { (size * 2).min(8) } else { size }
    };
    let planes: u64 = layout
        .sampling
        .iter()
        .map(|&(h, v)| mcus_x * u64::from(h) * mcus_y * u64::from(v) * side(h, v) * side(h, v))
        .sum();
    let largest = layout.sampling.iter().map(|&(h, v)| side(h, v)).max().unwrap_or(size);
    let unstuffed = layout.bytes + 8 * mcus_x * mcus_y;
    let coefficients = match (layout.progressive, shrink) {
        (false, _) => 0,
        (true, 8) => blocks * 2,
        // The kept values and the mask of each block (see `Coefficients::Low`).
        (true, _) => blocks * (8 + 2 * kept_for(largest as usize) as u64),
    };
    // Row buffers of the colour conversion: a few rows of the output's width.
    let rows = 8 * (u64::from(width).div_ceil(u64::from(shrink.max(1))) + 16);
    planes + coefficients + unstuffed + rows
}

/// A frame's component, and where its blocks are.
#[derive(Debug, Clone)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant_table: usize,
    /// Blocks across and down, in whole MCUs (what interleaved scans code).
    blocks_x: usize,
    blocks_y: usize,
    /// Blocks that hold image samples (what a scan of this component alone codes).
    coded_x: usize,
    coded_y: usize,
    /// The side its blocks are decoded to: the frame's, or twice that for chroma subsampled on
    /// both axes, which is then not upsampled (as libjpeg-turbo scales it), or half that for
    /// 4:4:4 chroma at [`Chroma::Half`].
    size: usize,
    /// Output pixels per decoded sample on each axis (1 or 2).
    rx: usize,
    ry: usize,
    /// Samples across and down at the decoded scale.
    width: usize,
    height: usize,
}

#[derive(Debug, Clone)]
struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    components: Vec<Component>,
    mcus_x: usize,
    mcus_y: usize,
}

/// A scan's header.
struct Scan {
    /// Indices into the frame's components, with their DC and AC table numbers.
    components: Vec<(usize, usize, usize)>,
    start: usize,
    end: usize,
    high: u32,
    low: u32,
}

/// The decoded samples of one component.
struct Plane {
    data: Vec<u8>,
    stride: usize,
}

/// Where the coefficients live while a progressive file is read.
enum Coefficients {
    /// At 1/8: one DC value per block.
    Dc(Vec<Vec<i16>>),
    /// At 1/2 and 1/4, for each component: the coefficients its transform reads (zigzag 0 up to
    /// [`LAST_READ`] of its size), `kept` a block in zigzag order, and for every block a mask of
    /// the zigzag positions that are nonzero. The mask is all a refinement scan needs of the
    /// coefficients that are not kept: whether to read a correction bit for each, and which
    /// zeros a run counts. So the store is a fraction of 64 values a block, and the correction
    /// bits of coefficients not kept are skipped in bulk.
    Low { kept: Vec<usize>, values: Vec<Vec<i16>>, masks: Vec<Vec<u64>> },
}

/// Coefficients kept a block by a transform to `size` x `size`.
fn kept_for(size: usize) -> usize {
    LAST_READ[size.trailing_zeros() as usize & 3] + 1
}

struct Decoder<'a> {
    bytes: &'a [u8],
    shrink: usize,
    size: usize,
    chroma: Chroma,
    quant: [Option<[u16; 64]>; 4],
    dc_tables: [Option<Arc<HuffmanTable>>; 4],
    ac_tables: [Option<Arc<HuffmanTable>>; 4],
    restart_interval: usize,
    frame: Option<Frame>,
    planes: Vec<Plane>,
    coefficients: Option<Coefficients>,
}

/// The resolution chroma is decoded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// As libjpeg-turbo scales it: the luma's, or (subsampled) what the file holds.
    Full,
    /// Half the decoded luma's on both axes, where [`halves_chroma`] says the layout allows it,
    /// upsampled again before colour conversion as 4:2:0 chroma is. For an output whose own
    /// chroma is subsampled 4:2:0 (and no larger than the decoded luma) this is all the chroma
    /// it keeps. A 4:4:4 file's chroma then comes from a transform half the side: at 1/4 its DC
    /// values alone, so a progressive file's chroma AC scans are skipped unread. A 4:2:0 file's
    /// chroma comes from a transform the luma's size instead of twice it: at 1/4 2x2 instead of
    /// 4x4, at 1/8 its DC values.
    Half,
}

/// Whether [`Chroma::Half`] changes what is decoded for this layout at 1/`shrink`: 4:4:4 at 1/4
/// or 1/2 (its chroma then comes from a transform half the side); 4:2:0 at 1/2 and 1/4, and a
/// baseline 4:2:0 file at 1/8 (its chroma, decoded at twice the luma's scale as libjpeg-turbo
/// decodes it, then comes at the luma's scale; a progressive file at 1/8 has only the DC values
/// there already).
pub fn halves_chroma(layout: &JpegLayout, shrink: u32) -> bool {
    match layout.sampling.as_slice() {
        [(1, 1), (1, 1), (1, 1)] => matches!(shrink, 2 | 4),
        [(2, 2), (1, 1), (1, 1)] => matches!(shrink, 2 | 4) || (shrink == 8 && !layout.progressive),
        _ => false,
    }
}

/// Decodes at 1/`shrink`; the caller has checked [`supports`] and the limits. Returns RGB or
/// gray pixels of `ceil(width / shrink)` x `ceil(height / shrink)`.
pub fn decode(bytes: &[u8], shrink: u32, max_scans: u32) -> Result<DynamicImage, EngineError> {
    decode_with(bytes, shrink, Chroma::Full, max_scans)
}

/// [`decode`], with chroma at the resolution `chroma` asks for.
pub fn decode_with(bytes: &[u8], shrink: u32, chroma: Chroma, max_scans: u32) -> Result<DynamicImage, EngineError> {
    let (frame, planes) = Decoder::new(bytes, shrink, chroma).planes(max_scans)?;
    output::to_image(&frame, &planes, shrink as usize)
}

/// One plane of [`decode_ycc`]: `width` x `height` samples, rows one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YccPlane {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// Decodes at 1/`shrink` with [`Chroma::Half`] to the Y, Cb and Cr planes, before upsampling
/// and colour conversion: luma `ceil(width / shrink)` x `ceil(height / shrink)`, chroma half
/// that, rounded up. For a layout [`halves_chroma`] accepts at this shrink (the caller checks);
/// any other gives an error rather than planes of other sizes.
pub fn decode_ycc(bytes: &[u8], shrink: u32, max_scans: u32) -> Result<[YccPlane; 3], EngineError> {
    let (frame, planes) = Decoder::new(bytes, shrink, Chroma::Half).planes(max_scans)?;
    let halved = frame.components.len() == 3 && frame.components[1..].iter().all(|c| (c.rx, c.ry) == (2, 2));
    let Ok([luma, cb, cr]) = <[Plane; 3]>::try_from(planes) else {
        return Err(corrupt("not three components"));
    };
    if !halved {
        return Err(corrupt("chroma not sampled at half the luma's resolution"));
    }
    let compact = |mut plane: Plane, component: &Component| {
        let (width, height) = (component.width, component.height);
        for row in 1..height {
            plane.data.copy_within(row * plane.stride..row * plane.stride + width, row * width);
        }
        plane.data.truncate(width * height);
        YccPlane { data: plane.data, width, height }
    };
    let [y_c, cb_c, cr_c] = [&frame.components[0], &frame.components[1], &frame.components[2]];
    Ok([compact(luma, y_c), compact(cb, cb_c), compact(cr, cr_c)])
}

fn corrupt(detail: impl ToString) -> EngineError {
    EngineError::corrupt("jpeg", detail)
}

fn entropy_error(error: EntropyError) -> EngineError {
    match error {
        EntropyError::BadCode => corrupt("bad Huffman code in the entropy-coded data"),
        EntropyError::Truncated => corrupt("the entropy-coded data ends early"),
    }
}

fn be16(body: &[u8], at: usize) -> Result<usize, EngineError> {
    match body.get(at..at + 2) {
        Some(pair) => Ok(usize::from(u16::from_be_bytes([pair[0], pair[1]]))),
        None => Err(corrupt("a marker segment is shorter than its fields")),
    }
}

impl<'a> Decoder<'a> {
    fn new(bytes: &'a [u8], shrink: u32, chroma: Chroma) -> Decoder<'a> {
        Decoder {
            bytes,
            shrink: shrink as usize,
            size: 8 / shrink as usize,
            chroma,
            quant: [None; 4],
            dc_tables: Default::default(),
            ac_tables: Default::default(),
            restart_interval: 0,
            frame: None,
            planes: Vec::new(),
            coefficients: None,
        }
    }

    /// Decodes the whole file into its planes.
    fn planes(mut self, max_scans: u32) -> Result<(Frame, Vec<Plane>), EngineError> {
        self.run(max_scans)?;
        let frame = self.frame.take().ok_or_else(|| corrupt("no frame header"))?;
        if let Some(coefficients) = self.coefficients.take() {
            self.planes = transform_all(&frame, &coefficients, &self.quant)?;
        }
        Ok((frame, self.planes))
    }

    /// Walks the markers, decoding each scan, to EOI.
    fn run(&mut self, max_scans: u32) -> Result<(), EngineError> {
        let bytes = self.bytes;
        if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(corrupt("no start-of-image marker"));
        }
        let mut pos = 2;
        let mut scans = 0u32;
        loop {
            // Find the marker: 0xFF, any fill bytes, a code.
            while bytes.get(pos).is_some_and(|&b| b != 0xFF) {
                pos += 1;
            }
            while bytes.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let Some(&marker) = bytes.get(pos) else {
                return Err(corrupt("the file ends before its end-of-image marker"));
            };
            pos += 1;
            match marker {
                0xD9 => break,
                0x00 | 0x01 | 0xD0..=0xD7 => continue,
                _ => {}
            }
            let length = be16(bytes, pos)?;
            let body = bytes
                .get(pos + 2..pos + length)
                .filter(|_| length >= 2)
                .ok_or_else(|| corrupt("a marker segment runs past the end"))?;
            pos += length;
            match marker {
                0xC0..=0xC2 => self.read_frame(marker, body)?,
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(corrupt("a second frame of another kind"));
                }
                0xC4 => self.read_huffman_tables(body)?,
                0xDB => self.read_quant_tables(body)?,
                0xDD => self.restart_interval = be16(body, 0)?,
                0xDA => {
                    scans += 1;
                    if scans > max_scans {
                        return Err(EngineError::TooManyScans { scans, limit: max_scans });
                    }
                    let scan = self.read_scan_header(body)?;
                    pos = self.decode_scan(&scan, pos)?;
                }
                _ => {}
            }
        }
        if self.frame.is_none() || scans == 0 {
            return Err(corrupt("no scan before the end-of-image marker"));
        }
        Ok(())
    }

    fn read_frame(&mut self, marker: u8, body: &[u8]) -> Result<(), EngineError> {
        if self.frame.is_some() {
            return Err(corrupt("more than one frame header"));
        }
        if body.first() != Some(&8) {
            return Err(corrupt("not 8 bits per sample"));
        }
        let height = be16(body, 1)?;
        let width = be16(body, 3)?;
        let count = usize::from(*body.get(5).unwrap_or(&0));
        if width == 0 || height == 0 || !matches!(count, 1 | 3) || body.len() < 6 + 3 * count {
            return Err(corrupt("frame header"));
        }
        let mut components = Vec::with_capacity(count);
        for i in 0..count {
            let field = &body[6 + 3 * i..9 + 3 * i];
            let (h, v) = (usize::from(field[1] >> 4), usize::from(field[1] & 15));
            if !matches!(h, 1 | 2) || !matches!(v, 1 | 2) || field[2] > 3 {
                return Err(corrupt("sampling factors or quantisation table of a component"));
            }
            components.push(Component {
                id: field[0],
                h,
                v,
                quant_table: usize::from(field[2]),
                blocks_x: 0,
                blocks_y: 0,
                coded_x: 0,
                coded_y: 0,
                size: self.size,
                rx: 1,
                ry: 1,
                width: 0,
                height: 0,
            });
        }
        let h_max = components.iter().map(|c| c.h).max().unwrap_or(1);
        let v_max = components.iter().map(|c| c.v).max().unwrap_or(1);
        let mcus_x = width.div_ceil(8 * h_max);
        let mcus_y = height.div_ceil(8 * v_max);
        let progressive = marker == 0xC2;
        // At 1/8 a progressive file's chroma has only its DC coefficients to scale up from.
        let dc_only = progressive && self.shrink == 8;
        let half = self.chroma == Chroma::Half && count == 3;
        for (i, c) in components.iter_mut().enumerate() {
            let (samples_x, samples_y) = ((width * c.h).div_ceil(h_max), (height * c.v).div_ceil(v_max));
            c.coded_x = samples_x.div_ceil(8);
            c.coded_y = samples_y.div_ceil(8);
            c.blocks_x = mcus_x * c.h;
            c.blocks_y = mcus_y * c.v;
            (c.rx, c.ry) = (h_max / c.h, v_max / c.v);
            if c.rx == 2 && c.ry == 2 {
                // Chroma subsampled on both axes: at twice the luma's scale as libjpeg-turbo
                // decodes it, or at the luma's (half the luma's resolution) where only the DC
                // values are there or half chroma is asked for.
                if !dc_only && !half {
                    c.size = self.size * 2;
                    (c.rx, c.ry) = (1, 1);
                }
            } else if half && i > 0 && h_max == 1 && v_max == 1 && self.size >= 2 {
                // 4:4:4 chroma at half the luma's side, upsampled as 4:2:0 chroma is.
                c.size = self.size / 2;
                (c.rx, c.ry) = (2, 2);
            }
            c.width = (samples_x * c.size).div_ceil(8);
            c.height = (samples_y * c.size).div_ceil(8);
        }
        self.planes = components
            .iter()
            .map(|c| Plane { data: vec![0; c.blocks_x * c.size * c.blocks_y * c.size], stride: c.blocks_x * c.size })
            .collect();
        if progressive {
            self.coefficients = Some(if self.shrink == 8 {
                Coefficients::Dc(components.iter().map(|c| vec![0; c.blocks_x * c.blocks_y]).collect())
            } else {
                let kept: Vec<usize> = components.iter().map(|c| kept_for(c.size)).collect();
                Coefficients::Low {
                    values: components.iter().zip(&kept).map(|(c, k)| vec![0; c.blocks_x * c.blocks_y * k]).collect(),
                    // A component decoded one sample a block (its chroma at half) never reads
                    // its AC scans: no masks (an AC scan would find none and be refused).
                    masks: components
                        .iter()
                        .map(|c| vec![0; if c.size == 1 { 0 } else { c.blocks_x * c.blocks_y }])
                        .collect(),
                    kept,
                }
            });
            // The planes are made from the coefficients at the end.
            self.planes.clear();
        }
        self.frame = Some(Frame { width, height, progressive, components, mcus_x, mcus_y });
        Ok(())
    }

    fn read_huffman_tables(&mut self, mut body: &[u8]) -> Result<(), EngineError> {
        // A table that comes before the frame header gets every walk.
        let walks = match (self.frame.as_ref().is_some_and(|frame| frame.progressive), self.shrink) {
            (true, _) => Walks::None,
            (false, 8) => Walks::Skip,
            (false, _) => Walks::SkipAndPairs,
        };
        while !body.is_empty() {
            let class_and_id = body[0];
            let counts: [u8; 16] =
                body.get(1..17).and_then(|c| c.try_into().ok()).ok_or_else(|| corrupt("Huffman table"))?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = body.get(17..17 + total).ok_or_else(|| corrupt("Huffman table"))?;
            let ac = class_and_id >> 4 == 1;
            let table =
                TableCache::shared().table(&counts, symbols, ac, walks).ok_or_else(|| corrupt("Huffman table"))?;
            let id = usize::from(class_and_id & 15);
            match (class_and_id >> 4, id) {
                (0, 0..=3) => self.dc_tables[id] = Some(table),
                (1, 0..=3) => self.ac_tables[id] = Some(table),
                _ => return Err(corrupt("Huffman table class or number")),
            }
            body = &body[17 + total..];
        }
        Ok(())
    }

    fn read_quant_tables(&mut self, mut body: &[u8]) -> Result<(), EngineError> {
        while !body.is_empty() {
            let (precision, id) = (body[0] >> 4, usize::from(body[0] & 15));
            let len = if precision == 0 { 64 } else { 128 };
            let values = body.get(1..1 + len).ok_or_else(|| corrupt("quantisation table"))?;
            if id > 3 || precision > 1 {
                return Err(corrupt("quantisation table number or precision"));
            }
            let mut table = [0u16; 64];
            for k in 0..64 {
                let value = if precision == 0 {
                    u16::from(values[k])
                } else {
                    u16::from_be_bytes([values[2 * k], values[2 * k + 1]])
                };
                table[usize::from(NATURAL[k])] = value;
            }
            self.quant[id] = Some(table);
            body = &body[1 + len..];
        }
        Ok(())
    }

    fn read_scan_header(&self, body: &[u8]) -> Result<Scan, EngineError> {
        let frame = self.frame.as_ref().ok_or_else(|| corrupt("a scan before the frame header"))?;
        let count = usize::from(*body.first().unwrap_or(&0));
        if !(1..=4).contains(&count) || body.len() < 4 + 2 * count {
            return Err(corrupt("scan header"));
        }
        let mut components = Vec::with_capacity(count);
        for i in 0..count {
            let (id, tables) = (body[1 + 2 * i], body[2 + 2 * i]);
            let index = frame
                .components
                .iter()
                .position(|c| c.id == id)
                .ok_or_else(|| corrupt("a scan names an unknown component"))?;
            let (dc, ac) = (usize::from(tables >> 4), usize::from(tables & 15));
            if dc > 3 || ac > 3 || components.iter().any(|&(c, _, _)| c == index) {
                return Err(corrupt("scan header"));
            }
            components.push((index, dc, ac));
        }
        let rest = &body[1 + 2 * count..];
        let (start, end, high, low) =
            (usize::from(rest[0]), usize::from(rest[1]), u32::from(rest[2] >> 4), u32::from(rest[2] & 15));
        let valid = if frame.progressive {
            start <= end
                && end <= 63
                && (start == 0) == (end == 0)
                && (start == 0 || count == 1)
                && low <= 13
                && high <= 13
        } else {
            start == 0 && end == 63 && high == 0 && low == 0
        };
        if !valid {
            return Err(corrupt("scan parameters"));
        }
        let blocks_in_mcu: usize =
            components.iter().map(|&(c, _, _)| frame.components[c].h * frame.components[c].v).sum();
        if count > 1 && blocks_in_mcu > 10 {
            return Err(corrupt("too many blocks in an MCU"));
        }
        Ok(Scan { components, start, end, high, low })
    }

    /// Decodes one scan whose data starts at `pos`; returns where its data ends.
    fn decode_scan(&mut self, scan: &Scan, pos: usize) -> Result<usize, EngineError> {
        let frame = self.frame.take().ok_or_else(|| corrupt("a scan before the frame header"))?;
        let result = self.decode_scan_with_features(&frame, scan, pos);
        self.frame = Some(frame);
        result
    }

    /// [`Self::decode_scan_of`] built for BMI1, BMI2, LZCNT and AVX2 where the CPU has them: the
    /// decoding loops' chain from one lookup to the next is shifts by a variable count, one
    /// instruction each there (`shlx`, `shrx`) instead of a shift through `cl`, and the 2x2
    /// transform of each block is inlined in its vector form. The scan functions are
    /// `inline(always)` so that each build has its own copy of them.
    fn decode_scan_with_features(&mut self, frame: &Frame, scan: &Scan, pos: usize) -> Result<usize, EngineError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("avx2")
        {
            // SAFETY: the CPU has the features.
            return unsafe { self.decode_scan_bmi(frame, scan, pos) };
        }
        self.decode_scan_of(frame, scan, pos)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "bmi1,bmi2,lzcnt,avx2")]
    fn decode_scan_bmi(&mut self, frame: &Frame, scan: &Scan, pos: usize) -> Result<usize, EngineError> {
        self.decode_scan_of(frame, scan, pos)
    }

    #[inline(always)]
    fn decode_scan_of(&mut self, frame: &Frame, scan: &Scan, pos: usize) -> Result<usize, EngineError> {
        // At 1/8 a progressive file's AC scans are not read at all, nor those of a component
        // decoded to one sample a block (chroma at half the luma's 1/4).
        if frame.progressive
            && scan.start > 0
            && (self.shrink == 8 || scan.components.iter().all(|&(c, _, _)| frame.components[c].size == 1))
        {
            return Ok(entropy::marker_position(self.bytes, pos));
        }
        // Check the tables the scan needs once, up front.
        for &(c, dc, ac) in &scan.components {
            if self.quant[frame.components[c].quant_table].is_none() {
                return Err(corrupt("a component uses a missing quantisation table"));
            }
            let dc_first = scan.start == 0 && scan.high == 0;
            let needs_dc = !frame.progressive || dc_first;
            if (needs_dc && self.dc_tables[dc].is_none()) || (scan.end > 0 && self.ac_tables[ac].is_none()) {
                return Err(corrupt("a scan uses a missing Huffman table"));
            }
        }

        // The scan's data without its byte stuffing, in the segments its restarts can reach.
        let (mcus_x, mcus_y) = mcu_grid(frame, scan);
        let segments = match self.restart_interval {
            0 => 1,
            interval => (mcus_x * mcus_y).div_ceil(interval),
        };
        let unstuffed = entropy::Unstuffed::new(self.bytes, pos, segments);
        let reader = unstuffed.reader();
        // The blocks of the scan, MCU by MCU: interleaved scans cover whole MCUs, a scan of one
        // component covers only that component's coded blocks, one block an MCU.
        let reader = if !frame.progressive {
            self.baseline_scan(frame, scan, reader)?
        } else if scan.start > 0 {
            self.ac_scan(frame, scan, reader)?
        } else {
            self.dc_scan(frame, scan, reader)?
        };
        if reader.overran() {
            return Err(entropy_error(EntropyError::Truncated));
        }
        Ok(unstuffed.end)
    }

    /// The blocks of a scan in MCU order: interleaved scans cover whole MCUs, `h` x `v` blocks of
    /// each component an MCU; a scan of one component covers only that component's coded
    /// blocks, one block an MCU. Calls `block` with the scan component's slot, the block's
    /// position in its component, and the reader; handles restart intervals.
    #[inline(always)]
    fn for_each_block<'r>(
        frame: &Frame,
        scan: &Scan,
        restart_interval: usize,
        mut reader: BitReader<'r>,
        mut block: impl FnMut(&mut BitReader<'r>, usize, usize, usize, bool) -> Result<(), EntropyError>,
    ) -> Result<BitReader<'r>, EngineError> {
        let single = scan.components.len() == 1;
        let (mcus_x, mcus_y) = mcu_grid(frame, scan);
        let mut mcu = 0usize;
        for mcu_y in 0..mcus_y {
            // Data that ended early is refused at the row it ran out in, not after decoding
            // zeros through the rest of the image.
            if reader.overran() {
                return Err(entropy_error(EntropyError::Truncated));
            }
            for mcu_x in 0..mcus_x {
                let restart = restart_interval > 0 && mcu > 0 && mcu.is_multiple_of(restart_interval);
                if restart {
                    reader = reader.restart().map_err(entropy_error)?;
                }
                mcu += 1;
                for (slot, &(c, _, _)) in scan.components.iter().enumerate() {
                    let component = &frame.components[c];
                    let (h, v) = if single { (1, 1) } else { (component.h, component.v) };
                    for by in 0..v {
                        for bx in 0..h {
                            let first = restart && slot == 0 && by == 0 && bx == 0;
                            block(&mut reader, slot, mcu_x * h + bx, mcu_y * v + by, first).map_err(entropy_error)?;
                        }
                    }
                }
            }
        }
        Ok(reader)
    }

    /// A baseline scan: every block decoded straight to its plane. The blocks of an MCU are
    /// listed once, each with its tables, quantiser, plane and place in the MCU, so the loop
    /// over them is flat. The loop is written out rather than taken from
    /// [`Self::for_each_block`]: it is the hottest of all, and the reader must stay in registers.
    #[inline(always)]
    fn baseline_scan<'r>(
        &mut self,
        frame: &Frame,
        scan: &Scan,
        reader: BitReader<'r>,
    ) -> Result<BitReader<'r>, EngineError> {
        /// One block of the MCU: its component's slot in the scan (its DC prediction), its
        /// plane, and where it starts there: `row` a row of MCUs down, `column` an MCU
        /// across, plus `offset` within the MCU.
        struct McuBlock<'t> {
            dc: &'t HuffmanTable,
            ac: &'t HuffmanTable,
            dequantiser: idct::Dequantiser,
            size: usize,
            slot: usize,
            plane: usize,
            row: usize,
            column: usize,
            offset: usize,
        }
        let single = scan.components.len() == 1;
        let mut blocks = Vec::with_capacity(10);
        for (slot, &(c, dc, ac)) in scan.components.iter().enumerate() {
            let component = &frame.components[c];
            let (Some(dc), Some(ac), Some(quant), Some(plane)) =
                (&self.dc_tables[dc], &self.ac_tables[ac], &self.quant[component.quant_table], self.planes.get(c))
            else {
                return Err(corrupt("a scan uses a missing table"));
            };
            let (h, v) = if single { (1, 1) } else { (component.h, component.v) };
            let size = component.size;
            for by in 0..v {
                for bx in 0..h {
                    blocks.push(McuBlock {
                        dc,
                        ac,
                        dequantiser: idct::Dequantiser::new(quant),
                        size,
                        slot,
                        plane: c,
                        row: v * size * plane.stride,
                        column: h * size,
                        offset: by * size * plane.stride + bx * size,
                    });
                }
            }
        }
        let planes = &mut self.planes;
        let mut predictions = [0i32; 4];
        let mut block = [0i16; BLOCK_WITH_SINK];
        let (mcus_x, mcus_y) = mcu_grid(frame, scan);
        let mut reader = reader;
        let mut mcu = 0usize;
        for mcu_y in 0..mcus_y {
            // Data that ended early is refused at the row it ran out in.
            if reader.overran() {
                return Err(entropy_error(EntropyError::Truncated));
            }
            for mcu_x in 0..mcus_x {
                if self.restart_interval > 0 && mcu > 0 && mcu.is_multiple_of(self.restart_interval) {
                    reader = reader.restart().map_err(entropy_error)?;
                    predictions = [0; 4];
                }
                mcu += 1;
                for mcu_block in &blocks {
                    let plane = &mut planes[mcu_block.plane];
                    let offset = mcu_y * mcu_block.row + mcu_x * mcu_block.column + mcu_block.offset;
                    baseline_block(
                        &mut reader,
                        mcu_block.dc,
                        mcu_block.ac,
                        &mcu_block.dequantiser,
                        mcu_block.size,
                        &mut plane.data,
                        offset,
                        plane.stride,
                        &mut predictions[mcu_block.slot & 3],
                        &mut block,
                    )
                    .map_err(entropy_error)?;
                }
            }
        }
        Ok(reader)
    }

    /// A progressive DC scan, first pass or refinement: one value a block.
    #[inline(always)]
    fn dc_scan<'r>(&mut self, frame: &Frame, scan: &Scan, reader: BitReader<'r>) -> Result<BitReader<'r>, EngineError> {
        let mut stores = Vec::with_capacity(scan.components.len());
        let (dc_tables, coefficients) = (&self.dc_tables, &mut self.coefficients);
        let (values, kept): (&mut Vec<Vec<i16>>, Option<&Vec<usize>>) = match coefficients {
            Some(Coefficients::Dc(store)) => (store, None),
            Some(Coefficients::Low { kept, values, .. }) => (values, Some(kept)),
            None => return Err(corrupt("coefficients")),
        };
        let mut by_component: Vec<Option<&mut Vec<i16>>> = values.iter_mut().map(Some).collect();
        for &(c, dc, _) in &scan.components {
            let table = dc_tables[dc].as_ref();
            let per_block = kept.map_or(1, |kept| kept[c]);
            let store =
                by_component.get_mut(c).and_then(Option::take).ok_or_else(|| corrupt("a component twice in a scan"))?;
            stores.push((table, per_block, store, frame.components[c].blocks_x));
        }
        let mut predictions = [0i32; 4];
        let first = scan.high == 0;
        Self::for_each_block(frame, scan, self.restart_interval, reader, |reader, slot, x, y, restart| {
            if restart {
                predictions = [0; 4];
            }
            let (table, per_block, store, blocks_x) = &mut stores[slot];
            let value = store.get_mut((x + y * *blocks_x) * *per_block).ok_or(EntropyError::BadCode)?;
            reader.ensure32();
            if first {
                let table = table.ok_or(EntropyError::BadCode)?;
                let size = table.decode(reader)?;
                if size > 15 {
                    return Err(EntropyError::BadCode);
                }
                let size = u32::from(size);
                predictions[slot] = predictions[slot].wrapping_add(extend(reader.bits(size), size));
                *value = predictions[slot].wrapping_shl(scan.low) as i16;
            } else {
                // Without a branch: the bit is as good as random.
                *value |= (reader.bit() << scan.low) as i16;
            }
            Ok(())
        })
    }

    /// A progressive AC scan: one component (the scan header was checked), its coded blocks in
    /// raster order, each an MCU. Its own loop, with the component's store and table looked up
    /// once, as most of a progressive file's blocks are read here, several times each.
    #[inline(always)]
    fn ac_scan<'r>(
        &mut self,
        frame: &Frame,
        scan: &Scan,
        mut reader: BitReader<'r>,
    ) -> Result<BitReader<'r>, EngineError> {
        let (c, _, ac) = scan.components[0];
        let component = &frame.components[c];
        let table = self.ac_tables[ac].as_ref().ok_or_else(|| corrupt("a scan uses a missing Huffman table"))?;
        let Some(Coefficients::Low { kept, values, masks }) = self.coefficients.as_mut() else {
            return Err(corrupt("coefficients"));
        };
        let (kept, values, masks) = (kept[c], &mut values[c], &mut masks[c]);
        let first = scan.high == 0;
        // What a refinement reads of the blocks in an end-of-band run (see `ac_refine`).
        let band = (u64::MAX << scan.start) & (u64::MAX >> (63 - scan.end));
        let kept_mask = u64::MAX >> (64 - kept.clamp(1, 64));
        let plus = 1i16 << scan.low;
        let interval = self.restart_interval;
        let mut eob_run = 0u32;
        let mut mcu = 0usize;
        for y in 0..component.coded_y {
            if reader.overran() {
                return Err(entropy_error(EntropyError::Truncated));
            }
            let row = y * component.blocks_x;
            let mut x = 0;
            while x < component.coded_x {
                if interval > 0 && mcu > 0 && mcu.is_multiple_of(interval) {
                    reader = reader.restart().map_err(entropy_error)?;
                    eob_run = 0;
                }
                if eob_run > 0 {
                    // The blocks of an end-of-band run, up to the row's end or the next restart,
                    // at once: a first pass has nothing to read of them, a refinement only the
                    // correction bits of their nonzero coefficients, which most have none of.
                    let mut n = (eob_run as usize).min(component.coded_x - x);
                    if interval > 0 {
                        n = n.min(interval - mcu % interval);
                    }
                    if !first {
                        let Some(run) = masks.get(row + x..row + x + n) else {
                            return Err(corrupt("coefficients"));
                        };
                        for (i, &mask) in run.iter().enumerate() {
                            let nonzero = mask & band;
                            if nonzero != 0 {
                                let index = row + x + i;
                                let Some(values) = values.get_mut(index * kept..(index + 1) * kept) else {
                                    return Err(corrupt("coefficients"));
                                };
                                refine(&mut reader, values, nonzero, kept_mask, plus);
                            }
                        }
                    }
                    eob_run -= n as u32;
                    x += n;
                    mcu += n;
                    continue;
                }
                mcu += 1;
                let index = x + row;
                let (Some(values), Some(mask)) =
                    (values.get_mut(index * kept..(index + 1) * kept), masks.get_mut(index))
                else {
                    return Err(corrupt("coefficients"));
                };
                reader.ensure32();
                if first {
                    ac_first(&mut reader, table, values, mask, scan, &mut eob_run)
                } else {
                    ac_refine(&mut reader, table, values, mask, scan, &mut eob_run)
                }
                .map_err(entropy_error)?;
                x += 1;
            }
        }
        Ok(reader)
    }
}

/// The MCUs of a scan across and down: the frame's for an interleaved scan, the component's
/// coded blocks for a scan of one component (each block an MCU).
fn mcu_grid(frame: &Frame, scan: &Scan) -> (usize, usize) {
    match scan.components.as_slice() {
        [(c, _, _)] => (frame.components[*c].coded_x, frame.components[*c].coded_y),
        _ => (frame.mcus_x, frame.mcus_y),
    }
}

/// One block of a baseline scan: its DC difference, its AC coefficients up to what the
/// transform to `size` reads (the rest walked over), transformed into `data` at `offset`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn baseline_block(
    reader: &mut BitReader,
    dc_table: &HuffmanTable,
    ac_table: &HuffmanTable,
    dequantiser: &idct::Dequantiser,
    size: usize,
    data: &mut [u8],
    offset: usize,
    stride: usize,
    prediction: &mut i32,
    block: &mut [i16; BLOCK_WITH_SINK],
) -> Result<(), EntropyError> {
    // The bits the buffer is sure to hold, whatever the codes were: a refill is needed only
    // where the next lookup might take more, which depends on the lookups made, not on the
    // data, so the branch is predicted.
    reader.refill();
    let mut budget = entropy::REFILLED;
    let fast = dc_table.fast[reader.peek(entropy::LOOKUP_BITS) as usize];
    let difference = if fast != 0 {
        // A DC entry's run bits are clear: its length is its low bits, as `consume_low6` needs.
        reader.consume_low6(fast as u32);
        budget -= DC_MOST;
        fast >> 16
    } else {
        let size = dc_table.decode(reader)?;
        if size > 15 {
            return Err(EntropyError::BadCode);
        }
        let size = u32::from(size);
        let difference = extend(reader.bits(size), size);
        reader.refill();
        difference
    };
    *prediction = prediction.wrapping_add(difference);
    let dc_value = *prediction as i16;
    if size == 1 {
        skip_ac(reader, ac_table, 1, budget)?;
        if let Some(pixel) = data.get_mut(offset) {
            *pixel = idct::idct_1x1(dc_value, dequantiser.quant[0]);
        }
        return Ok(());
    }
    // Only the frequencies the transform reads need clearing: others are never read.
    match size {
        2 => (block[1], block[8], block[9]) = (0, 0, 0),
        4 => (0..4).for_each(|v| block[v * 8..v * 8 + 4].fill(0)),
        _ => block[..64].fill(0),
    }
    block[0] = dc_value;
    let k = decode_ac(reader, ac_table, block, LAST_READ[size.trailing_zeros() as usize], &mut budget)?;
    if k < 64 {
        skip_rest(reader, ac_table, k, budget)?;
    }
    let coefficients = block.first_chunk::<64>().expect("a block holds 64 coefficients");
    dequantiser.transform(coefficients, size, &mut data[offset..], stride);
    Ok(())
}

/// The most bits a lookup takes: a DC code and difference in [`HuffmanTable::fast`], one or two
/// AC codes and values in [`HuffmanTable::pairs`] (or one in `fast`), the AC codes walked over
/// in [`HuffmanTable::skip`] (whose last value may run 15 bits past the window).
const DC_MOST: u32 = entropy::LOOKUP_BITS;
const PAIR_MOST: u32 =
    if entropy::PAIR_BITS > entropy::LOOKUP_BITS { entropy::PAIR_BITS } else { entropy::LOOKUP_BITS };
const SKIP_MOST: u32 = entropy::SKIP_BITS + 15;

/// The last zigzag index a transform to `size` x `size` reads, by log2(size): it reads the
/// frequencies below `size` on both axes (see [`idct`]).
const LAST_READ: [usize; 4] = [0, 4, 24, 63];

/// A block's coefficients in natural order, then a sink: where the second of
/// [`decode_ac`]'s first two lookups stores when the first ended the block.
const BLOCK_WITH_SINK: usize = 128;

/// Zigzag position to natural position as [`NATURAL`] has it, then, from [`SINK_FROM`], the
/// sink: stores made there land past the block's 64 coefficients.
const NATURAL_OR_SINK: [u8; 128] = {
    let mut table = [64u8; 128];
    table.split_at_mut(64).0.copy_from_slice(NATURAL.split_at(64).0);
    table
};
const SINK_FROM: usize = 65;

/// Stores the coefficients of a [`HuffmanTable::pairs`] entry read at zigzag index `k`: the
/// second value at the last index the entry covers, then the first at its own. Without a
/// second coefficient, both are the first's index (and the second value is 0).
#[inline(always)]
fn store_pair(block: &mut [i16; BLOCK_WITH_SINK], k: usize, entry: u32) {
    let advance = ((entry >> 10) & 31) as usize;
    let run = ((entry >> 6) & 15) as usize;
    block[usize::from(NATURAL_OR_SINK[(k + advance).wrapping_sub(1) & 127]) & 127] =
        ((entry << 10) as i32 >> 26) as i16;
    block[usize::from(NATURAL_OR_SINK[(k + run) & 127]) & 127] = (entry as i32 >> 22) as i16;
}

/// The coefficients a [`HuffmanTable::pairs`] entry advances by, and 64 more if it ends the
/// block (past every index).
#[inline(always)]
fn pair_advance(entry: u32) -> usize {
    (((entry >> 10) & 31) + (((entry >> 15) & 1) << 6)) as usize
}

/// Decodes the AC coefficients of a baseline block into `block` (natural order) up to zigzag
/// index `last` at least. Returns the index to go on from, or 64 if the block is done.
#[inline(always)]
fn decode_ac(
    reader: &mut BitReader,
    table: &HuffmanTable,
    block: &mut [i16; BLOCK_WITH_SINK],
    last: usize,
    budget: &mut u32,
) -> Result<usize, EntropyError> {
    let mut k = 1usize;
    // The first two lookups with no test of the block's end between them: whether a block goes
    // on after its first lookup is as good as random, and a mispredicted loop test costs more
    // than a lookup. An entry not taken (one that does not fit, or any after the block's end)
    // consumes nothing and stores in the sink; the loop below and the walk go on from there.
    // Past `last`, the second walks on (a lookup in `pairs` walks as correctly as one in
    // `skip`). Measured: 4% less time a render of a 4:2:0 photo at 1/4.
    if *budget >= 2 * PAIR_MOST {
        *budget -= 2 * PAIR_MOST;
        for _ in 0..2 {
            let entry = table.pairs[reader.peek(entropy::PAIR_BITS) as usize];
            let take = (k < 64) & (entry != 0) & (k + ((entry >> 10) & 31) as usize <= 63);
            let entry = if take { entry } else { 0 };
            reader.consume_low6(entry);
            store_pair(block, if take { k } else { SINK_FROM }, entry);
            k += pair_advance(entry);
        }
    }
    while k <= last {
        if *budget < PAIR_MOST {
            reader.refill();
            *budget = entropy::REFILLED;
        }
        *budget -= PAIR_MOST;
        // One or two coefficients, or a coefficient and the block's end, a lookup (see
        // `entropy::Pair`), unless the pair would run past the block (its second code would
        // then be the next block's). Branch-free past that.
        let entry = table.pairs[reader.peek(entropy::PAIR_BITS) as usize];
        if entry != 0 && k + ((entry >> 10) & 31) as usize <= 63 {
            reader.consume_low6(entry);
            store_pair(block, k, entry);
            k += pair_advance(entry);
            continue;
        }
        let fast = table.fast[reader.peek(entropy::LOOKUP_BITS) as usize];
        if fast != 0 {
            reader.consume((fast & 15) as u32);
            k += ((fast >> 4) & 15) as usize;
            block[usize::from(NATURAL[k.min(79)]) & 63] = (fast >> 16) as i16;
            k += 1;
            continue;
        }
        // The slow way: a code of up to 16 bits and a value of up to 15, then nothing known.
        reader.refill();
        *budget = 0;
        let symbol = table.decode(reader)?;
        let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
        if size != 0 {
            k += run;
            let value = extend(reader.bits(size), size);
            block[usize::from(NATURAL[k.min(79)]) & 63] = value as i16;
            k += 1;
        } else if run == 15 {
            k += 16;
        } else {
            return Ok(64);
        }
    }
    Ok(k)
}

/// [`skip_ac`] for what is left of a block after its kept coefficients, its first two lookups
/// with one test after them: whether that ends after one lookup or two is as good as random,
/// and a mispredicted test costs more than a lookup. A step that does not go on consumes
/// nothing, so the second then finds the same entry. Whole blocks walked from their first AC
/// code (at 1/8) go one lookup a test: many end at once, predictably, and the second lookup
/// measured slower there.
#[inline(always)]
fn skip_rest(reader: &mut BitReader, table: &HuffmanTable, mut k: usize, mut budget: u32) -> Result<(), EntropyError> {
    if budget < 2 * SKIP_MOST {
        reader.refill();
        budget = entropy::REFILLED;
    }
    budget -= 2 * SKIP_MOST;
    let (mut entry, mut went) = (0, false);
    for _ in 0..2 {
        entry = usize::from(table.skip[reader.peek(entropy::SKIP_BITS) as usize]);
        // The end of the block, and an entry without a whole code, advance past 63.
        let next = k + (entry >> 6);
        went = next < 64;
        reader.consume_low6(if went { entry as u32 } else { 0 });
        k = if went { next } else { k };
    }
    if !went && ends_inside(entry, k) {
        reader.consume_low6(entry as u32);
        return Ok(());
    }
    // Longer: one lookup a test, predicted while the walk goes on (a select in every step
    // would lengthen the chain of each). The rare entry that neither goes on nor ends the
    // block is looked up again there.
    skip_ac(reader, table, k, budget)
}

/// Whether a [`HuffmanTable::skip`] entry read at zigzag index `k` ends the block inside it:
/// codes that would run past the block's end belong to the next block.
#[inline(always)]
fn ends_inside(entry: usize, k: usize) -> bool {
    entry & entropy::SKIP_END != 0 && k + ((entry >> 6) & 0xFF) < 64
}

/// Walks over the AC codes of a baseline block from zigzag index `k` without keeping them,
/// several codes a lookup where they are short.
#[inline(always)]
fn skip_ac(reader: &mut BitReader, table: &HuffmanTable, mut k: usize, mut budget: u32) -> Result<(), EntropyError> {
    // The caller has a coefficient left to walk (k < 64); the walk ends in the tests below.
    loop {
        if budget < SKIP_MOST {
            reader.refill();
            budget = entropy::REFILLED;
        }
        budget -= SKIP_MOST;
        let entry = usize::from(table.skip[reader.peek(entropy::SKIP_BITS) as usize]);
        // One test while the block goes on: the end of the block, and an entry without a whole
        // code, advance past 63.
        let next = k + (entry >> 6);
        if next < 64 {
            reader.consume_low6(entry as u32);
            k = next;
            continue;
        }
        // Codes that would run past the block's end belong to the next block: go one at a time.
        if ends_inside(entry, k) {
            reader.consume_low6(entry as u32);
            return Ok(());
        }
        // The slow way: a code of up to 16 bits and a value of up to 15, then nothing known.
        reader.refill();
        budget = 0;
        let symbol = table.decode(reader)?;
        let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
        if size != 0 {
            k += run + 1;
            reader.consume(size);
        } else if run == 15 {
            k += 16;
        } else {
            return Ok(());
        }
        if k >= 64 {
            return Ok(());
        }
    }
}

/// The first pass over a band of AC coefficients in a progressive file: `values` are the kept
/// coefficients in zigzag order, `mask` the nonzero positions (see [`Coefficients::Low`]).
#[inline(always)]
fn ac_first(
    reader: &mut BitReader,
    table: &HuffmanTable,
    values: &mut [i16],
    mask: &mut u64,
    scan: &Scan,
    eob_run: &mut u32,
) -> Result<(), EntropyError> {
    if *eob_run > 0 {
        *eob_run -= 1;
        return Ok(());
    }
    let mut k = scan.start;
    while k <= scan.end {
        reader.ensure32();
        let entry = table.progressive[reader.peek(entropy::LOOKUP_BITS) as usize];
        let value = if entry & entropy::COEFFICIENT != 0 {
            reader.consume((entry & 15) as u32);
            k += ((entry >> 4) & 15) as usize;
            entry >> 16
        } else if entry & entropy::END_OF_BAND != 0 {
            reader.consume((entry & 15) as u32);
            *eob_run = (entry >> 16) as u32 - 1;
            break;
        } else {
            let symbol = table.decode(reader)?;
            let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
            if size != 0 {
                k += run as usize;
                extend(reader.bits(size), size)
            } else if run == 15 {
                k += 16;
                continue;
            } else {
                *eob_run = (1 << run) + reader.bits(run) - 1;
                break;
            }
        };
        // A corrupt run past the band's end lands nowhere.
        if let Some(slot) = values.get_mut(k) {
            *slot = (value << scan.low) as i16;
        }
        if k < 64 {
            *mask |= 1 << k;
        }
        k += 1;
    }
    Ok(())
}

/// For a byte of flags and a count `n` (0 to 15): the position of its (`n` + 1)th set bit, or 8 if
/// it has no more than `n`. What a refinement scan's zero run looks up first: most runs end
/// within eight coefficients of where they start.
const SELECT: [[u8; 256]; 16] = {
    let mut table = [[8u8; 256]; 16];
    let mut byte = 0;
    while byte < 256 {
        let (mut bit, mut seen) = (0, 0);
        while bit < 8 {
            if byte & (1 << bit) != 0 {
                if seen < 16 {
                    table[seen][byte] = bit as u8;
                }
                seen += 1;
            }
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// A refinement pass over a band of AC coefficients: one more bit of each coefficient already
/// nonzero, and the coefficients that become nonzero at this bit. Positions are found with the
/// mask: a run of zeros is counted off its clear bits (eight at a lookup in [`SELECT`]), and the
/// correction bits of nonzero coefficients that are not kept are read past in one go.
#[inline(always)]
fn ac_refine(
    reader: &mut BitReader,
    table: &HuffmanTable,
    values: &mut [i16],
    mask: &mut u64,
    scan: &Scan,
    eob_run: &mut u32,
) -> Result<(), EntropyError> {
    let plus = 1i16 << scan.low;
    let minus = (-1i16) << scan.low;
    // Zigzag positions scan.start..=scan.end, and those kept (values.len() is 1 to 64).
    let band = (u64::MAX << scan.start) & (u64::MAX >> (63 - scan.end));
    let kept = u64::MAX >> (64 - values.len().clamp(1, 64));
    let mut k = scan.start;
    if *eob_run == 0 {
        while k <= scan.end {
            reader.ensure32();
            // A newly nonzero coefficient is one bit, its sign, which the fast entry holds as a
            // value of 1 or -1 (a size of 1; a corrupt larger size takes the slow way, which
            // reads one bit as libjpeg-turbo does).
            let entry = table.progressive[reader.peek(entropy::LOOKUP_BITS) as usize];
            let (run, value) = if entry & entropy::SIZE_ONE != 0 {
                reader.consume((entry & 15) as u32);
                (((entry >> 4) & 15) as usize, if entry > 0 { plus } else { minus })
            } else if entry & entropy::END_OF_BAND != 0 {
                reader.consume((entry & 15) as u32);
                *eob_run = (entry >> 16) as u32;
                break;
            } else {
                let symbol = table.decode(reader)?;
                let (run, size) = (symbol >> 4, symbol & 15);
                if size != 0 {
                    (usize::from(run), if reader.bit() == 1 { plus } else { minus })
                } else if run == 15 {
                    (15, 0)
                } else {
                    *eob_run = (1 << run) + reader.bits(u32::from(run));
                    break;
                }
            };
            // Pass `run` zero coefficients, refining the nonzero ones on the way: the position
            // reached is the zero after them (or past the band).
            let zeros = !*mask & band;
            let found = usize::from(SELECT[run & 15][(zeros >> k) as usize & 0xFF]);
            let at = if found < 8 {
                // Within eight coefficients: `found - run` nonzero ones are passed, whose
                // correction bits (at most 7) are still buffered.
                let at = k + found;
                let passed = *mask & (u64::MAX << k) & !(u64::MAX << at);
                if passed & kept != 0 {
                    refine(reader, values, passed, kept, plus);
                } else {
                    reader.consume((found - run) as u32);
                }
                at
            } else {
                let from = u64::MAX << k;
                let mut zeros = zeros & from;
                for _ in 0..run {
                    zeros &= zeros.wrapping_sub(1);
                }
                let at = if zeros == 0 { scan.end + 1 } else { zeros.trailing_zeros() as usize };
                let before = if at >= 64 { u64::MAX } else { (1u64 << at) - 1 };
                refine(reader, values, *mask & from & before, kept, plus);
                at
            };
            if value != 0 && at <= scan.end {
                *mask |= 1 << at;
                if let Some(slot) = values.get_mut(at) {
                    *slot = value;
                }
            }
            k = at + 1;
        }
    }
    if *eob_run > 0 {
        if k <= scan.end {
            refine(reader, values, *mask & band & (u64::MAX << k), kept, plus);
        }
        *eob_run -= 1;
    }
    Ok(())
}

/// Reads the correction bits of the `nonzero` coefficients, in zigzag order: those `kept` get
/// their bit `plus` (away from zero), the others' bits are read past. The kept coefficients
/// come first (they are the lowest positions), and a bit is added without a branch on it, as
/// correction bits are as good as random.
#[inline(always)]
fn refine(reader: &mut BitReader, values: &mut [i16], nonzero: u64, kept: u64, plus: i16) {
    // Most runs pass no nonzero coefficient.
    if nonzero == 0 {
        return;
    }
    let mut low = nonzero & kept;
    while low != 0 {
        let n = low.count_ones().min(16);
        let bits = reader.bits(n);
        for i in (0..n).rev() {
            let at = low.trailing_zeros() as usize;
            low &= low - 1;
            if let Some(coefficient) = values.get_mut(at) {
                let c = *coefficient;
                // Add when the bit is 1 and the coefficient lacks it (it may not, if corrupt).
                let add = -(((bits >> i) & 1) as i16 & i16::from(c & plus == 0));
                *coefficient = c.wrapping_add(if c >= 0 { plus } else { -plus } & add);
            }
        }
    }
    let mut skipped = (nonzero & !kept).count_ones();
    while skipped > 0 {
        let n = skipped.min(16);
        reader.bits(n);
        skipped -= n;
    }
}

/// The planes of a progressive file, from its coefficients; built for AVX2 where the CPU has
/// it, so that the 2x2 transform is inlined in the loop over the blocks.
fn transform_all(
    frame: &Frame,
    coefficients: &Coefficients,
    quant: &[Option<[u16; 64]>; 4],
) -> Result<Vec<Plane>, EngineError> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature.
        return unsafe { transform_all_avx2(frame, coefficients, quant) };
    }
    transform_all_of(frame, coefficients, quant)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transform_all_avx2(
    frame: &Frame,
    coefficients: &Coefficients,
    quant: &[Option<[u16; 64]>; 4],
) -> Result<Vec<Plane>, EngineError> {
    transform_all_of(frame, coefficients, quant)
}

#[inline(always)]
fn transform_all_of(
    frame: &Frame,
    coefficients: &Coefficients,
    quant: &[Option<[u16; 64]>; 4],
) -> Result<Vec<Plane>, EngineError> {
    let mut planes = Vec::with_capacity(frame.components.len());
    for (c, component) in frame.components.iter().enumerate() {
        let quant = quant[component.quant_table]
            .as_ref()
            .ok_or_else(|| corrupt("a component uses a missing quantisation table"))?;
        let size = component.size;
        let stride = component.blocks_x * size;
        let mut data = vec![0u8; stride * component.blocks_y * size];
        let dequantiser = idct::Dequantiser::new(quant);
        match coefficients {
            Coefficients::Dc(store) => {
                for (pixel, &dc) in data.iter_mut().zip(&store[c]) {
                    *pixel = idct::idct_1x1(dc, quant[0]);
                }
            }
            Coefficients::Low { kept, values, .. } if size == 2 => {
                // Straight from the kept values (zigzag 0, 1, 2 and 4), not through a block: a
                // block stored value by value and read back at once would wait on the stores.
                for (index, kept) in values[c].chunks_exact(kept[c]).enumerate() {
                    let (x, y) = (index % component.blocks_x, index / component.blocks_x);
                    let [k0, k1, k2, _, k4, ..] = *kept else {
                        return Err(corrupt("coefficients"));
                    };
                    dequantiser.transform_2x2([k0, k1, k2, k4], &mut data[y * 2 * stride + x * 2..], stride);
                }
            }
            Coefficients::Low { kept, values, .. } => {
                // Every position the transform reads is among the kept ones, so the block needs
                // no clearing between blocks.
                let mut block = [0i16; 64];
                for (index, kept) in values[c].chunks_exact(kept[c]).enumerate() {
                    let (x, y) = (index % component.blocks_x, index / component.blocks_x);
                    for (k, &value) in kept.iter().enumerate() {
                        block[usize::from(NATURAL[k])] = value;
                    }
                    dequantiser.transform(&block, size, &mut data[y * size * stride + x * size..], stride);
                }
            }
        }
        planes.push(Plane { data, stride });
    }
    Ok(planes)
}
