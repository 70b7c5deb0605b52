//! Recognising an image format from its first bytes. The client's `Content-Type` and file name
//! are never trusted: only these magic numbers decide which decoder sees the bytes.

use crate::engine::spec::OutputFormat;

/// A format the engine can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Tiff,
    Jxl,
    Avif,
    /// Read only by builds with the `heic` feature; others refuse it as a format not read.
    Heic,
}

impl InputFormat {
    pub const ALL: [InputFormat; 8] = [
        InputFormat::Jpeg,
        InputFormat::Png,
        InputFormat::Gif,
        InputFormat::Webp,
        InputFormat::Tiff,
        InputFormat::Jxl,
        InputFormat::Avif,
        InputFormat::Heic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Tiff => "tiff",
            InputFormat::Jxl => "jxl",
            InputFormat::Heic => "heic",
            other => other.as_output().name(),
        }
    }

    /// The format named `name` (as [`InputFormat::name`] gives it).
    pub fn parse(name: &str) -> Option<InputFormat> {
        InputFormat::ALL.into_iter().find(|format| format.name() == name)
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            InputFormat::Tiff => "image/tiff",
            InputFormat::Jxl => "image/jxl",
            InputFormat::Heic => "image/heic",
            other => other.as_output().mime_type(),
        }
    }

    /// The output format that keeps the source format: itself where it is written; PNG for TIFF
    /// (lossless, like most TIFFs); WebP for JPEG XL, which few browsers show (lossy and with
    /// alpha, like JPEG XL's photos and graphics); JPEG for HEIC, a phone's photo.
    pub fn as_output(self) -> OutputFormat {
        match self {
            InputFormat::Jpeg | InputFormat::Heic => OutputFormat::Jpeg,
            InputFormat::Png | InputFormat::Tiff => OutputFormat::Png,
            InputFormat::Gif => OutputFormat::Gif,
            InputFormat::Webp | InputFormat::Jxl => OutputFormat::Webp,
            InputFormat::Avif => OutputFormat::Avif,
        }
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Supported(InputFormat),
    /// A format recognised and refused, by name (`svg`, `pdf`, `heic`, `bmp`).
    Refused(&'static str),
    Unknown,
}

pub fn sniff(bytes: &[u8]) -> Sniffed {
    use Sniffed::{Refused, Supported, Unknown};
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Supported(InputFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Supported(InputFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Supported(InputFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Supported(InputFormat::Webp);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        // The major brand, then the compatible brands after the minor version.
        let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let ftyp = &bytes[..size.clamp(12, bytes.len())];
        let compatible = ftyp.get(16..).unwrap_or_default().chunks_exact(4);
        let brands: Vec<&[u8]> = std::iter::once(&ftyp[8..12]).chain(compatible).collect();
        if brands.iter().any(|b| matches!(*b, b"avif" | b"avis")) {
            return Supported(InputFormat::Avif);
        }
        const HEIF: [&[u8]; 8] = [b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"];
        return match brands.iter().any(|b| HEIF.contains(b)) {
            true if cfg!(feature = "heic") => Supported(InputFormat::Heic),
            true => Refused("heic"),
            false => Unknown,
        };
    }
    // A bare JPEG XL codestream, or the ISOBMFF-style container's signature box.
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Supported(InputFormat::Jxl);
    }
    if bytes.starts_with(b"%PDF") {
        return Refused("pdf");
    }
    // Classic TIFF (42) and BigTIFF (43), either byte order.
    if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        return Supported(InputFormat::Tiff);
    }
    if bytes.starts_with(b"BM") && bytes.len() >= 26 {
        return Refused("bmp");
    }
    if looks_like_svg(bytes) {
        return Refused("svg");
    }
    Unknown
}

/// SVG: markup (text whose first non-blank character opens a tag) with an `<svg` element in its
/// first 4 KiB. Other markup (HTML, XML) is not an image format at all.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let markup = text.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b == b'<');
    let head = &text[..text.len().min(4096)];
    markup && head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Sniffed::Supported(InputFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Sniffed::Supported(InputFormat::Png));
        assert_eq!(sniff(b"GIF89a...."), Sniffed::Supported(InputFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Sniffed::Supported(InputFormat::Webp));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0"), Sniffed::Supported(InputFormat::Avif));
        // A HEIF file whose compatible brands name AVIF is one.
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0avifmiaf"), Sniffed::Supported(InputFormat::Avif));
        let heic =
            if cfg!(feature = "heic") { Sniffed::Supported(InputFormat::Heic) } else { Sniffed::Refused("heic") };
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0"), heic);
        assert_eq!(sniff(b"  \n<?xml version='1.0'?><svg/>"), Sniffed::Refused("svg"));
        assert_eq!(sniff(b"<!doctype html><html><body></body></html>"), Sniffed::Unknown);
        assert_eq!(sniff(b"%PDF-1.7"), Sniffed::Refused("pdf"));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Sniffed::Supported(InputFormat::Tiff));
        assert_eq!(sniff(&[0xFF, 0x0A, 0xFA, 0x1F]), Sniffed::Supported(InputFormat::Jxl));
        assert_eq!(sniff(b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "), Sniffed::Supported(InputFormat::Jxl));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Sniffed::Supported(InputFormat::Tiff));
        assert_eq!(sniff(b"II+\0\x08\0\0\0"), Sniffed::Supported(InputFormat::Tiff));
        for format in InputFormat::ALL {
            assert_eq!(InputFormat::parse(format.name()), Some(format));
        }
        assert_eq!(sniff(b""), Sniffed::Unknown);
        assert_eq!(sniff(b"hello world"), Sniffed::Unknown);
        assert_eq!(sniff(b"\xFF\xD8"), Sniffed::Unknown);
    }
}
