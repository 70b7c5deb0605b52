//! Watermarks: images named in configuration, composited onto the output of a render that asks
//! for one (`wm=NAME`).
//!
//! A [`Watermark`] is decoded once, when the service starts, and held in *linear light with
//! premultiplied alpha* at 16 bits a channel, the space both its resampling and its compositing
//! are correct in: resampling sRGB values darkens edges and thin strokes, and blending them
//! makes a half-transparent watermark look darker than it is.
//!
//! A render places it ([`placement`]) from the output's size alone, so the plan knows its size
//! before anything is decoded: its longer side is `wm_scale` of the output's shorter side, at
//! `wm_pos`, `wm_margin` pixels (times `dpr`) from the edges it is placed against and never
//! past the output's edges. It is resampled to that size ([`prepare`]) and composited
//! ([`composite`]) after every other step but the flattening of alpha, so it lies on top of
//! padding and effects and is not blurred or grayed with the image.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use image::{DynamicImage, ImageBuffer, Rgba};
use sha2::{Digest, Sha256};

use crate::engine::error::EngineError;
use crate::engine::ops::{self, Region};
use crate::engine::spec::{Gravity, SpecError, WatermarkInfo, WatermarkSpec};
use crate::engine::{Limits, color, decode};

/// The longest side a watermark is held at; a larger image is reduced to it when loaded. A
/// watermark drawn larger than this (on an output whose shorter side is more than `MAX_SIDE`
/// over `wm_scale`) is enlarged from it.
pub const MAX_SIDE: u32 = 2048;

type Linear = ImageBuffer<Rgba<u16>, Vec<u16>>;

/// A watermark's pixels, ready to be resampled: linear light, premultiplied, 16 bits.
#[derive(Debug)]
pub struct Watermark {
    info: WatermarkInfo,
    pixels: DynamicImage,
}

impl Watermark {
    /// Decodes `bytes` (any format the engine reads, within `limits`; the first frame of an
    /// animation) as displayed and converted to sRGB, and holds it at most [`MAX_SIDE`] a side.
    pub fn load(bytes: &[u8], limits: &Limits) -> Result<Watermark, EngineError> {
        let probe = decode::probe(bytes, limits)?;
        let mut image = decode::decode(bytes, &probe, 1, limits)?;
        image.apply_orientation(probe.metadata.orientation());
        let mut rgba = DynamicImage::ImageRgba8(image.into_rgba8());
        if let Some(icc) = &probe.metadata.icc_profile {
            color::to_srgb(&mut rgba, icc);
        }
        let rgba = rgba.into_rgba8();
        let linear: Linear = ImageBuffer::from_fn(rgba.width(), rgba.height(), |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            let alpha = f32::from(a) / 255.0;
            let channel = |v: u8| (TO_LINEAR[usize::from(v)] * alpha * 65535.0).round() as u16;
            Rgba([channel(r), channel(g), channel(b), u16::from(a) * 257])
        });
        let mut pixels = DynamicImage::ImageRgba16(linear);
        let (width, height) = (pixels.width(), pixels.height());
        if width.max(height) > MAX_SIDE {
            let size = fit_inside((width, height), MAX_SIDE);
            pixels = ops::resample(&pixels, Region::whole(&pixels), size, false)?;
        }
        let digest = Sha256::digest(pixels.as_bytes());
        let info = WatermarkInfo { digest: hex::encode(&digest[..8]), width: pixels.width(), height: pixels.height() };
        Ok(Watermark { info, pixels })
    }

    pub fn info(&self) -> &WatermarkInfo {
        &self.info
    }
}

/// The watermarks a service has, by name. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Watermarks {
    by_name: Arc<BTreeMap<String, Arc<Watermark>>>,
}

impl Watermarks {
    pub fn new(by_name: BTreeMap<String, Watermark>) -> Watermarks {
        Watermarks { by_name: Arc::new(by_name.into_iter().map(|(name, wm)| (name, Arc::new(wm))).collect()) }
    }

    /// What specs need to know of each: see [`crate::engine::Presets::with_watermarks`].
    pub fn infos(&self) -> BTreeMap<String, WatermarkInfo> {
        self.by_name.iter().map(|(name, wm)| (name.clone(), wm.info.clone())).collect()
    }

