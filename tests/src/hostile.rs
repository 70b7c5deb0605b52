//! The hostile-input corpus: malformed, forged and unsupported files, generated so that the
//! repository holds no binary fixtures. Each sample says what a reader must answer.

use image::{DynamicImage, ImageFormat};

use crate::images::{encode, jpeg, pattern, png, progressive_jpeg};

/// What Pixelmill must answer for a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Not an image format at all (or empty).
    Unknown,
    /// A format recognised and refused (SVG, PDF, HEIC, AVIF, BMP).
    Refused,
    /// A supported format whose bytes are damaged.
    Corrupt,
    /// A header that declares more pixels than the limit.
    TooManyPixels,
    /// A small file whose structure declares unbounded decoding work (a JPEG of 5000 scans).
    TooMuchWork,
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

/// Position of the first marker segment (its 0xFF byte) whose marker `wanted` accepts.
fn jpeg_marker(jpeg: &[u8], wanted: impl Fn(u8) -> bool) -> usize {
    let mut pos = 2;
    loop {
        let marker = jpeg[pos + 1];
        if wanted(marker) {
            return pos;
        }
        pos += 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
    }
}

/// Position of the first SOFn marker's height field in a JPEG.
fn jpeg_sof_dimensions(jpeg: &[u8]) -> usize {
    jpeg_marker(jpeg, |m| matches!(m, 0xC0..=0xC3)) + 5
}

/// A PNG chunk with its length and CRC.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let crc = crc32fast::hash(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    chunk
}

/// A real decompression bomb: a 1-bit grey PNG of `side` x `side` whose rows are all zero,
/// about 1/1000 of its decoded size on disk.
fn png_zlib_bomb(side: u32) -> Vec<u8> {
    use std::io::Write;
    let row = vec![0u8; 1 + side.div_ceil(8) as usize]; // filter byte + packed bits
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..side {
        zlib.write_all(&row).expect("in memory");
    }
    let idat = zlib.finish().expect("in memory");
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, grey, deflate, adaptive, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &idat));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

/// The position of a PNG's first chunk of `kind` (its length field).
fn png_chunk_at(png: &[u8], kind: &[u8; 4]) -> usize {
    let mut pos = 8;
    loop {
        let len = u32::from_be_bytes([png[pos], png[pos + 1], png[pos + 2], png[pos + 3]]) as usize;
        if &png[pos + 4..pos + 8] == kind {
            return pos;
        }
        pos += 12 + len;
    }
}

/// The position of a GIF's first LZW minimum code size: past the header, the global colour
/// table, any extension blocks, the first image descriptor and its local colour table.
fn gif_lzw_code_size_at(gif: &[u8]) -> usize {
    let mut pos = 13;
    if gif[10] & 0x80 != 0 {
        pos += 3 << ((gif[10] & 0x07) + 1);
    }
    while gif[pos] == 0x21 {
        pos += 2; // introducer and label
        while gif[pos] != 0 {
            pos += 1 + usize::from(gif[pos]);
        }
        pos += 1;
    }
    assert_eq!(gif[pos], 0x2C, "an image descriptor");
    let packed = gif[pos + 9];
    pos += 10;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 0x07) + 1);
    }
    pos
}

fn flipped(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= mask;
    out
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
        // Refused where HEIC is not read; a file type box and nothing else where it is.
        sample(
            "heic",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(),
            if cfg!(feature = "heic") { Corrupt } else { Refused },
        ),
        // An AVIF file type box and nothing else: no item to show.
        sample("avif-file-type-only", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec(), Corrupt),
        // A TIFF header whose first directory has no entries: no size, no samples.
        sample("tiff-empty-directory", b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(), Corrupt),
        sample("bmp", [b"BM".as_slice(), &[0u8; 60]].concat(), Refused),
    ];

    // Truncations of every supported format at several offsets.
    let good_progressive = progressive_jpeg(&photo);
    for (format, good) in [
        ("jpeg", &good_jpeg),
        ("jpeg-progressive", &good_progressive),
        ("png", &good_png),
        ("gif", &good_gif),
        ("webp", &good_webp),
    ] {
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

    samples.extend(bombs(&good_jpeg, &good_png, &good_gif, &good_webp));
    samples.extend(tiffs(&photo));
    samples.extend(jxls(&good_png));
    samples.extend(avifs(&good_png));
    samples.push(sample("jpeg-5000-scans", with_scans(&good_jpeg, 5000), TooMuchWork));
    // Over the default frame cap, counted from the blocks: 1,001 one-pixel frames in 14 KB.
    samples.push(sample("gif-1001-frames", crate::animation::many_frames(64, 64, 1001), TooMuchWork));
    samples.extend(damaged(&good_jpeg, &good_png, &good_gif, &good_webp));
    samples.extend(damaged_tables(&good_jpeg, &good_progressive));
    samples.extend(disguised(&good_jpeg, &good_png));
    samples
}

