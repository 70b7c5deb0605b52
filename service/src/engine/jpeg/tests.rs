//! The decoder against libjpeg-turbo: at 1/8 the planes (and, without subsampling, the pixels)
//! are equal; at every scale the pixels are within a PSNR threshold of libjpeg-turbo's scaled
//! decode. Files are made by libjpeg-turbo in each layout the decoder handles, and the photo
//! corpus is read when `PIXELMILL_CORPUS` names it.

use std::ffi::c_int;

use image::DynamicImage;
use turbojpeg::raw;

use super::*;

/// Worst PSNR (dB) allowed against libjpeg-turbo's scaled decode. Both approximate the cell
/// means of the full-size image; ours reads only the frequencies below the output's block size
/// (`idct.rs`), libjpeg-turbo all of them. Measured (2026-12-05): at least 36.0 dB on the
/// generated files, 37.1 dB on the photo corpus.
const MIN_PSNR: f64 = 35.0;

/// The same for the one case where the inputs differ: a progressive file with chroma subsampled
/// on both axes, at 1/8. Its AC scans are not read, so chroma comes from DC values upsampled,
/// where libjpeg-turbo transforms chroma's AC coefficients to full resolution. The chroma is
/// then at 1/16 of the source's side: for a 400 px render of a 5120 px photo that is 320 px,
/// more than the 200 px a 4:2:0 output keeps. Measured: 22.8 dB on the generated files, whose
/// chroma has hard edges by design; 30.2 dB worst on the photo corpus.
const MIN_PSNR_DC_CHROMA: f64 = 22.0;
const MIN_PSNR_DC_CHROMA_PHOTOS: f64 = 29.0;

/// Worst PSNR (dB) of half chroma against full in what a 4:2:0 output keeps (Y, and Cb and Cr
/// averaged 2x2), on the generated files (chroma with hard edges by design) and on photos.
/// Measured (2026-12-06): on the generated files 33.5 dB at 1/4 and 35.5 at 1/2 for 4:4:4,
/// 33.0 and 34.8 for 4:2:0; on the photos of the corpus at 1/4, 41.8 dB worst (OneStandsOut.jpg,
/// 4:4:4), 42.5 on the worst 4:2:0 one (BytheWater.jpg), 47.6 to 59.4 on the others. A
/// quality-80 JPEG's own error is of the order of the first. A baseline 4:2:0 file at 1/8 gets
/// its chroma from the DC values, as a progressive one does with full chroma: checked against
/// [`MIN_PSNR_DC_CHROMA`] (28.8 dB on the generated files).
const MIN_PSNR_HALF_CHROMA: f64 = 32.0;
const MIN_PSNR_HALF_CHROMA_PHOTOS: f64 = 40.0;

#[derive(Debug, Clone, Copy)]
struct Layout {
    quality: c_int,
    subsampling: c_int,
    progressive: bool,
    restart_blocks: c_int,
}

const SUBSAMPLINGS: [(c_int, &str); 5] = [
    (raw::TJSAMP_TJSAMP_444 as c_int, "4:4:4"),
    (raw::TJSAMP_TJSAMP_422 as c_int, "4:2:2"),
    (raw::TJSAMP_TJSAMP_420 as c_int, "4:2:0"),
    (raw::TJSAMP_TJSAMP_440 as c_int, "4:4:0"),
    (raw::TJSAMP_TJSAMP_GRAY as c_int, "gray"),
];

/// Every layout: each subsampling, baseline and progressive, with and without restart markers.
fn layouts() -> Vec<(Layout, String)> {
    let mut all = Vec::new();
    for (subsampling, name) in SUBSAMPLINGS {
        for progressive in [false, true] {
            for restart_blocks in [0, 7] {
                let label = format!(
                    "{name} {}{}",
                    if progressive { "progressive" } else { "baseline" },
                    if restart_blocks > 0 { " restart 7" } else { "" }
                );
                all.push((Layout { quality: 85, subsampling, progressive, restart_blocks }, label));
            }
        }
    }
    all
}