    /// The watermark a spec names, if it is the one the spec was parsed against.
    pub fn resolve(&self, spec: &WatermarkSpec) -> Result<&Watermark, EngineError> {
        match self.by_name.get(&spec.name) {
            Some(wm) if wm.info == spec.info => Ok(wm),
            _ => Err(EngineError::Spec(SpecError::new("wm", format!("no watermark named `{}`", spec.name)))),
        }
    }
}

/// Where a watermark goes on an output, and its size there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Places `spec`'s watermark on an output of `output` pixels, for a spec of `dpr_percent`.
pub fn placement(output: (u32, u32), spec: &WatermarkSpec, dpr_percent: u16) -> Placement {
    let shorter = u64::from(output.0.min(output.1));
    let side = ((shorter * u64::from(spec.scale_percent) + 50) / 100).max(1) as u32;
    let (width, height) = fit_inside((spec.info.width.max(1), spec.info.height.max(1)), side);
    let (width, height) = (width.min(output.0.max(1)), height.min(output.1.max(1)));
    let margin = (u64::from(spec.margin) * u64::from(dpr_percent)).div_ceil(100).min(u64::from(u32::MAX)) as u32;
    let (free_x, free_y) = (output.0.saturating_sub(width), output.1.saturating_sub(height));
    let near = |free: u32| margin.min(free);
    let far = |free: u32| free.saturating_sub(margin);
    let x = match spec.position {
        Gravity::West | Gravity::NorthWest | Gravity::SouthWest => near(free_x),
        Gravity::East | Gravity::NorthEast | Gravity::SouthEast => far(free_x),
        _ => free_x / 2,
    };
    let y = match spec.position {
        Gravity::North | Gravity::NorthWest | Gravity::NorthEast => near(free_y),
        Gravity::South | Gravity::SouthWest | Gravity::SouthEast => far(free_y),
        _ => free_y / 2,
    };
    Placement { x, y, width, height }
}

