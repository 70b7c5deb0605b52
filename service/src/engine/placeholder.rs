//! What a client shows before an image has loaded, computed once at upload from the pixels
//! upload validation decodes anyway (at 1/8 for a JPEG or WebP, in full otherwise; the first
//! frame of an animation): a ThumbHash, a BlurHash, and the dominant colour.
//!
//! - **ThumbHash** (base64) and **BlurHash** (4x3 components) of the image as displayed (EXIF
//!   orientation applied), from a box-filtered thumbnail of at most 100x100 pixels (ThumbHash's
//!   own limit; BlurHash gains nothing from more).
//! - **Dominant colour** (`#rrggbb`): the most frequent colour among up to 256x256 samples taken
//!   without blending (so the colours counted are colours of the image), opaque pixels only.
//!   Colours are counted in buckets of 16 levels a channel, and the answer is the most frequent
//!   exact colour of the fullest bucket: a flat image gives its colour, an image of two colours
//!   the one that covers more of it, exactly.
//!
//! Pixels are taken as decoded, in the source's colour space (an embedded profile is not
//! applied): a placeholder is a sketch of the image, and its colours are those of the file.

use std::collections::HashMap;

use base64::Engine as _;
use image::metadata::Orientation;
use image::{DynamicImage, GenericImageView};

/// ThumbHash's largest side.
const THUMB_SIDE: u32 = 100;
/// Samples a side for the dominant colour.
const SAMPLES_SIDE: u32 = 256;
/// BlurHash's components across and down: its authors' default for a landscape image.
const BLURHASH_COMPONENTS: (u32, u32) = (4, 3);

/// The most this module holds beside the decoded image: the thumbnail twice (sampled, then
/// turned), and a count for each distinct sampled colour (at most 256x256 of them, 3 bytes and
/// a count each, at a hash table's load).
pub const WORKING_BYTES: u64 =
    2 * (THUMB_SIDE as u64 * THUMB_SIDE as u64 * 4) + (SAMPLES_SIDE as u64 * SAMPLES_SIDE as u64) * 16 + (1 << 12) * 4;

/// An image's placeholders and dominant colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// ThumbHash, standard base64.
    pub thumbhash: String,
    pub blurhash: String,
    /// `#rrggbb`, or `None` when no pixel is opaque enough to count.
    pub dominant_color: Option<String>,
}

/// The placeholders of `image` (as decoded, before `orientation`).
/// No copy of the image is made: the thumbnail and the samples read it pixel by pixel.
pub fn compute(image: &DynamicImage, orientation: Orientation) -> Placeholder {
    let (width, height) = image.dimensions();
    let (thumb_width, thumb_height) = thumb_size(width, height);
    let mut thumb = DynamicImage::ImageRgba8(image::imageops::thumbnail(image, thumb_width, thumb_height));
    thumb.apply_orientation(orientation);
    let thumb = thumb.into_rgba8();
    let (thumb_width, thumb_height) = thumb.dimensions();
    let hash = thumbhash::rgba_to_thumb_hash(thumb_width as usize, thumb_height as usize, thumb.as_raw());
    let blurhash =
        blurhash::encode(BLURHASH_COMPONENTS.0, BLURHASH_COMPONENTS.1, thumb_width, thumb_height, thumb.as_raw())
            // Only component counts out of 1..=9 are refused, and these are constants.
            .unwrap_or_default();
    Placeholder {
        thumbhash: base64::engine::general_purpose::STANDARD.encode(hash),
        blurhash,
        dominant_color: dominant_color(image).map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}")),
    }
}

/// The thumbnail's size: the image's aspect ratio within 100x100, at least one pixel a side.
fn thumb_size(width: u32, height: u32) -> (u32, u32) {
    let (width, height) = (width.max(1), height.max(1));
    if width <= THUMB_SIDE && height <= THUMB_SIDE {
        return (width, height);
    }
    let scale = |side: u32, long: u32| {
        ((u64::from(side) * u64::from(THUMB_SIDE) + u64::from(long) / 2) / u64::from(long)).clamp(1, 100) as u32
    };
    if width >= height { (THUMB_SIDE, scale(height, width)) } else { (scale(width, height), THUMB_SIDE) }
}

/// The most frequent colour of the fullest 16-level bucket among the sampled opaque pixels.
fn dominant_color(image: &DynamicImage) -> Option<[u8; 3]> {
    let (width, height) = image.dimensions();
    let step_x = width.div_ceil(SAMPLES_SIDE).max(1);
    let step_y = height.div_ceil(SAMPLES_SIDE).max(1);
    let mut buckets = vec![0u32; 1 << 12];
    let mut colours: HashMap<[u8; 3], u32> = HashMap::new();
    for y in (0..height).step_by(step_y as usize) {
        for x in (0..width).step_by(step_x as usize) {
            let [r, g, b, a] = image.get_pixel(x, y).0;
            if a < 128 {
                continue;
            }
            buckets[bucket([r, g, b])] += 1;
            *colours.entry([r, g, b]).or_default() += 1;
        }
    }
    let (fullest, &count) = buckets.iter().enumerate().max_by_key(|&(index, count)| (*count, usize::MAX - index))?;
    if count == 0 {
        return None;
    }
    colours
        .into_iter()
        .filter(|(colour, _)| bucket(*colour) == fullest)
        .max_by_key(|&(colour, count)| (count, std::cmp::Reverse(colour)))
        .map(|(colour, _)| colour)
}