/// A generated file: its layout, its size, its bytes and a label.
type Generated = (Layout, (u32, u32), Vec<u8>, String);

/// The picture of each size encoded in every layout.
fn generated(sizes: &[(u32, u32)]) -> Vec<Generated> {
    let mut files = Vec::new();
    for &(width, height) in sizes {
        let (w, h) = (width as usize, height as usize);
        let pixels = picture(w, h);
        for (layout, label) in layouts() {
            let bytes = encode(&pixels, w, h, layout);
            files.push((layout, (width, height), bytes, format!("{label} {width}x{height}")));
        }
    }
    files
}

/// A picture with smooth areas, edges and texture, of any size, deterministic.
fn picture(width: usize, height: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(width * height * 3);
    let mut noise = 0x2545_F491u32;
    for y in 0..height {
        for x in 0..width {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            // Grain in luma only: a photo's chroma is smooth, and JPEG's subsampling counts on it.
            let grain = (noise % 24) as i32 - 12;
            let ring =
                (((x as f64 - width as f64 / 3.0).hypot(y as f64 - height as f64 / 2.0) / 9.0).sin() * 60.0) as i32;
            let r = (x * 255 / width.max(1)) as i32 + grain;
            let g = if (x / 37 + y / 23) % 2 == 0 { 200 } else { 60 } + ring / 2 + grain;
            let b = (y * 255 / height.max(1)) as i32 + ring + grain;
            pixels.extend([r, g, b].map(|v| v.clamp(0, 255) as u8));
        }
    }
    pixels
}

/// libjpeg-turbo's encoding of `pixels` (RGB) in `layout`.
fn encode(pixels: &[u8], width: usize, height: usize, layout: Layout) -> Vec<u8> {
    // SAFETY: the TurboJPEG API used as documented: one handle, parameters set, one compression
    // of a buffer of `width * height * 3` bytes, the output copied and freed by tj3Free.
    unsafe {
        let handle = raw::tj3Init(raw::TJINIT_TJINIT_COMPRESS as c_int);
        assert!(!handle.is_null());
        for (param, value) in [
            (raw::TJPARAM_TJPARAM_QUALITY, layout.quality),
            (raw::TJPARAM_TJPARAM_SUBSAMP, layout.subsampling),
            (raw::TJPARAM_TJPARAM_PROGRESSIVE, c_int::from(layout.progressive)),
            (raw::TJPARAM_TJPARAM_RESTARTBLOCKS, layout.restart_blocks),
        ] {
            assert_eq!(raw::tj3Set(handle, param as c_int, value), 0);
        }
        let mut buffer: *mut u8 = std::ptr::null_mut();
        let mut size = 0;
        let status = raw::tj3Compress8(
            handle,
            pixels.as_ptr(),
            width as c_int,
            (width * 3) as c_int,
            height as c_int,
            raw::TJPF_TJPF_RGB as c_int,
            &mut buffer,
            &mut size,
        );
        assert_eq!(status, 0, "tj3Compress8 failed");
        let bytes = std::slice::from_raw_parts(buffer, size as usize).to_vec();
        raw::tj3Free(buffer.cast());
        raw::tj3Destroy(handle);
        bytes
    }
}

