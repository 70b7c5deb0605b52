//! GIF's 256 colours: a palette for each frame, shared with the frames before it while it fits
//! them as well as a new one would, and ordered dithering.
//!
//! - **Palette.** A frame of at most 256 colours (255 and a transparent one) keeps them exactly.
//!   Otherwise Wu's method (`quantette`, MIT OR Apache-2.0) learns one from the frame: it cut
//!   the mean squared error on a smooth gradient from 152 (NeuQuant, the `gif` crate's
//!   quantiser, at its speed 10) to 46. The widely used quantisers libimagequant and gifski are
//!   GPL-3.0 or AGPL-3.0, which this project's licence cannot take.
//! - **Sharing.** Before a new palette is learnt, the current one is tried on a sample of the
//!   frame: if it fits the frame as well as it fitted its own, it is kept. Otherwise a new one is
//!   learnt, and the current one is still kept unless the new one fits clearly better. A frame
//!   whose palette is the first frame's writes none of its own (the first is the GIF's global
//!   palette). The same palette is what keeps a region that does not move from changing colour
//!   between frames.
//! - **Dithering.** Ordered (an 8x8 Bayer matrix, placed differently for each channel): each
//!   pixel is nudged by an offset that depends only on its position, scaled to the palette's
//!   spacing, before its nearest colour is taken. Error diffusion (Floyd-Steinberg) spreads each pixel's error to the pixels after it,
//!   so a change anywhere in a frame moves the noise everywhere below it: it shimmers. An
//!   ordered pattern under the same palette gives a still region the same indices in every frame.
//!
//! Pixels with alpha under 128 are transparent (GIF has no partial transparency).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use quantette::PaletteSize;
use quantette::deps::palette::Srgb;
use quantette::wu::{BinnerU8x3, WuU8x3};

/// Alpha at or above which a pixel is drawn.
const OPAQUE: u8 = 128;

/// Pixels of a frame sampled to judge how well a palette fits it.
const SAMPLE: usize = 4096;

/// How much worse than on its own frame (mean squared error, plus a floor for palettes that fit
/// their frame exactly) the current palette may fit a new frame and still be kept unlearnt.
const KEEP_UNLEARNT: f64 = 1.25;
const KEEP_FLOOR: f64 = 4.0;

/// How much worse than a newly learnt one the current palette may fit a frame and be kept.
const KEEP_OVER_NEW: f64 = 1.1;

/// The 8x8 Bayer matrix: the order in which a pixel of each 8x8 cell turns to the next colour.
const BAYER: [[u8; 8]; 8] = [
    [0, 32, 8, 40, 2, 34, 10, 42],
    [48, 16, 56, 24, 50, 18, 58, 26],
    [12, 44, 4, 36, 14, 46, 6, 38],
    [60, 28, 52, 20, 62, 30, 54, 22],
    [3, 35, 11, 43, 1, 33, 9, 41],
    [51, 19, 59, 27, 49, 17, 57, 25],
    [15, 47, 7, 39, 13, 45, 5, 37],
    [63, 31, 55, 23, 61, 29, 53, 21],
];

/// Side of the nearest-colour cache, in levels per channel (6 bits).
const CACHE_BITS: u32 = 6;
const UNKNOWN: u16 = u16::MAX;

/// The bytes a [`Quantizer`] holds besides the frame and the copy of its opaque pixels that a
/// palette is learnt from: two nearest-colour caches and Wu's histogram. The render plan
/// counts them.
pub const WORKING_BYTES: u64 = 2 * (1 << (3 * CACHE_BITS)) * 2 + (1 << 20);

/// One frame in palette form.
pub struct Indexed {
    /// A palette index per pixel, row by row.
    pub indices: Vec<u8>,
    /// RGB triples; `None` when the frame uses the first frame's palette.
    pub palette: Option<Vec<u8>>,
    pub transparent: Option<u8>,
}

/// Quantises the frames of one image in order; see the module's documentation.
#[derive(Default)]
pub struct Quantizer {
    current: Option<Palette>,
    /// Whether `current` is the palette of the first frame, which the GIF carries as global.
    current_is_first: bool,
    frames: usize,
}

struct Palette {
    /// RGB triples, at most 256.
    colors: Vec<[u8; 3]>,
    /// The index drawn for transparent pixels, if it has one.
    transparent: Option<u8>,
    nearest: Nearest,
    /// Offset added to a pixel at the Bayer matrix's last step, in levels; 0 for an exact palette.
    spread: i32,
    /// Mean squared error of the palette on the frame it was made for.
    fit: f64,
}