fn bucket([r, g, b]: [u8; 3]) -> usize {
    (usize::from(r >> 4) << 8) | (usize::from(g >> 4) << 4) | usize::from(b >> 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn a_flat_image_has_its_colour_exactly() {
        for colour in [[0, 0, 0], [255, 255, 255], [18, 52, 86], [200, 17, 240]] {
            let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(640, 480, Rgb(colour)));
            let [r, g, b] = colour;
            let placeholder = compute(&image, Orientation::NoTransforms);
            assert_eq!(placeholder.dominant_color, Some(format!("#{r:02x}{g:02x}{b:02x}")));
        }
    }

    #[test]
    fn of_two_colours_the_one_covering_more_wins_exactly_whatever_the_layout() {
        // Stripes, halves and a checkerboard, each with 60% of one colour: neither blending at
        // the edges nor the sampling grid may bring in a third colour.
        let (more, less) = ([30, 120, 200], [250, 90, 10]);
        let layouts: [&dyn Fn(u32, u32) -> bool; 3] =
            [&|x, _| x < 600, &|_, y| y % 10 < 6, &|x, y| (x / 7 + y / 5) % 5 < 3];
        for (index, more_at) in layouts.iter().enumerate() {
            let image = RgbImage::from_fn(1000, 700, |x, y| Rgb(if more_at(x, y) { more } else { less }));
            let placeholder = compute(&DynamicImage::ImageRgb8(image), Orientation::NoTransforms);
            assert_eq!(placeholder.dominant_color.as_deref(), Some("#1e78c8"), "layout {index}");
        }
    }

    #[test]
    fn transparent_pixels_do_not_count() {
        let image =
            RgbaImage::from_fn(100, 100, |x, _| if x < 80 { Rgba([255, 0, 0, 0]) } else { Rgba([0, 0, 255, 255]) });
        let placeholder = compute(&DynamicImage::ImageRgba8(image), Orientation::NoTransforms);
        assert_eq!(placeholder.dominant_color.as_deref(), Some("#0000ff"));
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, Rgba([9, 9, 9, 0])));
        assert_eq!(compute(&clear, Orientation::NoTransforms).dominant_color, None);
    }

    #[test]
    fn thumb_sizes_keep_the_aspect_ratio_within_100() {
        assert_eq!(thumb_size(2560, 1600), (100, 63));
        assert_eq!(thumb_size(1600, 2560), (63, 100));
        assert_eq!(thumb_size(64, 48), (64, 48));
        assert_eq!(thumb_size(100_000, 1), (100, 1));
        assert_eq!(thumb_size(1, 100_000), (1, 100));
        assert_eq!(thumb_size(0, 0), (1, 1));
    }

    /// Per-channel mean absolute difference of two RGBA images of one size.
    fn mean_difference(a: &RgbaImage, b: &RgbaImage) -> [f64; 3] {
        let mut sums = [0f64; 3];
        for (p, q) in a.pixels().zip(b.pixels()) {
            for c in 0..3 {
                sums[c] += (f64::from(p[c]) - f64::from(q[c])).abs();
            }
        }
        sums.map(|sum| sum / f64::from(a.width() * a.height()))
    }

    #[test]
    fn the_thumbhash_decodes_close_to_the_image_as_displayed() {
        // A smooth scene (what a placeholder can carry: its lowest frequencies): a sky that
        // darkens upwards and warms to the right, a warm ground fading in below.
        let image = RgbImage::from_fn(800, 500, |x, y| {
            let (fx, fy) = (x as f32 / 800.0, y as f32 / 500.0);
            let ground = ((fy - 0.45) / 0.3).clamp(0.0, 1.0);
            let sky = [60.0 + 80.0 * fx, 110.0 + 60.0 * fy, 220.0 - 40.0 * fx];
            let earth = [170.0 + 40.0 * fx, 120.0, 50.0];
            Rgb(std::array::from_fn(|c| (sky[c] * (1.0 - ground) + earth[c] * ground) as u8))
        });
        let image = DynamicImage::ImageRgb8(image);
        for orientation in [Orientation::NoTransforms, Orientation::Rotate90] {
            let placeholder = compute(&image, orientation);
            let hash = base64::engine::general_purpose::STANDARD.decode(&placeholder.thumbhash).unwrap();
            let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash).unwrap();
            let decoded = RgbaImage::from_raw(w as u32, h as u32, rgba).unwrap();
            let mut shown = image.clone();
            shown.apply_orientation(orientation);
            let expected = image::imageops::thumbnail(&shown.to_rgba8(), w as u32, h as u32);
            let difference = mean_difference(&decoded, &expected);
            // Measured: 9.9, 4.6 and 17.3 levels (R, G, B). ThumbHash's decoder boosts the
            // chroma by 1.25 on purpose (its quantisation flattens it), hence blue's share.
            assert!(difference.iter().all(|&d| d < 20.0), "{orientation:?}: {difference:?} ({w}x{h})");
            // Against another image the difference is far larger (measured: 79, 17 and 139).
            let mut inverted = expected.clone();
            image::imageops::invert(&mut inverted);
            let far = mean_difference(&decoded, &inverted);
            assert!(far.iter().sum::<f64>() > 3.0 * difference.iter().sum::<f64>(), "{far:?}");
            // Turned as displayed: the 800x500 source is portrait once rotated.
            assert_eq!(h > w, orientation == Orientation::Rotate90, "{w}x{h}");
            assert_eq!(placeholder.blurhash.len(), 4 + 2 * 4 * 3, "{}", placeholder.blurhash);
        }
    }
}
