//! The hostile-input corpus: malformed, forged and unsupported files, generated so that the
//! repository holds no binary fixtures. Each sample says what a reader must answer.

use image::{DynamicImage, ImageFormat};

use crate::images::{encode, jpeg, pattern, png};

/// What Pixelmill must answer for a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Not an image format at all (or empty).
    Unknown,
    /// A format recognised and refused (SVG, PDF, HEIC, AVIF, TIFF, BMP).
    Refused,
    /// A supported format whose bytes are damaged.
    Corrupt,
    /// A header that declares more pixels than the limit.
    TooManyPixels,
}

pub struct Sample {
    pub name: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

fn sample(name: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Sample {
    Sample { name: name.into(), bytes, expect }
}

/// Rewrites a PNG chunk's CRC after its data was changed.
fn fix_png_crc(png: &mut [u8], chunk_start: usize, data_len: usize) {
    let crc = crc32fast::hash(&png[chunk_start + 4..chunk_start + 8 + data_len]);
    png[chunk_start + 8 + data_len..chunk_start + 12 + data_len].copy_from_slice(&crc.to_be_bytes());
}

/// Position of the first SOFn marker's height field in a JPEG.
fn jpeg_sof_dimensions(jpeg: &[u8]) -> usize {
    let mut pos = 2;
    loop {
        let marker = jpeg[pos + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if matches!(marker, 0xC0..=0xC3) {
            return pos + 5;
        }
        pos += 2 + len;
    }
}

pub fn corpus() -> Vec<Sample> {
    use Expect::*;
    let photo = pattern(320, 200);
    let good_jpeg = jpeg(&photo);
    let good_png = png(&photo);
    let good_gif = encode(&DynamicImage::ImageRgb8(photo.clone()), ImageFormat::Gif);
    let good_webp = encode(&DynamicImage::ImageRgb8(photo.clone()), ImageFormat::WebP);

    let mut samples = vec![
        sample("empty", Vec::new(), Unknown),
        sample("text", b"hello, this is not an image\n".to_vec(), Unknown),
        sample("garbage", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(), Unknown),
        sample("jpeg-magic-only", vec![0xFF, 0xD8, 0xFF], Corrupt),
        sample(
            "svg-external-entity",
            br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>"#.to_vec(),
            Refused,
        ),
        sample("svg-plain", br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#.to_vec(), Refused),
        sample("pdf", b"%PDF-1.7\n1 0 obj <<>> endobj\n".to_vec(), Refused),
        sample("heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(), Refused),
        sample("avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec(), Refused),
        sample("tiff", b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(), Refused),
        sample("bmp", [b"BM".as_slice(), &[0u8; 60]].concat(), Refused),
    ];

    // Truncations of every supported format at several offsets.
    for (format, good) in [("jpeg", &good_jpeg), ("png", &good_png), ("gif", &good_gif), ("webp", &good_webp)] {
        for fraction in [0.02, 0.3, 0.6, 0.9] {
            let cut = ((good.len() as f64 * fraction) as usize).max(13);
            samples.push(sample(format!("{format}-truncated-{cut}"), good[..cut].to_vec(), Corrupt));
        }
    }

    // Bit flips in compressed data: a reader may decode them (the damage is in the pixels) or
    // refuse them, but either way without a panic. Flip the header's critical bytes instead,
    // which must be refused.
    let mut bad_crc = good_png.clone();
    bad_crc[29] ^= 0xFF; // inside the IHDR CRC
    samples.push(sample("png-bad-ihdr-crc", bad_crc, Corrupt));

    // Forged dimensions.
    let mut png_bomb = good_png.clone();
    png_bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png_bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    fix_png_crc(&mut png_bomb, 8, 13);
    samples.push(sample("png-bomb-100000x100000", png_bomb, TooManyPixels));

    let mut png_wide = good_png.clone();
    png_wide[16..20].copy_from_slice(&200_000u32.to_be_bytes());
    png_wide[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    fix_png_crc(&mut png_wide, 8, 13);
    samples.push(sample("png-bomb-10-gigapixels", png_wide, TooManyPixels));

    let mut png_zero = good_png.clone();
    png_zero[16..20].copy_from_slice(&0u32.to_be_bytes());
    fix_png_crc(&mut png_zero, 8, 13);
    samples.push(sample("png-zero-width", png_zero, Corrupt));

    let sof = jpeg_sof_dimensions(&good_jpeg);
    let mut jpeg_bomb = good_jpeg.clone();
    // 60000x60000: within libjpeg's 65500 limit, so only the pixel limit can refuse it.
    jpeg_bomb[sof..sof + 4].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    samples.push(sample("jpeg-forged-60000x60000", jpeg_bomb, TooManyPixels));

    let mut jpeg_tall = good_jpeg.clone();
    jpeg_tall[sof..sof + 2].copy_from_slice(&[0x03, 0x20]);
    samples.push(sample("jpeg-forged-height-800", jpeg_tall, Corrupt));

    let mut jpeg_zero = good_jpeg.clone();
    jpeg_zero[sof + 2..sof + 4].copy_from_slice(&[0, 0]);
    samples.push(sample("jpeg-zero-width", jpeg_zero, Corrupt));

    let mut gif_bomb = good_gif.clone();
    gif_bomb[6..10].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    samples.push(sample("gif-screen-65535x65535", gif_bomb, TooManyPixels));

    let mut webp_bomb = good_webp.clone();
    if &webp_bomb[12..16] == b"VP8L" {
        // VP8L: 14-bit width-1 and height-1 packed after the signature byte.
        let packed: u32 = 0x3FFF | (0x3FFF << 14);
        webp_bomb[21..25].copy_from_slice(&packed.to_le_bytes());
    } else {
        webp_bomb[26..30].copy_from_slice(&[0xFF, 0x3F, 0xFF, 0x3F]);
    }
    samples.push(sample("webp-forged-16384x16384", webp_bomb, TooManyPixels));

    samples
}