enum Nearest {
    /// Every colour of the frame, each its own entry.
    Exact(HashMap<[u8; 3], u8>),
    /// A learnt palette: its indices sorted by green, searched outward from a colour's green,
    /// and the answers cached on a 64^3 grid.
    Learnt { by_green: Vec<u8>, cache: Vec<u16> },
}

impl Quantizer {
    /// The frame `rgba` (`width` x `height`, 4 bytes a pixel) in palette form.
    pub fn frame(&mut self, rgba: &[u8], width: u32) -> Indexed {
        let first = self.frames == 0;
        self.frames += 1;
        let transparent = rgba.chunks_exact(4).any(|p| p[3] < OPAQUE);
        let usable = |p: &Palette| p.transparent.is_some() == transparent;

        if let Some(exact) = Palette::exact(rgba, transparent) {
            // An exact palette is as good as any; keep the current one if it holds every colour.
            let keep = self.current.as_ref().is_some_and(|current| {
                usable(current)
                    && matches!(&current.nearest, Nearest::Exact(map) if exact_keys(&exact).all(|c| map.contains_key(c)))
            });
            if !keep {
                self.replace(exact, first);
            }
        } else {
            let sample = Sample::of(rgba);
            let current_error = self.current.as_mut().filter(|c| usable(c)).map(|current| current.error(&sample));
            let keep_unlearnt = match (&self.current, current_error) {
                (Some(current), Some(error)) => error <= current.fit * KEEP_UNLEARNT + KEEP_FLOOR,
                _ => false,
            };
            if !keep_unlearnt {
                let mut learnt = Palette::learn(rgba, transparent);
                let learnt_error = learnt.error(&sample);
                learnt.fit = learnt_error;
                learnt.spread = spread(learnt_error);
                let keep = current_error.is_some_and(|error| error <= learnt_error * KEEP_OVER_NEW);
                if !keep {
                    self.replace(learnt, first);
                }
            }
        }

        let palette = self.current.as_mut().expect("a palette was chosen above");
        let indices = palette.map(rgba, width);
        Indexed {
            indices,
            palette: (!self.current_is_first || first).then(|| palette.rgb()),
            transparent: palette.transparent,
        }
    }

    /// How many frames have been quantised.
    pub fn frames(&self) -> usize {
        self.frames
    }

    fn replace(&mut self, palette: Palette, first: bool) {
        self.current = Some(palette);
        self.current_is_first = first;
    }
}

fn exact_keys(palette: &Palette) -> impl Iterator<Item = &[u8; 3]> {
    palette.colors.iter().enumerate().filter(move |(i, _)| palette.transparent != Some(*i as u8)).map(|(_, c)| c)
}

/// Every 1/n-th opaque pixel of a frame, at most [`SAMPLE`] of them.
struct Sample(Vec<[u8; 3]>);

impl Sample {
    fn of(rgba: &[u8]) -> Sample {
        let pixels = rgba.len() / 4;
        let step = pixels.div_ceil(SAMPLE).max(1);
        // An odd step, so that the sample does not fall into one column of an image whose width
        // divides it.
        let step = step | 1;
        Sample(rgba.chunks_exact(4).step_by(step).filter(|p| p[3] >= OPAQUE).map(|p| [p[0], p[1], p[2]]).collect())
    }
}

impl Palette {
    /// The frame's own colours, if they fit in 256 entries with the transparent one.
    fn exact(rgba: &[u8], transparent: bool) -> Option<Palette> {
        let room = if transparent { 255 } else { 256 };
        let mut map: HashMap<[u8; 3], u8> = HashMap::new();
        let mut colors = Vec::new();
        for p in rgba.chunks_exact(4).filter(|p| p[3] >= OPAQUE) {
            let color = [p[0], p[1], p[2]];
            if let Entry::Vacant(entry) = map.entry(color) {
                if colors.len() == room {
                    return None;
                }
                entry.insert(colors.len() as u8);
                colors.push(color);
            }
        }
        let transparent = transparent.then(|| {
            colors.push([0, 0, 0]);
            (colors.len() - 1) as u8
        });
        Some(Palette { colors, transparent, nearest: Nearest::Exact(map), spread: 0, fit: 0.0 })
    }