/// `jpeg` with its last scan (header and entropy-coded data) repeated until it has `scans` of
/// them: a few kilobytes that would each cost a pass over the image.
pub fn with_scans(jpeg: &[u8], scans: usize) -> Vec<u8> {
    // In entropy-coded data 0xFF is always stuffed, so the last FF DA is the last scan header.
    let last = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]).expect("a JPEG has a scan");
    let existing = jpeg.windows(2).filter(|w| *w == [0xFF, 0xDA]).count();
    let end = jpeg.len() - 2;
    let mut out = jpeg[..end].to_vec();
    for _ in existing..scans {
        out.extend_from_slice(&jpeg[last..end]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Declared sizes from 1 to 10 gigapixels in every format, and one real zlib bomb.
fn bombs(good_jpeg: &[u8], good_png: &[u8], good_gif: &[u8], good_webp: &[u8]) -> Vec<Sample> {
    use Expect::TooManyPixels;
    let mut samples = vec![sample("png-zlib-bomb-1-gigapixel", png_zlib_bomb(31_623), TooManyPixels)];

    let mut png_1gp = good_png.to_vec();
    png_1gp[16..20].copy_from_slice(&31_623u32.to_be_bytes());
    png_1gp[20..24].copy_from_slice(&31_623u32.to_be_bytes());
    fix_png_crc(&mut png_1gp, 8, 13);
    samples.push(sample("png-forged-1-gigapixel", png_1gp, TooManyPixels));

    let sof = jpeg_sof_dimensions(good_jpeg);
    let mut jpeg_1gp = good_jpeg.to_vec();
    jpeg_1gp[sof..sof + 4].copy_from_slice(&[0x7D, 0x00, 0x7D, 0x00]); // 32000x32000
    samples.push(sample("jpeg-forged-1-gigapixel", jpeg_1gp, TooManyPixels));

    let mut gif_1gp = good_gif.to_vec();
    gif_1gp[6..10].copy_from_slice(&[0x00, 0x7D, 0x00, 0x7D]); // 32000x32000 screen
    samples.push(sample("gif-screen-1-gigapixel", gif_1gp, TooManyPixels));

    // A VP8X canvas of 2^24 x 2^24 (its fields are 24-bit, minus one) over a small frame: libwebp
    // refuses a canvas over 2^32 pixels while reading the header, as corrupt.
    if &good_webp[12..16] == b"VP8L" || &good_webp[12..16] == b"VP8 " {
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        vp8x.extend_from_slice(&10u32.to_le_bytes());
        vp8x.extend_from_slice(&[0, 0, 0, 0]);
        vp8x.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        vp8x.extend_from_slice(&good_webp[12..]);
        let riff = (vp8x.len() - 8) as u32;
        vp8x[4..8].copy_from_slice(&riff.to_le_bytes());
        samples.push(sample("webp-vp8x-canvas-2^48-pixels", vp8x, Expect::Corrupt));
    }
    samples
}

/// TIFFs that lie about their size or lose their strips.
fn tiffs(photo: &image::RgbImage) -> Vec<Sample> {
    use crate::tiff_files::{COMPRESSIONS, Extras, write};
    use tiff::encoder::colortype::RGB8;
    let good = write::<RGB8>(photo.width(), photo.height(), photo.as_raw(), COMPRESSIONS[1].0, Extras::default());
    // The ImageWidth and ImageLength entries (tags 256 and 257, type LONG) set to 40000: 1.6
    // gigapixels over the strips of a 320x200 image, refused from the directory (whose strips
    // do not add up to such an image) before any pixel buffer.
    let mut forged = good.clone();
    let directory = u32::from_le_bytes([good[4], good[5], good[6], good[7]]) as usize;
    let entries = usize::from(u16::from_le_bytes([good[directory], good[directory + 1]]));
    for entry in 0..entries {
        let at = directory + 2 + 12 * entry;
        let tag = u16::from_le_bytes([good[at], good[at + 1]]);
        if tag == 256 || tag == 257 {
            forged[at + 2..at + 4].copy_from_slice(&4u16.to_le_bytes());
            forged[at + 8..at + 12].copy_from_slice(&40_000u32.to_le_bytes());
        }
    }
    let truncated = good[..good.len() / 2].to_vec();
    vec![
        sample("tiff-forged-1.6-gigapixels", forged, Expect::Corrupt),
        sample("tiff-lzw-truncated", truncated, Expect::Corrupt),
    ]
}

/// A bare JPEG XL codestream whose size header declares `side` x `side` and whose image
/// metadata is all default, followed by zeros: the header alone must refuse it.
fn jxl_size_header(side: u32) -> Vec<u8> {
    // Fields are packed from the least significant bit: `small` 0, the height's U32 selector 3
    // (1 + 30 bits), height - 1, the aspect ratio 1 (1:1, so the width is the height), and the
    // metadata's `all_default` 1.
    let fields: [(u64, u32); 5] = [(0, 1), (3, 2), (u64::from(side - 1), 30), (1, 3), (1, 1)];
    let (mut bits, mut count) = (0u64, 0u32);
    for (value, width) in fields {
        bits |= value << count;
        count += width;
    }
    let mut out = vec![0xFF, 0x0A];
    out.extend_from_slice(&bits.to_le_bytes()[..count.div_ceil(8) as usize]);
    // Zeros where the first frame would start: a reader must not need them to see the size.
    out.resize(64, 0);
    out
}

/// AVIF files that lie about their size, point past their end or stop short.
fn avifs(good_png: &[u8]) -> Vec<Sample> {
    let good = crate::encoders::avif(good_png, "png", None, &[]);
    let ispe = good.windows(4).position(|w| w == b"ispe").expect("an AVIF has an ispe property");
    // The ispe property's width and height (after its version and flags) set to 2^20 each.
    let mut forged = good.clone();
    forged[ispe + 8..ispe + 16].copy_from_slice(&[0, 0x10, 0, 0, 0, 0x10, 0, 0]);
    // The item location's extent moved past the end of the file: its offset field is the
    // 4-byte value that equals the mdat payload's offset.
    let mdat = good.windows(4).position(|w| w == b"mdat").expect("an AVIF has an mdat box") + 4;
    let offset = (mdat as u32).to_be_bytes();
    let mut dangling = good.clone();
    if let Some(at) = good.windows(4).position(|w| w == offset) {
        dangling[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    }
    vec![
        sample("avif-ispe-1-terapixel", forged, Expect::TooManyPixels),
        sample("avif-extent-past-the-end", dangling, Expect::Corrupt),
        sample("avif-truncated", good[..good.len() / 2].to_vec(), Expect::Corrupt),
    ]
}

/// JPEG XL files that lie about their size or stop short.
fn jxls(good_png: &[u8]) -> Vec<Sample> {
    let good = crate::encoders::jxl(good_png, "png", &["-d", "1"]);
    vec![
        sample("jxl-signature-only", vec![0xFF, 0x0A], Expect::Corrupt),
        sample("jxl-header-1-terapixel", jxl_size_header(1 << 20), Expect::TooManyPixels),
        sample("jxl-header-only", good[..good.len().min(24)].to_vec(), Expect::Corrupt),
        sample("jxl-truncated", good[..good.len() / 2].to_vec(), Expect::Corrupt),
    ]
}

/// Damage every reader must notice: bad markers, tables, checksums, code sizes and lengths.
fn damaged(good_jpeg: &[u8], good_png: &[u8], good_gif: &[u8], good_webp: &[u8]) -> Vec<Sample> {
    use Expect::Corrupt;
    let sof = jpeg_sof_dimensions(good_jpeg) - 5;
    let dqt = jpeg_marker(good_jpeg, |m| m == 0xDB);
    let sos = jpeg_marker(good_jpeg, |m| m == 0xDA);
    let idat = png_chunk_at(good_png, b"IDAT");

    let mut without_scan = good_jpeg[..sos].to_vec();
    without_scan.extend_from_slice(&[0xFF, 0xD9]);
    let mut app1_past_end = good_jpeg[..2].to_vec();
    app1_past_end.extend_from_slice(&[0xFF, 0xE1, 0xFF, 0xFF]);
    app1_past_end.extend_from_slice(b"Exif\0\0");
    app1_past_end.extend_from_slice(&good_jpeg[2..64]);
    let mut png_text_2gb = good_png[..idat].to_vec();
    png_text_2gb.extend_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
    png_text_2gb.extend_from_slice(b"tEXtComment\0");
    png_text_2gb.extend_from_slice(&good_png[idat..]);
    let mut png_bad_depth = good_png.to_vec();
    png_bad_depth[24] = 3;
    fix_png_crc(&mut png_bad_depth, 8, 13);
    let mut png_bad_colour = good_png.to_vec();
    png_bad_colour[25] = 5;
    fix_png_crc(&mut png_bad_colour, 8, 13);
    let mut gif_code_size = good_gif.to_vec();
    gif_code_size[gif_lzw_code_size_at(good_gif)] = 15;
    let mut webp_riff_size = good_webp.to_vec();
    webp_riff_size[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let mut webp_chunk_size = good_webp.to_vec();
    webp_chunk_size[16..20].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());

    vec![
        sample("jpeg-sof-marker-flipped", flipped(good_jpeg, sof + 1, 0x08), Corrupt),
        sample("jpeg-dqt-table-id-15", flipped(good_jpeg, dqt + 4, 0x0F), Corrupt),
        sample("jpeg-sof-components-0", flipped(good_jpeg, sof + 9, good_jpeg[sof + 9]), Corrupt),
        sample("jpeg-without-scan", without_scan, Corrupt),
        sample("jpeg-app1-length-past-end", app1_past_end, Corrupt),
        sample("png-idat-bit-flipped", flipped(good_png, idat + 8 + 20, 0x10), Corrupt),
        sample("png-ihdr-bit-depth-3", png_bad_depth, Corrupt),
        sample("png-ihdr-colour-type-5", png_bad_colour, Corrupt),
        sample("png-text-chunk-2-gib", png_text_2gb, Corrupt),
        sample("gif-lzw-code-size-15", gif_code_size, Corrupt),
        sample("webp-riff-size-4-gib", webp_riff_size, Corrupt),
        sample("webp-chunk-size-4-gib", webp_chunk_size, Corrupt),
    ]
}

/// `jpeg` with a marker segment inserted before its first scan.
fn with_segment_before_scan(jpeg: &[u8], segment: &[u8]) -> Vec<u8> {
    let sos = jpeg_marker(jpeg, |m| m == 0xDA);
    [&jpeg[..sos], segment, &jpeg[sos..]].concat()
}

/// Tables and scan headers that lie, in baseline and progressive files: what the decoders read
/// before any pixel, each refused.
fn damaged_tables(good_jpeg: &[u8], good_progressive: &[u8]) -> Vec<Sample> {
    use Expect::Corrupt;
    // A DC table of three codes of one bit: more codes than one bit can tell apart.
    let overfull_huffman = [0xFF, 0xC4, 0x00, 0x16, 0x00, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2];
    // A restart every MCU, in a file that has no restart markers.
    let restart_every_mcu = [0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01];
    let mut samples = Vec::new();
    for (kind, good) in [("baseline", good_jpeg), ("progressive", good_progressive)] {
        let sos = jpeg_marker(good, |m| m == 0xDA);
        samples.push(sample(
            format!("jpeg-{kind}-huffman-table-overfull"),
            with_segment_before_scan(good, &overfull_huffman),
            Corrupt,
        ));
        samples.push(sample(
            format!("jpeg-{kind}-restarts-without-markers"),
            with_segment_before_scan(good, &restart_every_mcu),
            Corrupt,
        ));
        // The first scan's first component id (after FF DA, length and count) names no component.
        samples.push(sample(
            format!("jpeg-{kind}-scan-names-unknown-component"),
            flipped(good, sos + 5, 0x80),
            Corrupt,
        ));
    }
    samples
}

/// Polyglots and look-alikes: a format's magic in front of something else.
fn disguised(good_jpeg: &[u8], good_png: &[u8]) -> Vec<Sample> {
    use Expect::{Corrupt, Refused, TooManyPixels, Unknown};
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0payload.php<?php system($_GET['c']); ?>".to_vec();
    vec![
        // "<h" and "tm" read as the screen size: 26684x28020.
        sample("gif-header-then-html", b"GIF89a<html><script>alert(document.cookie)</script></html>".to_vec(), TooManyPixels),
        sample("png-signature-then-zip", [&good_png[..8], zip.as_slice()].concat(), Corrupt),
        sample("jpeg-soi-then-pdf", [&good_jpeg[..3], b"\xE0%PDF-1.7 1 0 obj<<>>endobj".as_slice()].concat(), Corrupt),
        sample("riff-wave-not-webp", b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0".to_vec(), Unknown),
        sample("html-page", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>".to_vec(), Unknown),
        sample(
            "svg-billion-laughs",
            br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><svg xmlns="http://www.w3.org/2000/svg">&lol3;</svg>"#.to_vec(),
            Refused,
        ),
        sample(
            "svg-external-image",
            br#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://169.254.169.254/latest/meta-data/"/></svg>"#.to_vec(),
            Refused,
        ),
        sample("zip-archive", zip, Unknown),
    ]
}