/// libjpeg-turbo's planes at 1/`shrink` (its raw YUV output: no upsampling, no colour).
fn reference_planes(bytes: &[u8], shrink: usize) -> Vec<(usize, usize, Vec<u8>)> {
    let header = turbojpeg::read_header(bytes).unwrap();
    let mut decompressor = turbojpeg::Decompressor::new().unwrap();
    let factor = turbojpeg::ScalingFactor::new(1, shrink);
    decompressor.set_scaling_factor(factor).unwrap();
    let (width, height) = (factor.scale(header.width), factor.scale(header.height));
    let len = turbojpeg::yuv_pixels_len(width, 1, height, header.subsamp).unwrap();
    let mut pixels = vec![0u8; len];
    decompressor
        .decompress_to_yuv(
            bytes,
            turbojpeg::YuvImage { pixels: &mut pixels[..], width, align: 1, height, subsamp: header.subsamp },
        )
        .unwrap();
    let components = if header.subsamp == turbojpeg::Subsamp::Gray { 1 } else { 3 };
    let mut planes = Vec::new();
    let mut offset = 0;
    for c in 0..components {
        // SAFETY: pure functions of their integer arguments.
        let (w, h) = unsafe {
            (
                raw::tj3YUVPlaneWidth(c, width as c_int, header.subsamp as c_int) as usize,
                raw::tj3YUVPlaneHeight(c, height as c_int, header.subsamp as c_int) as usize,
            )
        };
        planes.push((w, h, pixels[offset..offset + w * h].to_vec()));
        offset += w * h;
    }
    planes
}

fn reference_pixels(bytes: &[u8], shrink: usize) -> DynamicImage {
    let mut decompressor = turbojpeg::Decompressor::new().unwrap();
    let factor = turbojpeg::ScalingFactor::new(1, shrink);
    decompressor.set_scaling_factor(factor).unwrap();
    let header = decompressor.read_header(bytes).unwrap();
    let (width, height) = (factor.scale(header.width), factor.scale(header.height));
    let mut pixels = vec![0u8; width * height * 3];
    let output = turbojpeg::Image {
        pixels: &mut pixels[..],
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor.decompress(bytes, output).unwrap();
    DynamicImage::ImageRgb8(image::RgbImage::from_raw(width as u32, height as u32, pixels).unwrap())
}

/// Our planes at 1/`shrink`.
fn our_planes(bytes: &[u8], shrink: u32) -> (Frame, Vec<Plane>) {
    Decoder::new(bytes, shrink, Chroma::Full).planes(1000).unwrap()
}

fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let squared: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum();
    let mse = squared / a.as_raw().len() as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }
}

fn assert_planes_equal(bytes: &[u8], label: &str) {
    let (frame, ours) = our_planes(bytes, 8);
    let reference = reference_planes(bytes, 8);
    assert_eq!(ours.len(), reference.len(), "{label}: components");
    for (c, ((width, height, expected), plane)) in reference.iter().zip(&ours).enumerate() {
        // Chroma scaled up by a larger transform (4:2:0 baseline) is not a plane of DC values.
        let component = &frame.components[c];
        if component.size != 1 {
            continue;
        }
        // libjpeg-turbo pads its planes to whole chroma samples; compare the samples we have.
        assert!(component.width <= *width && component.height <= *height, "{label}: plane {c} size");
        assert!(component.width + 1 >= *width && component.height + 1 >= *height, "{label}: plane {c} size");
        for y in 0..component.height {
            let row = &plane.data[y * plane.stride..y * plane.stride + component.width];
            assert_eq!(row, &expected[y * width..y * width + component.width], "{label}: plane {c} row {y}");
        }
    }
}

#[test]
fn at_one_eighth_the_planes_equal_libjpeg_turbos_in_every_layout() {
    // Sizes that are not whole MCUs, so edge blocks and partial MCUs are exercised.
    for (_, _, bytes, label) in generated(&[(203, 117), (64, 64), (9, 300)]) {
        assert_planes_equal(&bytes, &label);
    }
}

#[test]
fn tiny_images_decode_at_every_scale_and_chroma_in_every_layout() {
    // Planes of one sample, and rows shorter than the upsampling's neighbours.
    for (_, (width, height), bytes, label) in generated(&[(1, 1), (2, 2), (3, 1), (1, 3), (4, 2), (17, 2)]) {
        for shrink in [2, 4, 8] {
            for chroma in [Chroma::Full, Chroma::Half] {
                let image =
                    decode_with(&bytes, shrink, chroma, 1000).unwrap_or_else(|e| panic!("{label} at 1/{shrink}: {e}"));
                let expected = (width.div_ceil(shrink), height.div_ceil(shrink));
                assert_eq!((image.width(), image.height()), expected, "{label} at 1/{shrink}");
            }
        }
    }
}