    /// A palette learnt from the frame's opaque pixels by Wu's method.
    fn learn(rgba: &[u8], transparent: bool) -> Palette {
        let size = if transparent { 255u16 } else { 256 };
        let opaque: Vec<Srgb<u8>> =
            rgba.chunks_exact(4).filter(|p| p[3] >= OPAQUE).map(|p| Srgb::new(p[0], p[1], p[2])).collect();
        let mut colors: Vec<[u8; 3]> = PaletteSize::try_from(size)
            .ok()
            .zip(WuU8x3::run_slice(&opaque, BinnerU8x3::rgb()).ok())
            .map(|(size, wu)| wu.palette(size).iter().map(|c| [c.red, c.green, c.blue]).collect())
            .unwrap_or_default();
        if colors.is_empty() {
            colors.push([0, 0, 0]);
        }
        drop(opaque);
        let mut by_green: Vec<u8> = (0..colors.len() as u16).map(|i| i as u8).collect();
        by_green.sort_by_key(|&i| colors[usize::from(i)][1]);
        let transparent = transparent.then(|| {
            colors.push([0, 0, 0]);
            (colors.len() - 1) as u8
        });
        Palette {
            colors,
            transparent,
            nearest: Nearest::Learnt { by_green, cache: vec![UNKNOWN; 1 << (3 * CACHE_BITS)] },
            spread: 0,
            fit: 0.0,
        }
    }

    fn rgb(&self) -> Vec<u8> {
        self.colors.iter().flatten().copied().collect()
    }

    /// The index of the colour nearest `color` (never the transparent one).
    fn nearest(&mut self, color: [u8; 3]) -> u8 {
        match &mut self.nearest {
            Nearest::Exact(map) => match map.get(&color) {
                Some(&index) => index,
                // Not one of the palette's colours (a later frame's): the nearest of them.
                None => nearest_of(&self.colors, self.transparent, color),
            },
            Nearest::Learnt { by_green, cache } => {
                let shift = 8 - CACHE_BITS;
                let cell = (usize::from(color[0] >> shift) << (2 * CACHE_BITS))
                    | (usize::from(color[1] >> shift) << CACHE_BITS)
                    | usize::from(color[2] >> shift);
                if cache[cell] == UNKNOWN {
                    // The cell's centre stands for every colour in it.
                    let centre = |c: u8| (c >> shift << shift) | (1 << (shift - 1));
                    let centre = [centre(color[0]), centre(color[1]), centre(color[2])];
                    cache[cell] = u16::from(nearest_by_green(&self.colors, by_green, centre));
                }
                cache[cell] as u8
            }
        }
    }

    /// Mean squared error of the palette's nearest colours over the sample.
    fn error(&mut self, sample: &Sample) -> f64 {
        if sample.0.is_empty() {
            return 0.0;
        }
        let mut total = 0u64;
        for &color in &sample.0 {
            let index = self.nearest(color);
            total += distance(self.colors[usize::from(index)], color);
        }
        total as f64 / sample.0.len() as f64
    }

