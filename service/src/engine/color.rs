//! Colour: every output is sRGB. An embedded ICC profile that is not sRGB is converted to sRGB
//! (moxcms) and then dropped, so browsers that ignore profiles and those that honour them show
//! the same colours; nothing is shifted silently. CMYK JPEGs are converted through their CMYK
//! profile when they carry one, and through the naive formula otherwise.
//!
//! Transforms are cached by the profile's SHA-256, as a photo library repeats a few profiles.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};
use sha2::{Digest, Sha256};

/// `None` is cached too: the profile is sRGB already, or unusable, and the pixels stay as they are.
type CachedTransform = Option<Arc<Transform8BitExecutor>>;

const CACHE_CAPACITY: usize = 64;

/// Keyed by the profile's SHA-256 and the pixel layout.
type TransformCache = HashMap<([u8; 32], u8), CachedTransform>;

static TRANSFORMS: LazyLock<Mutex<TransformCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached_transform(icc: &[u8], layout: Layout, build: impl FnOnce() -> CachedTransform) -> CachedTransform {
    let key = (<[u8; 32]>::from(Sha256::digest(icc)), layout as u8);
    if let Some(found) = TRANSFORMS.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return found.clone();
    }
    let transform = build();
    let mut cache = TRANSFORMS.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(key, transform.clone());
    transform
}

/// An RGB(A) transform from `icc` to sRGB, or `None` when the profile is not RGB, cannot be
/// parsed, or already maps colours to themselves (an sRGB profile by another name).
fn rgb_transform(icc: &[u8], layout: Layout) -> CachedTransform {
    cached_transform(icc, layout, || {
        let source = ColorProfile::new_from_slice(icc).ok()?;
        if source.color_space != DataColorSpace::Rgb {
            return None;
        }
        let transform = source
            .create_transform_8bit(layout, &ColorProfile::new_srgb(), layout, TransformOptions::default())
            .ok()?;
        if is_identity(transform.as_ref(), layout) { None } else { Some(transform) }
    })
}

fn is_identity(transform: &Transform8BitExecutor, layout: Layout) -> bool {
    let channels = if layout == Layout::Rgba { 4 } else { 3 };
    let probes: [[u8; 3]; 7] =
        [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 64, 32], [30, 200, 120]];
    let src: Vec<u8> = probes.iter().flat_map(|p| p.iter().copied().chain((channels == 4).then_some(255))).collect();
    let mut dst = vec![0u8; src.len()];
    transform.transform(&src, &mut dst).is_ok() && src.iter().zip(&dst).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// Converts RGB or RGBA pixels from `icc` to sRGB in place. Gray images keep their values: a
/// gray profile only changes the tone curve slightly, and moxcms has no 8-bit gray path.
pub fn to_srgb(image: &mut DynamicImage, icc: &[u8]) {
    let (layout, buffer): (Layout, &mut [u8]) = match image {
        DynamicImage::ImageRgb8(buf) => (Layout::Rgb, buf.as_mut()),
        DynamicImage::ImageRgba8(buf) => (Layout::Rgba, buf.as_mut()),
        _ => return,
    };
    let Some(transform) = rgb_transform(icc, layout) else {
        return;
    };
    let source = buffer.to_vec();
    if transform.transform(&source, buffer).is_err() {
        buffer.copy_from_slice(&source);
    }
}

/// Whether [`to_srgb`] leaves an RGB image with this profile as it is: the profile is sRGB (by
/// any name), not RGB, or unusable.
pub fn leaves_rgb_as_is(icc: &[u8]) -> bool {
    rgb_transform(icc, Layout::Rgb).is_none()
}

/// CMYK samples (4 bytes a pixel, as libjpeg returns them) to RGB (3 bytes a pixel).
pub fn cmyk_to_rgb(cmyk: &[u8], icc: Option<&[u8]>, adobe_inverted: bool) -> Vec<u8> {
    let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
    if let Some(icc) = icc {
        let transform = cached_transform(icc, Layout::Cmyka, || {
            let source = ColorProfile::new_from_slice(icc).ok()?;
            if source.color_space != DataColorSpace::Cmyk {
                return None;
            }
            source
                .create_transform_8bit(
                    Layout::Rgba,
                    &ColorProfile::new_srgb(),
                    Layout::Rgb,
                    TransformOptions::default(),
                )
                .ok()
        });
        if let Some(transform) = transform {
            // Profiles describe ink amounts; Adobe files store them inverted.
            let inks: Vec<u8> = if adobe_inverted { cmyk.iter().map(|v| 255 - v).collect() } else { cmyk.to_vec() };
            if transform.transform(&inks, &mut rgb).is_ok() {
                return rgb;
            }
        }
    }
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        // With Adobe's inversion a stored value is 255 - ink, so the product is the remaining light.
        let [c, m, y, k] = if adobe_inverted {
            [src[0], src[1], src[2], src[3]]
        } else {
            [255 - src[0], 255 - src[1], 255 - src[2], 255 - src[3]]
        };
        let k = u16::from(k);
        dst[0] = ((u16::from(c) * k + 127) / 255) as u8;
        dst[1] = ((u16::from(m) * k + 127) / 255) as u8;
        dst[2] = ((u16::from(y) * k + 127) / 255) as u8;
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_cmyk_conversion_handles_both_polarities() {
        // Pure cyan ink, no black: (0, 255, 255) in RGB.
        assert_eq!(cmyk_to_rgb(&[255, 0, 0, 0], None, false), vec![0, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255], None, true), vec![0, 255, 255]);
        // Full black ink.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], None, false), vec![0, 0, 0]);
    }

    #[test]
    fn srgb_profile_leaves_pixels_alone_and_display_p3_changes_them() {
        let srgb_icc = ColorProfile::new_srgb().encode().unwrap();
        let mut image = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(2, 2, image::Rgb([200, 30, 40])));
        to_srgb(&mut image, &srgb_icc);
        assert_eq!(image.as_rgb8().unwrap().get_pixel(0, 0).0, [200, 30, 40]);

        let p3_icc = ColorProfile::new_display_p3().encode().unwrap();
        to_srgb(&mut image, &p3_icc);
        let converted = image.as_rgb8().unwrap().get_pixel(0, 0).0;
        // P3 red is more saturated than sRGB can show: the red channel rises, the others fall.
        assert!(converted[0] > 200 && converted[1] < 30, "{converted:?}");
    }
}
