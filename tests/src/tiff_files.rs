//! TIFFs written with the `tiff` crate: every compression the common writers use, 8 and 16 bits,
//! gray, RGB, RGBA and CMYK, with an orientation tag and a colour profile when asked.

use std::io::Cursor;

use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};
use tiff::tags::Tag;

/// The compressions a test goes through.
pub const COMPRESSIONS: [(Compression, &str); 4] = [
    (Compression::Uncompressed, "none"),
    (Compression::Lzw, "lzw"),
    (Compression::Deflate(DeflateLevel::Balanced), "deflate"),
    (Compression::Packbits, "packbits"),
];

/// What goes in besides the pixels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// The Orientation tag (1 to 8).
    pub orientation: Option<u16>,
    pub icc_profile: Option<&'a [u8]>,
}

/// A TIFF of `samples` (interleaved, as `C` lays them out) of `width` x `height`.
pub fn write<C: colortype::ColorType>(
    width: u32,
    height: u32,
    samples: &[C::Inner],
    compression: Compression,
    extras: Extras,
) -> Vec<u8>
where
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut out = Cursor::new(Vec::new());
    {
        let mut encoder = TiffEncoder::new(&mut out).expect("tiff header").with_compression(compression);
        let mut image = encoder.new_image::<C>(width, height).expect("tiff image");
        if let Some(orientation) = extras.orientation {
            image.encoder().write_tag(Tag::Orientation, orientation).expect("orientation tag");
        }
        if let Some(icc) = extras.icc_profile {
            image.encoder().write_tag(Tag::IccProfile, icc).expect("profile tag");
        }
        image.write_data(samples).expect("tiff data");
    }
    out.into_inner()
}