    /// The frame's indices, ordered-dithered.
    fn map(&mut self, rgba: &[u8], width: u32) -> Vec<u8> {
        let width = width.max(1) as usize;
        // One matrix for each channel (the same one transposed and moved half a cell), so that
        // the nudges explore around a colour in every direction, not only along the grey axis.
        let offset = |step: u8| ((i32::from(step) * 2 + 1 - 64) * self.spread / 128) as i16;
        let offsets: [[[i16; 3]; 8]; 8] = std::array::from_fn(|y| {
            std::array::from_fn(|x| [offset(BAYER[y][x]), offset(BAYER[x][y]), offset(BAYER[(y + 4) & 7][(x + 4) & 7])])
        });
        let mut indices = Vec::with_capacity(rgba.len() / 4);
        for (y, row) in rgba.chunks(width * 4).enumerate() {
            let offsets = &offsets[y & 7];
            for (x, p) in row.chunks_exact(4).enumerate() {
                let index = match self.transparent {
                    Some(transparent) if p[3] < OPAQUE => transparent,
                    _ => {
                        let offset = &offsets[x & 7];
                        let nudge = |c: usize| (i16::from(p[c]) + offset[c]).clamp(0, 255) as u8;
                        self.nearest([nudge(0), nudge(1), nudge(2)])
                    }
                };
                indices.push(index);
            }
        }
        indices
    }
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u64 {
    a.iter().zip(b).map(|(&a, b)| u64::from(a.abs_diff(b)).pow(2)).sum()
}

fn nearest_of(colors: &[[u8; 3]], transparent: Option<u8>, color: [u8; 3]) -> u8 {
    let mut best = (u64::MAX, 0u8);
    for (i, &c) in colors.iter().enumerate() {
        if transparent == Some(i as u8) {
            continue;
        }
        let d = distance(c, color);
        if d < best.0 {
            best = (d, i as u8);
        }
    }
    best.1
}

/// The index of the colour of `colors` nearest `color`, searched outward from `color`'s green
/// in `by_green` (indices sorted by green) until the green difference alone is past the best.
fn nearest_by_green(colors: &[[u8; 3]], by_green: &[u8], color: [u8; 3]) -> u8 {
    let start = by_green.partition_point(|&i| colors[usize::from(i)][1] < color[1]);
    let mut best = (u64::MAX, by_green.first().copied().unwrap_or(0));
    let (mut up, mut down) = (start, start);
    while up < by_green.len() || down > 0 {
        if up < by_green.len() {
            let i = by_green[up];
            let c = colors[usize::from(i)];
            if u64::from(c[1].abs_diff(color[1])).pow(2) < best.0 {
                best = best.min((distance(c, color), i));
                up += 1;
            } else {
                up = by_green.len();
            }
        }
        if down > 0 {
            let i = by_green[down - 1];
            let c = colors[usize::from(i)];
            if u64::from(c[1].abs_diff(color[1])).pow(2) < best.0 {
                best = best.min((distance(c, color), i));
                down -= 1;
            } else {
                down = 0;
            }
        }
    }
    best.1
}

/// The dithering offset's range for a palette that fits its frame with mean squared error
/// `fit` (over the three channels): the typical gap between neighbouring colours. Quantising
/// to a step of `d` leaves an error of `d / sqrt(12)` on each channel, so `d` is
/// `sqrt(12 * fit / 3)`.
fn spread(fit: f64) -> i32 {
    (4.0 * fit).sqrt().round() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32, shift: u32) -> Vec<u8> {
        let mut rgba = Vec::new();
        for y in 0..height {
            for x in 0..width {
                rgba.extend([(x * 255 / width) as u8, (y * 255 / height) as u8, ((x + y + shift) % 256) as u8, 255]);
            }
        }
        rgba
    }

    #[test]
    fn few_colours_are_kept_exactly_and_undithered() {
        let mut rgba = Vec::new();
        for i in 0..300u32 {
            rgba.extend([(i % 7 * 30) as u8, (i % 5 * 40) as u8, 9, 255]);
        }
        let indexed = Quantizer::default().frame(&rgba, 30);
        let palette = indexed.palette.expect("the first frame has a palette");
        for (p, &i) in rgba.chunks_exact(4).zip(&indexed.indices) {
            assert_eq!(&palette[usize::from(i) * 3..][..3], &p[..3]);
        }
        assert_eq!(indexed.transparent, None);
    }

    #[test]
    fn transparent_pixels_get_an_index_no_opaque_pixel_uses() {
        let mut rgba = gradient(64, 64, 0);
        for p in rgba.chunks_exact_mut(4).step_by(3) {
            p[3] = 0;
        }
        let indexed = Quantizer::default().frame(&rgba, 64);
        let transparent = indexed.transparent.expect("the frame has transparent pixels");
        for (p, &i) in rgba.chunks_exact(4).zip(&indexed.indices) {
            assert_eq!(p[3] < OPAQUE, i == transparent);
        }
    }

    #[test]
    fn a_similar_frame_keeps_the_palette_and_a_different_one_gets_its_own() {
        let mut quantizer = Quantizer::default();
        let first = quantizer.frame(&gradient(96, 64, 0), 96);
        assert!(first.palette.is_some());
        let similar = quantizer.frame(&gradient(96, 64, 3), 96);
        assert!(similar.palette.is_none(), "a frame like the first shares its palette");
        let red: Vec<u8> = (0..96 * 64u32).flat_map(|i| [255, (i % 200) as u8, (i / 96) as u8, 255]).collect();
        let different = quantizer.frame(&red, 96);
        assert!(different.palette.is_some(), "a frame of other colours gets its own palette");
    }
}
