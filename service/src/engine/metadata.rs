//! The metadata the engine honours: EXIF orientation and the ICC colour profile. Everything else
//! (EXIF beyond orientation, XMP, comments) is dropped from the output.
//!
//! JPEG and WebP metadata are read here by walking the container (JPEG markers up to the first
//! scan, RIFF chunks) without decoding pixels; PNG metadata comes from its decoder.

use image::metadata::Orientation;

#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub orientation: Option<Orientation>,
    pub icc_profile: Option<Vec<u8>>,
    /// JPEG only: an Adobe APP14 marker, which means CMYK samples are stored inverted.
    pub adobe: bool,
}

impl Metadata {
    pub fn orientation(&self) -> Orientation {
        self.orientation.unwrap_or(Orientation::NoTransforms)
    }
}

const ICC_MARKER: &[u8] = b"ICC_PROFILE\0";

/// One marker segment of a JPEG: its marker and its body (what follows the length field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub marker: u8,
    pub body: &'a [u8],
}

/// The marker segments of a JPEG, in order, without decoding anything: after a scan header
/// (SOS) the entropy-coded data is skipped to the next marker that is neither a stuffed 0x00
/// nor a restart, when the next segment is asked for (a caller that stops at the first scan
/// reads only the headers). The walk ends at EOI, at the end of the bytes, or at a segment
/// whose length runs past them.
pub fn jpeg_segments(bytes: &[u8]) -> impl Iterator<Item = Segment<'_>> {
    let mut pos = 2;
    let mut in_scan = false;
    std::iter::from_fn(move || {
        if std::mem::take(&mut in_scan) {
            while let Some(offset) = bytes.get(pos..).and_then(|rest| memchr::memchr(0xFF, rest)) {
                pos += offset;
                match bytes.get(pos + 1) {
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => pos += 1,
                    _ => break,
                }
            }
        }
        loop {
            // Markers may be padded with any number of 0xFF bytes.
            pos += bytes.get(pos..)?.iter().position(|&b| b == 0xFF)?;
            while bytes.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let marker = *bytes.get(pos)?;
            pos += 1;
            match marker {
                0x00 | 0x01 | 0xD0..=0xD8 => continue,
                0xD9 => return None,
                _ => {}
            }
            let length = usize::from(u16::from_be_bytes([*bytes.get(pos)?, *bytes.get(pos + 1)?]));
            if length < 2 || pos + length > bytes.len() {
                pos = bytes.len();
                return None;
            }
            let body = &bytes[pos + 2..pos + length];
            pos += length;
            in_scan = marker == 0xDA;
            return Some(Segment { marker, body });
        }
    })
}

/// Reads the segments before the first scan. Malformed segments end the walk: metadata is then
/// simply absent, and the decoder reports the damage.
pub fn jpeg(bytes: &[u8]) -> Metadata {
    let mut metadata = Metadata::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    for Segment { marker, body } in jpeg_segments(bytes).take_while(|segment| segment.marker != 0xDA) {
        match marker {
            0xE1 if body.starts_with(b"Exif\0\0") && metadata.orientation.is_none() => {
                metadata.orientation = Orientation::from_exif_chunk(&body[6..]);
            }
            0xE2 if body.starts_with(ICC_MARKER) && body.len() > ICC_MARKER.len() + 2 => {
                let seq = body[ICC_MARKER.len()];
                icc_chunks.push((seq, &body[ICC_MARKER.len() + 2..]));
            }
            0xEE if body.starts_with(b"Adobe") => metadata.adobe = true,
            _ => {}
        }
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|(seq, _)| *seq);
        metadata.icc_profile = Some(icc_chunks.iter().flat_map(|(_, data)| data.iter().copied()).collect());
    }
    metadata
}

/// Walks the chunks of an extended (VP8X) WebP file for `ICCP` and `EXIF`.
pub fn webp(bytes: &[u8]) -> Metadata {
    let mut metadata = Metadata::default();
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let fourcc = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
        let Some(end) = (pos + 8).checked_add(len).filter(|&end| end <= bytes.len()) else {
            break;
        };
        let body = &bytes[pos + 8..end];
        match fourcc {
            b"ICCP" => metadata.icc_profile = Some(body.to_vec()),
            b"EXIF" => {
                let tiff = body.strip_prefix(b"Exif\0\0").unwrap_or(body);
                metadata.orientation = Orientation::from_exif_chunk(tiff);
            }
            _ => {}
        }
        pos = end + (len & 1);
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal big-endian TIFF block with one IFD entry: Orientation = `value`.
    pub(crate) fn exif_orientation(value: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
        tiff.extend_from_slice(&value.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        tiff
    }

    #[test]
    fn jpeg_markers_give_orientation_and_icc_in_sequence_order() {
        let mut jpeg = vec![0xFF, 0xD8];
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(exif_orientation(6));
        for (marker, body) in [
            (0xE1, app1),
            (0xE2, [ICC_MARKER, &[2, 2], b"world"].concat()),
            (0xE2, [ICC_MARKER, &[1, 2], b"hello "].concat()),
        ] {
            jpeg.extend_from_slice(&[0xFF, marker]);
            jpeg.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            jpeg.extend(body);
        }
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        let metadata = super::jpeg(&jpeg);
        assert_eq!(metadata.orientation, Some(Orientation::Rotate90));
        assert_eq!(metadata.icc_profile.as_deref(), Some(&b"hello world"[..]));
    }

    #[test]
    fn truncated_segments_end_the_walk_without_panic() {
        let metadata = jpeg(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 1, 2]);
        assert!(metadata.orientation.is_none() && metadata.icc_profile.is_none());
        let metadata = webp(b"RIFF\0\0\0\0WEBPEXIF\xff\xff\xff\xff");
        assert!(metadata.orientation.is_none());
    }
}