/// The largest size of `size`'s aspect whose longer side is `side`, at least 1x1.
fn fit_inside((width, height): (u32, u32), side: u32) -> (u32, u32) {
    let scaled = |short: u32, long: u32| {
        ((u64::from(short) * u64::from(side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32
    };
    if width >= height { (side, scaled(height, width)) } else { (scaled(width, height), side) }
}

/// The bytes [`prepare`] holds at most: the resampled watermark and the resampler's working
/// memory (as [`crate::engine::plan`] counts a resize's, on 8 bytes a pixel).
pub fn prepare_bytes(source: (u32, u32), placed: Placement) -> u64 {
    let (sw, sh) = (u64::from(source.0), u64::from(source.1));
    let (tw, th) = (u64::from(placed.width), u64::from(placed.height));
    tw * th * 8 + (tw * sh).max(sw * th) * 8 + (sw.max(tw) + sh.max(th)) * 96 + (16 << 10)
}

/// A watermark resampled to where it goes on one output size.
#[derive(Debug)]
pub struct Prepared {
    placed: Placement,
    output: (u32, u32),
    pixels: DynamicImage,
    opacity: f32,
}

/// Resamples `watermark` to its place on an output of `output` pixels.
pub fn prepare(
    watermark: &Watermark,
    spec: &WatermarkSpec,
    output: (u32, u32),
    dpr_percent: u16,
) -> Result<Prepared, EngineError> {
    let placed = placement(output, spec, dpr_percent);
    let source = &watermark.pixels;
    let pixels = ops::resample(source, Region::whole(source), (placed.width, placed.height), false)?;
    Ok(Prepared { placed, output, pixels, opacity: f32::from(spec.opacity_percent) / 100.0 })
}

impl Prepared {
    /// Whether it was prepared for an output of this size (every frame of an animation is).
    pub fn fits(&self, output: (u32, u32)) -> bool {
        self.output == output
    }
}

/// Composites `prepared` over `image` in linear light; gray images become colour (with their
/// alpha, if any). The alpha of the result is the watermark's over the image's.
pub fn composite(image: DynamicImage, prepared: &Prepared) -> DynamicImage {
    let mut image = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        DynamicImage::ImageLuma8(_) => DynamicImage::ImageRgb8(image.into_rgb8()),
        other => DynamicImage::ImageRgba8(other.into_rgba8()),
    };
    let Some(mark) = prepared.pixels.as_rgba16() else { return image };
    let Placement { x: left, y: top, .. } = prepared.placed;
    let opacity = prepared.opacity;
    let (width, height) = (image.width(), image.height());
    let channels = usize::from(image.color().channel_count());
    let stride = width as usize * channels;
    let buffer: &mut [u8] = match &mut image {
        DynamicImage::ImageRgb8(buf) => buf.as_mut(),
        DynamicImage::ImageRgba8(buf) => buf.as_mut(),
        _ => return image,
    };
    for (y, row) in mark.rows().enumerate() {
        let Some(out_y) = (top as usize).checked_add(y).filter(|&v| v < height as usize) else { break };
        for (x, pixel) in row.enumerate() {
            let out_x = left as usize + x;
            if out_x >= width as usize {
                break;
            }
            let [r, g, b, a] = pixel.0;
            if a == 0 {
                continue;
            }
            let alpha = f32::from(a) / 65535.0 * opacity;
            // Resampling may ring a channel past its alpha; premultiplied, it cannot exceed it.
            let premultiplied = |v: u16| f32::from(v.min(a)) / 65535.0 * opacity;
            let at = out_y * stride + out_x * channels;
            let Some(out) = buffer.get_mut(at..at + channels) else { continue };
            let under = if channels == 4 { f32::from(out[3]) / 255.0 } else { 1.0 };
            let result_alpha = alpha + under * (1.0 - alpha);
            if result_alpha <= 0.0 {
                continue;
            }
            for (value, mark) in out.iter_mut().zip([r, g, b]) {
                let linear = premultiplied(mark) + TO_LINEAR[usize::from(*value)] * under * (1.0 - alpha);
                *value = to_srgb(linear / result_alpha);
            }
            if channels == 4 {
                out[3] = (result_alpha * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    image
}

/// sRGB's transfer function, decoded: each 8-bit value as linear light from 0 to 1.
static TO_LINEAR: LazyLock<[f32; 256]> = LazyLock::new(|| {
    std::array::from_fn(|v| {
        let c = v as f32 / 255.0;
        if c <= 0.040_45 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    })
});

/// Linear light at 16 bits back to 8-bit sRGB, rounded (held in the static, not allocated, so
/// that the first render with a watermark holds no more than the next).
static FROM_LINEAR: LazyLock<[u8; 65536]> = LazyLock::new(|| {
    std::array::from_fn(|v| {
        let l = v as f32 / 65535.0;
        let c = if l <= 0.003_130_8 { l * 12.92 } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 };
        (c * 255.0).round().clamp(0.0, 255.0) as u8
    })
});

fn to_srgb(linear: f32) -> u8 {
    FROM_LINEAR[(linear.clamp(0.0, 1.0) * 65535.0).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(width: u32, height: u32, position: Gravity, scale_percent: u8, margin: u32) -> WatermarkSpec {
        WatermarkSpec {
            name: "logo".to_owned(),
            info: WatermarkInfo { digest: String::new(), width, height },
            position,
            scale_percent,
            opacity_percent: 100,
            margin,
        }
    }

    #[test]
    fn placement_scales_to_the_shorter_side_and_keeps_the_aspect() {
        let placed = placement((400, 200), &spec(100, 50, Gravity::SouthEast, 50, 0), 100);
        assert_eq!(placed, Placement { x: 300, y: 150, width: 100, height: 50 });
        let placed = placement((400, 200), &spec(50, 100, Gravity::NorthWest, 50, 10), 100);
        assert_eq!(placed, Placement { x: 10, y: 10, width: 50, height: 100 });
        // The margin is in pixels before dpr.
        let placed = placement((400, 200), &spec(50, 100, Gravity::NorthWest, 50, 10), 150);
        assert_eq!((placed.x, placed.y), (15, 15));
    }

    #[test]
    fn placement_stays_inside_the_output() {
        for position in [Gravity::Center, Gravity::North, Gravity::SouthEast, Gravity::West, Gravity::NorthEast] {
            for (output, margin, scale) in [((1, 1), 0, 100), ((3, 500), 1000, 100), ((500, 3), 7, 1), ((16, 9), 0, 1)]
            {
                let placed = placement(output, &spec(2048, 1, position, scale, margin), 400);
                assert!(placed.width >= 1 && placed.height >= 1);
                assert!(placed.x + placed.width <= output.0 && placed.y + placed.height <= output.1, "{placed:?}");
            }
        }
    }

    fn png(image: DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        bytes
    }

    fn flat(width: u32, height: u32, rgba: [u8; 4]) -> Vec<u8> {
        png(DynamicImage::ImageRgba8(ImageBuffer::from_pixel(width, height, Rgba(rgba))))
    }

    /// A 200x100 gray image with a 10x10 red watermark named `logo`, rendered as `query`.
    fn render(query: &str, mark: [u8; 4]) -> image::RgbaImage {
        let watermark = Watermark::load(&flat(10, 10, mark), &Limits::default()).unwrap();
        let watermarks = Watermarks::new(BTreeMap::from([("logo".to_owned(), watermark)]));
        let presets = crate::engine::Presets::with_watermarks(Default::default(), watermarks.infos()).unwrap();
        let spec = crate::engine::Spec::parse(query, &presets).unwrap();
        let input = flat(200, 100, [128, 128, 128, 255]);
        let rendered = crate::engine::render_with(&input, &spec, &Limits::default(), &watermarks).unwrap();
        image::load_from_memory(&rendered.bytes).unwrap().into_rgba8()
    }

    /// The smallest rectangle holding the pixels that are not the image's gray.
    fn marked(image: &image::RgbaImage) -> (u32, u32, u32, u32) {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for (x, y, pixel) in image.enumerate_pixels() {
            if pixel.0 != [128, 128, 128, 255] {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
        (x0.min(x1), y0.min(y1), x1.saturating_sub(x0), y1.saturating_sub(y0))
    }

    #[test]
    fn a_watermark_lands_where_its_position_scale_and_margin_say() {
        let red = [255, 0, 0, 255];
        // Scale 0.5 of the shorter side (100) is 50x50; southeast by default, 5 px from the edges.
        let image = render("fmt=png&wm=logo&wm_scale=0.5&wm_margin=5", red);
        assert_eq!(marked(&image), (145, 45, 50, 50));
        assert_eq!(image.get_pixel(170, 70).0, red);
        assert_eq!(image.get_pixel(145, 45).0, red, "a flat watermark resamples to flat, edges too");
        for (query, expected) in [
            ("fmt=png&wm=logo&wm_pos=northwest", (0, 0, 25, 25)),
            ("fmt=png&wm=logo&wm_pos=north&wm_margin=3", (87, 3, 25, 25)),
            ("fmt=png&wm=logo&wm_pos=center&wm_scale=1", (50, 0, 100, 100)),
            ("fmt=png&wm=logo&wm_pos=west&wm_scale=0.1&wm_margin=7&dpr=2", (14, 45, 10, 10)),
            // A margin larger than the room left keeps the watermark inside the output.
            ("fmt=png&wm=logo&wm_pos=east&wm_margin=1000", (0, 37, 25, 25)),
        ] {
            assert_eq!(marked(&render(query, red)), expected, "{query}");
        }
    }

    #[test]
    fn opacity_and_alpha_blend_in_linear_light() {
        // Half-opaque red over sRGB gray 128 (linear 0.2159): red 0.5 + 0.5 * 0.2159 = 0.6079,
        // sRGB 205; green and blue 0.5 * 0.2158 = 0.1079, sRGB 92. Blending the sRGB values
        // would give 192 and 64.
        let expected = [205, 92, 92, 255];
        let by_opacity = render("fmt=png&wm=logo&wm_opacity=0.5", [255, 0, 0, 255]);
        let by_alpha = render("fmt=png&wm=logo", [255, 0, 0, 128]);
        for image in [by_opacity, by_alpha] {
            let pixel = image.get_pixel(187, 87).0;
            assert!(pixel.iter().zip(expected).all(|(&a, b)| a.abs_diff(b) <= 1), "{pixel:?}");
        }
        // Both: a quarter.
        let pixel = render("fmt=png&wm=logo&wm_opacity=0.5", [255, 0, 0, 128]).get_pixel(187, 87).0;
        assert_eq!(pixel[0], to_srgb(0.25 + 0.75 * TO_LINEAR[128]), "{pixel:?}");
        // A fully transparent watermark leaves the image as it was.
        assert_eq!(marked(&render("fmt=png&wm=logo", [255, 0, 0, 0])).2, 0);
    }

    #[test]
    fn transfer_tables_round_trip_every_value() {
        for v in 0..=255u8 {
            assert_eq!(to_srgb(TO_LINEAR[usize::from(v)]), v);
        }
    }
}