#[test]
fn at_one_eighth_hard_files_equal_libjpeg_turbos() {
    // Noise at quality 100 makes blocks that end at their last coefficient without an end of
    // block, AC codes longer than a lookup and DC differences of many bits; quality 5 makes
    // blocks of a DC alone and runs of sixteen zeros.
    let (width, height) = (203, 117);
    for pixels in [noise(width, height), picture(width, height)] {
        for quality in [100, 5] {
            for (layout, label) in layouts() {
                let bytes = encode(&pixels, width, height, Layout { quality, ..layout });
                assert_planes_equal(&bytes, &format!("{label} quality {quality}"));
            }
        }
    }
}

/// The same noise the hard files are made of: `width * height` RGB pixels.
fn noise(width: usize, height: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9u32;
    (0..width * height * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[test]
fn baseline_and_progressive_files_of_one_picture_decode_to_the_same_planes_at_every_scale() {
    // libjpeg-turbo codes the same coefficients in both; only the entropy coding differs. The
    // progressive scans are read one coefficient at a time, the baseline blocks by the lookups
    // that take two coefficients or walk several codes at once, so this checks the baseline
    // walk exactly, coefficient for coefficient, at the scales it keeps coefficients (1/4,
    // 1/2). Noise at quality 100 makes blocks that run to their last coefficient and codes too
    // long for a lookup; quality 5 blocks of a DC alone; 50 the photo-like middle.
    let (width, height) = (203, 117);
    let mut compared = 0;
    for (pixels, kind) in [(noise(width, height), "noise"), (picture(width, height), "picture")] {
        for quality in [100, 50, 5] {
            for (layout, label) in layouts().into_iter().filter(|(layout, _)| !layout.progressive) {
                let baseline = encode(&pixels, width, height, Layout { quality, ..layout });
                let progressive = encode(&pixels, width, height, Layout { quality, progressive: true, ..layout });
                for shrink in [2, 4, 8] {
                    let label = format!("{kind} {label} quality {quality} at 1/{shrink}");
                    let (frame, ours) = our_planes(&baseline, shrink);
                    let (progressive_frame, theirs) = our_planes(&progressive, shrink);
                    assert_eq!(ours.len(), theirs.len(), "{label}");
                    for (c, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                        // 4:2:0 baseline chroma at 1/8 is scaled up by a larger transform.
                        if frame.components[c].size != progressive_frame.components[c].size {
                            continue;
                        }
                        compared += 1;
                        assert!(a.data == b.data, "{label}: plane {c} differs");
                    }
                }
            }
        }
    }
    // The 26 planes of the ten baseline layouts at three scales, less 4:2:0's chroma at 1/8 (with
    // and without restarts), for two pictures at three qualities.
    assert_eq!(compared, 2 * 3 * (26 * 3 - 4), "planes compared");
}

#[test]
fn at_one_eighth_without_subsampling_the_pixels_equal_libjpeg_turbos() {
    let (width, height) = (203, 117);
    let pixels = picture(width, height);
    for (layout, label) in layouts().into_iter().filter(|(l, _)| {
        l.subsampling == raw::TJSAMP_TJSAMP_444 as c_int || l.subsampling == raw::TJSAMP_TJSAMP_GRAY as c_int
    }) {
        let bytes = encode(&pixels, width, height, layout);
        let ours = decode(&bytes, 8, 1000).unwrap();
        let reference = reference_pixels(&bytes, 8);
        assert_eq!(ours.to_rgb8(), reference.to_rgb8(), "{label}");
    }
}

#[test]
fn at_every_scale_the_pixels_are_close_to_libjpeg_turbos() {
    let (width, height) = (203, 117);
    let pixels = picture(width, height);
    for (layout, label) in layouts() {
        let bytes = encode(&pixels, width, height, layout);
        for shrink in [2u32, 4, 8] {
            let ours = decode(&bytes, shrink, 1000).unwrap();
            let reference = reference_pixels(&bytes, shrink as usize);
            assert_eq!(ours.width(), reference.width(), "{label} 1/{shrink}");
            let db = psnr(&ours, &reference);
            let dc_chroma = layout.progressive && layout.subsampling == raw::TJSAMP_TJSAMP_420 as c_int && shrink == 8;
            let min = if dc_chroma { MIN_PSNR_DC_CHROMA } else { MIN_PSNR };
            assert!(db >= min, "{label} at 1/{shrink}: {db:.1} dB");
        }
    }
}

/// The files of one set of the photo corpus, in name order.
fn corpus_files(corpus: &str, set: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(format!("{corpus}/{set}")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn the_photo_corpus_decodes_like_libjpeg_turbo() {
    // Set by `cargo xtask ci`; a plain `cargo test` without the corpus skips this. Every file at
    // 1/8 (the scale of upload validation); 1/4 and 1/2, which take seconds a file in the
    // unoptimised test build, on the first two files of each set.
    let Ok(corpus) = std::env::var("PIXELMILL_CORPUS") else { return };
    let mut worst = f64::INFINITY;
    for set in ["jpeg-2560", "jpeg-2560-progressive", "jpeg-5120", "jpeg-5120-progressive", "jpeg-2560-original"] {
        let files = corpus_files(&corpus, set);
        for (index, path) in files.iter().enumerate() {
            let bytes = std::fs::read(path).unwrap();
            let label = path.display().to_string();
            assert_planes_equal(&bytes, &label);
            let layout = crate::engine::decode::jpeg_layout(&bytes);
            let scales: &[u32] = if index < 2 { &[2, 4, 8] } else { &[8] };
            for &shrink in scales {
                let ours = decode(&bytes, shrink, 1000).unwrap();
                let db = psnr(&ours, &reference_pixels(&bytes, shrink as usize));
                let both_axes = |&(h, v): &(u8, u8)| {
                    let (h_max, v_max) =
                        (layout.sampling.iter().map(|s| s.0).max(), layout.sampling.iter().map(|s| s.1).max());
                    Some(h * 2) == h_max && Some(v * 2) == v_max
                };
                let dc_chroma = layout.progressive && shrink == 8 && layout.sampling.iter().any(both_axes);
                let min = if dc_chroma { MIN_PSNR_DC_CHROMA_PHOTOS } else { MIN_PSNR };
                assert!(db >= min, "{label} at 1/{shrink}: {db:.1} dB");
                worst = worst.min(db);
            }
        }
    }
    eprintln!("worst PSNR over the corpus: {worst:.1} dB");
}

#[test]
fn half_chroma_is_the_next_scales_chroma_beside_the_same_luma() {
    // Where `halves_chroma` says so (4:4:4 at 1/2 and 1/4, 4:2:0 at 1/2, 1/4 and baseline 1/8):
    // the luma plane as with full chroma, the chroma planes those of the next scale down,
    // exactly; at 1/8 (no next scale) a 4:2:0 file's DC values, which the progressive file of
    // the same picture and quality holds too and decodes alone at 1/8. Every other layout and
    // scale is decoded as with full chroma.
    let files = generated(&[(203, 117), (64, 64), (9, 300)]);
    let mut halved = 0;
    for (layout, (width, height), bytes, label) in &files {
        for shrink in [2u32, 4, 8] {
            let label = format!("{label} at 1/{shrink}");
            let (_, full) = Decoder::new(bytes, shrink, Chroma::Full).planes(1000).unwrap();
            let (frame, half) = Decoder::new(bytes, shrink, Chroma::Half).planes(1000).unwrap();
            assert_eq!(half[0].data, full[0].data, "{label}: luma");
            if !halves_chroma(&crate::engine::decode::jpeg_layout(bytes), shrink) {
                for (c, (half, full)) in half.iter().zip(&full).enumerate() {
                    assert_eq!(half.data, full.data, "{label}: plane {c} of a layout half chroma leaves alone");
                }
                continue;
            }
            halved += 1;
            // The same picture and quality in the same subsampling, baseline to 1/(2 shrink),
            // progressive at 1/8: the same coefficients.
            let sibling = |progressive: bool| {
                let found = files.iter().find(|(l, size, ..)| {
                    l.progressive == progressive
                        && l.restart_blocks == 0
                        && l.subsampling == layout.subsampling
                        && *size == (*width, *height)
                });
                &found.unwrap().2
            };
            let (_, smaller) = if shrink < 8 {
                Decoder::new(sibling(false), shrink * 2, Chroma::Full).planes(1000).unwrap()
            } else {
                Decoder::new(sibling(true), 8, Chroma::Full).planes(1000).unwrap()
            };
            for c in 1..3 {
                let component = &frame.components[c];
                assert_eq!((component.rx, component.ry), (2, 2), "{label}");
                assert_eq!(component.size, frame.components[0].size * frame.components[0].h / 2, "{label}");
                assert_eq!(half[c].stride, smaller[c].stride, "{label}: plane {c}");
                assert_eq!(half[c].data, smaller[c].data, "{label}: plane {c}");
            }
            let image = decode_with(bytes, shrink, Chroma::Half, 1000).unwrap();
            assert_eq!((image.width(), image.height()), (width.div_ceil(shrink), height.div_ceil(shrink)));
        }
    }
    // Three sizes, with and without restarts: 4:4:4 at two scales (baseline and progressive),
    // 4:2:0 at three (baseline) and two (progressive).
    assert_eq!(halved, 3 * 2 * (2 * 2 + 3 + 2), "{halved}");
}

/// The entropy-coded bytes of each scan: (components, spectral start, data start, data end).
fn scans(bytes: &[u8]) -> Vec<(Vec<u8>, u8, usize, usize)> {
    let mut found = Vec::new();
    let mut pos = 2;
    while pos + 4 <= bytes.len() {
        let marker = bytes[pos + 1];
        if marker == 0xD9 {
            break;
        }
        let length = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        let body = &bytes[pos + 4..pos + 2 + length];
        pos += 2 + length;
        if marker == 0xDA {
            let count = usize::from(body[0]);
            let ids = (0..count).map(|i| body[1 + 2 * i]).collect();
            let mut end = pos;
            while !(bytes[end] == 0xFF && bytes[end + 1] != 0 && !(0xD0..=0xD7).contains(&bytes[end + 1])) {
                end += 1;
            }
            found.push((ids, body[1 + 2 * count], pos, end));
            pos = end;
        }
    }
    found
}

#[test]
fn half_chroma_at_one_quarter_skips_a_progressive_files_chroma_ac_scans_unread() {
    let (width, height) = (203, 117);
    let layout =
        Layout { quality: 85, subsampling: raw::TJSAMP_TJSAMP_444 as c_int, progressive: true, restart_blocks: 0 };
    let bytes = encode(&picture(width, height), width, height, layout);
    let mut damaged = bytes.clone();
    let mut chroma_ac = 0;
    for (ids, start, from, to) in scans(&bytes) {
        if start > 0 && !ids.contains(&bytes_id_of_luma(&bytes)) {
            // Bytes that are no valid Huffman data (and no 0xFF, so no marker either).
            damaged[from..to].fill(0xFE);
            chroma_ac += 1;
        }
    }
    assert!(chroma_ac >= 2, "the file has chroma AC scans");
    assert!(decode(&damaged, 4, 1000).is_err(), "full chroma reads them");
    let expected = decode_with(&bytes, 4, Chroma::Half, 1000).unwrap();
    assert_eq!(decode_with(&damaged, 4, Chroma::Half, 1000).unwrap(), expected);
}

/// The component id of the first component in the frame header (luma).
fn bytes_id_of_luma(bytes: &[u8]) -> u8 {
    let at = bytes.windows(2).position(|w| w[0] == 0xFF && matches!(w[1], 0xC0 | 0xC2)).unwrap();
    bytes[at + 10]
}

/// Y, and Cb and Cr averaged over 2x2 pixels: what a 4:2:0 output of the image keeps.
fn output_planes(image: &DynamicImage) -> [Vec<f64>; 3] {
    let rgb = image.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (cw, ch) = (w / 2, h / 2);
    let mut planes = [vec![0.0; w * h], vec![0.0; cw * ch], vec![0.0; cw * ch]];
    for (x, y, p) in rgb.enumerate_pixels() {
        let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
        let (x, y) = (x as usize, y as usize);
        planes[0][y * w + x] = 0.299 * r + 0.587 * g + 0.114 * b;
        if x / 2 < cw && y / 2 < ch {
            planes[1][(y / 2) * cw + x / 2] += (-0.168_736 * r - 0.331_264 * g + 0.5 * b) / 4.0;
            planes[2][(y / 2) * cw + x / 2] += (0.5 * r - 0.418_688 * g - 0.081_312 * b) / 4.0;
        }
    }
    planes
}

fn plane_psnr(a: &[f64], b: &[f64]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len().max(1) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }
}

/// The worst PSNR (dB) over Y, Cb and Cr of what a 4:2:0 output keeps, half chroma against full.
fn half_chroma_psnr(bytes: &[u8], shrink: u32) -> f64 {
    let full = output_planes(&decode(bytes, shrink, 1000).unwrap());
    let half = output_planes(&decode_with(bytes, shrink, Chroma::Half, 1000).unwrap());
    full.iter().zip(&half).map(|(f, h)| plane_psnr(f, h)).fold(f64::INFINITY, f64::min)
}

#[test]
fn half_chroma_is_close_to_full_in_what_a_420_output_keeps() {
    let (width, height) = (203, 117);
    let pixels = picture(width, height);
    let mut worst = f64::INFINITY;
    for (layout, label) in layouts() {
        let bytes = encode(&pixels, width, height, layout);
        for shrink in [2, 4, 8] {
            if !halves_chroma(&crate::engine::decode::jpeg_layout(&bytes), shrink) {
                continue;
            }
            let db = half_chroma_psnr(&bytes, shrink);
            eprintln!("{label} at 1/{shrink}: {db:.1} dB");
            if shrink == 8 {
                // Chroma from the DC values, as a progressive file's at 1/8 with full chroma.
                assert!(db >= MIN_PSNR_DC_CHROMA, "{label} at 1/8: {db:.1} dB");
            } else {
                worst = worst.min(db);
            }
        }
    }
    eprintln!("worst at 1/2 and 1/4: {worst:.1} dB");
    assert!(worst >= MIN_PSNR_HALF_CHROMA, "{worst:.1} dB");
    let Ok(corpus) = std::env::var("PIXELMILL_CORPUS") else { return };
    let mut worst = f64::INFINITY;
    for set in ["jpeg-2560", "jpeg-2560-progressive"] {
        let files = corpus_files(&corpus, set);
        // The first four 4:4:4 files of each set: seconds a file in the unoptimised test build.
        let limit = std::env::var("PIXELMILL_HALF_CHROMA_FILES").map_or(4, |n| n.parse().unwrap());
        let halved = files.iter().filter(|path| {
            let bytes = std::fs::read(path).unwrap();
            halves_chroma(&crate::engine::decode::jpeg_layout(&bytes), 4)
        });
        for path in halved.take(limit) {
            let bytes = std::fs::read(path).unwrap();
            let db = half_chroma_psnr(&bytes, 4);
            eprintln!("{} at 1/4: {db:.1} dB", path.display());
            worst = worst.min(db);
        }
    }
    assert!(worst >= MIN_PSNR_HALF_CHROMA_PHOTOS, "{worst:.1} dB");
}
