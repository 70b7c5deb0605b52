//! The HEIF container (ISO/IEC 23008-12) of AVIF files: the primary image item, its coded data
//! and the properties that say how to show it (size, rotation, mirror, colour, alpha). Read
//! from the `meta` box alone, in safe code, every offset and length checked against the file:
//! no pixel is decoded here, so a file's size is known before anything is allocated for it.

use std::borrow::Cow;

use image::metadata::Orientation;

/// The primary image of a still HEIF file, as its properties describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Still<'a> {
    /// The file's major brand (`avif`, `heic`, ...).
    pub brand: [u8; 4],
    /// The item type of the primary image (`av01`, `hvc1`, `grid`, ...).
    pub kind: [u8; 4],
    /// Stored size, from the `ispe` property.
    pub width: u32,
    pub height: u32,
    /// `irot` then `imir`, as the EXIF orientation that does the same.
    pub orientation: Option<Orientation>,
    /// A `colr` box of type `nclx`: colour primaries, transfer, matrix, full range.
    pub nclx: Option<Nclx>,
    /// A `colr` box of type `prof` or `rICC`.
    pub icc_profile: Option<Vec<u8>>,
    /// The codec's configuration record (`av1C`, `hvcC`): bit depth, chroma, monochrome.
    pub config: Option<Vec<u8>>,
    /// The coded data of the image and of its alpha plane (an auxiliary image), if any:
    /// borrowed from the file when an item is stored in one piece, as encoders write it.
    pub data: Coded<'a>,
    pub alpha: Option<Coded<'a>>,
    /// The alpha plane's `ispe` size, which must equal the image's.
    pub alpha_size: Option<(u32, u32)>,
    /// Colour premultiplied by alpha (a `prem` reference).
    pub premultiplied: bool,
}

/// An image's coded data: one item, or the tiles of a grid item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded<'a> {
    /// The tiles in rows, left to right and top to bottom; one for an image that is no grid.
    pub tiles: Vec<Cow<'a, [u8]>>,
    pub columns: u32,
    /// Each tile's size (`ispe`): the image's own when there is one tile. The tiles cover the
    /// image, and the last column and row may reach past it (they are cropped).
    pub tile_size: (u32, u32),
    /// The item type of the tiles (`av01`, `hvc1`).
    pub kind: [u8; 4],
}

/// Colour as coded-independent code points (ITU-T H.273).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

/// Whether colour in these code points is shown as sRGB without conversion: BT.709 primaries
/// (or unspecified ones) with an sRGB-like transfer.
fn is_srgb(nclx: &Nclx) -> bool {
    matches!(nclx.primaries, 1 | 2) && matches!(nclx.transfer, 1 | 2 | 6 | 13 | 14 | 15)
}

impl Still<'_> {
    /// The profile of the decoded pixels: the file's ICC profile, or one made from its `nclx`
    /// code points when they are not sRGB (Display P3, BT.2020, ...); `None` for sRGB.
    pub fn profile(&self) -> Option<Vec<u8>> {
        if let Some(icc) = &self.icc_profile {
            return Some(icc.clone());
        }
        let nclx = self.nclx.filter(|nclx| !is_srgb(nclx))?;
        let code = |value: u16| u8::try_from(value).ok();
        let cicp = moxcms::CicpProfile {
            color_primaries: moxcms::CicpColorPrimaries::try_from(code(nclx.primaries)?).ok()?,
            transfer_characteristics: moxcms::TransferCharacteristics::try_from(code(nclx.transfer)?).ok()?,
            matrix_coefficients: moxcms::MatrixCoefficients::try_from(code(nclx.matrix)?).ok()?,
            full_range: nclx.full_range,
        };
        moxcms::ColorProfile::new_from_cicp(cicp).encode().ok()
    }
}

fn corrupt(format: &'static str, detail: &str) -> crate::engine::EngineError {
    crate::engine::EngineError::corrupt(format, detail)
}

/// A box: its type and its body (after the size and type, and a `uuid` box's extended type).
struct Bx<'a> {
    kind: [u8; 4],
    body: &'a [u8],
    /// Where the body starts in the file, for item locations given as file offsets.
    at: usize,
}

/// The boxes in `bytes` (which start at file offset `at`), in order; a box whose size runs past
/// the end is an error.
fn boxes(bytes: &[u8], at: usize) -> impl Iterator<Item = Result<Bx<'_>, &'static str>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let rest = &bytes[pos..];
        let result = (|| {
            let size = u64::from(be32(rest, 0)?);
            let kind: [u8; 4] = rest.get(4..8).ok_or("a box header is cut short")?.try_into().map_err(|_| "box")?;
            let (header, size) = match size {
                0 => (8, rest.len() as u64),
                1 => (16, be64(rest, 8)?),
                _ => (8, size),
            };
            let header = if &kind == b"uuid" { header + 16 } else { header };
            let size = usize::try_from(size).map_err(|_| "a box is larger than the file")?;
            if size < header || size > rest.len() {
                return Err("a box's size runs past its container");
            }
            Ok((Bx { kind, body: &rest[header..size], at: at + pos + header }, size))
        })();
        Some(match result {
            Ok((found, size)) => {
                pos += size;
                Ok(found)
            }
            Err(error) => {
                pos = bytes.len();
                Err(error)
            }
        })
    })
}

fn be16(bytes: &[u8], at: usize) -> Result<u16, &'static str> {
    bytes.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or("a field runs past its box")
}

fn be32(bytes: &[u8], at: usize) -> Result<u32, &'static str> {
    bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or("a field runs past its box")
}

fn be64(bytes: &[u8], at: usize) -> Result<u64, &'static str> {
    let high = u64::from(be32(bytes, at)?);
    Ok(high << 32 | u64::from(be32(bytes, at + 4)?))
}

/// A big-endian unsigned field of `size` bytes (0, 2, 4 or 8) at `*pos`, which moves past it.
fn field(bytes: &[u8], pos: &mut usize, size: usize) -> Result<u64, &'static str> {
    let value = match size {
        0 => 0,
        2 => u64::from(be16(bytes, *pos)?),
        4 => u64::from(be32(bytes, *pos)?),
        8 => be64(bytes, *pos)?,
        _ => return Err("a field size that is not 0, 4 or 8"),
    };
    *pos += size;
    Ok(value)
}

/// The version byte of a full box, and its body after the version and flags.
fn full_box(body: &[u8]) -> Result<(u8, u32, &[u8]), &'static str> {
    let word = be32(body, 0)?;
    Ok(((word >> 24) as u8, word & 0x00FF_FFFF, &body[4..]))
}

/// Where an item's data lies: extents in the file or in the `idat` box.
struct Location {
    item: u32,
    in_idat: bool,
    extents: Vec<(u64, u64)>,
}

fn parse_iloc(body: &[u8]) -> Result<Vec<Location>, &'static str> {
    let (version, _, body) = full_box(body)?;
    if version > 2 {
        return Err("an item location box of an unknown version");
    }
    let sizes = be16(body, 0)?;
    let (offset_size, length_size) = (usize::from(sizes >> 12), usize::from((sizes >> 8) & 15));
    let (base_size, index_size) = (usize::from((sizes >> 4) & 15), usize::from(sizes & 15));
    let mut pos = 2;
    let count = if version < 2 { u32::from(be16(body, pos)?) } else { be32(body, pos)? };
    pos += if version < 2 { 2 } else { 4 };
    let mut locations = Vec::new();
    for _ in 0..count {
        let item = if version < 2 { u32::from(be16(body, pos)?) } else { be32(body, pos)? };
        pos += if version < 2 { 2 } else { 4 };
        let method = if version >= 1 { field(body, &mut pos, 2)? & 15 } else { 0 };
        pos += 2; // data_reference_index
        let base = field(body, &mut pos, base_size)?;
        let extent_count = be16(body, pos)?;
        pos += 2;
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            if version >= 1 && index_size > 0 {
                field(body, &mut pos, index_size)?;
            }
            let offset = field(body, &mut pos, offset_size)?;
            let length = field(body, &mut pos, length_size)?;
            extents.push((base.checked_add(offset).ok_or("an item offset overflows")?, length));
        }
        if method > 1 {
            return Err("items located by reference to other items are not supported");
        }
        locations.push(Location { item, in_idat: method == 1, extents });
    }
    Ok(locations)
}

/// The properties a still image needs, by their index in `ipco` (from 1).
#[derive(Debug, Clone)]
enum Property {
    Size(u32, u32),
    Rotation(u8),
    Mirror(u8),
    Nclx(Nclx),
    Icc(Vec<u8>),
    /// The auxiliary type URN of an `auxC` box.
    Auxiliary(Vec<u8>),
    Config(Vec<u8>),
    Other,
}

fn parse_property(found: &Bx<'_>) -> Result<Property, &'static str> {
    let body = found.body;
    Ok(match &found.kind {
        b"ispe" => {
            let (_, _, body) = full_box(body)?;
            Property::Size(be32(body, 0)?, be32(body, 4)?)
        }
        b"irot" => Property::Rotation(*body.first().ok_or("an empty rotation")? & 3),
        b"imir" => Property::Mirror(*body.first().ok_or("an empty mirror")? & 1),
        b"colr" => match body.get(0..4) {
            Some(b"nclx") => Property::Nclx(Nclx {
                primaries: be16(body, 4)?,
                transfer: be16(body, 6)?,
                matrix: be16(body, 8)?,
                full_range: *body.get(10).ok_or("a colour box is cut short")? & 0x80 != 0,
            }),
            Some(b"prof" | b"rICC") => Property::Icc(body[4..].to_vec()),
            _ => Property::Other,
        },
        b"auxC" => {
            let (_, _, body) = full_box(body)?;
            let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
            Property::Auxiliary(body[..end].to_vec())
        }
        b"av1C" | b"hvcC" => Property::Config(body.to_vec()),
        _ => Property::Other,
    })
}

/// The auxiliary types that mark an alpha plane, in AVIF and in HEIC.
const ALPHA_URNS: [&[u8]; 2] = [b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1"];

/// Each item's properties, in the order `ipma` lists them.
fn parse_ipma(body: &[u8], properties: &[Property]) -> Result<Vec<(u32, Vec<Property>)>, &'static str> {
    let (version, flags, body) = full_box(body)?;
    let count = be32(body, 0)?;
    let mut pos = 4;
    let mut items = Vec::new();
    for _ in 0..count {
        let item = if version < 1 { u32::from(be16(body, pos)?) } else { be32(body, pos)? };
        pos += if version < 1 { 2 } else { 4 };
        let associations = *body.get(pos).ok_or("an association list is cut short")?;
        pos += 1;
        let mut list = Vec::new();
        for _ in 0..associations {
            let index = if flags & 1 != 0 {
                let value = be16(body, pos)?;
                pos += 2;
                usize::from(value & 0x7FFF)
            } else {
                let value = *body.get(pos).ok_or("an association list is cut short")?;
                pos += 1;
                usize::from(value & 0x7F)
            };
            // Index 0 means no property.
            if index > 0 {
                list.push(properties.get(index - 1).ok_or("an item refers to a missing property")?.clone());
            }
        }
        items.push((item, list));
    }
    Ok(items)
}

/// A reference of a kind (`auxl`, `prem`, ...) from an item to others.
type Reference = ([u8; 4], u32, Vec<u32>);

fn parse_iref(body: &[u8]) -> Result<Vec<Reference>, &'static str> {
    let (version, _, body) = full_box(body)?;
    let id_size = if version == 0 { 2 } else { 4 };
    let mut references = Vec::new();
    for found in boxes(body, 0) {
        let found = found?;
        let mut pos = 0;
        let from = field(found.body, &mut pos, id_size)? as u32;
        let count = be16(found.body, pos)?;
        pos += 2;
        let to =
            (0..count).map(|_| field(found.body, &mut pos, id_size).map(|v| v as u32)).collect::<Result<_, _>>()?;
        references.push((found.kind, from, to));
    }
    Ok(references)
}

/// The item types, from `iinf`'s `infe` entries of version 2 and 3.
fn parse_iinf(body: &[u8]) -> Result<Vec<(u32, [u8; 4])>, &'static str> {
    let (version, _, body) = full_box(body)?;
    let skip = if version == 0 { 2 } else { 4 };
    let mut items = Vec::new();
    for found in boxes(body.get(skip..).ok_or("an item list is cut short")?, 0) {
        let found = found?;
        if &found.kind != b"infe" {
            continue;
        }
        let (version, _, entry) = full_box(found.body)?;
        let (id, at) = match version {
            2 => (u32::from(be16(entry, 0)?), 4),
            3 => (be32(entry, 0)?, 6),
            _ => continue,
        };
        let kind = entry.get(at..at + 4).ok_or("an item entry is cut short")?;
        items.push((id, [kind[0], kind[1], kind[2], kind[3]]));
    }
    Ok(items)
}

/// Reads the primary still image of a HEIF file (`format` names it in errors).
pub fn read<'a>(bytes: &'a [u8], format: &'static str) -> Result<Still<'a>, crate::engine::EngineError> {
    read_inner(bytes).map_err(|detail| corrupt(format, detail))
}

fn read_inner(bytes: &[u8]) -> Result<Still<'_>, &'static str> {
    let (mut brand, mut meta) = (None, None);
    for found in boxes(bytes, 0) {
        let found = found?;
        match &found.kind {
            b"ftyp" => brand = found.body.get(0..4).map(|b| [b[0], b[1], b[2], b[3]]),
            b"meta" => meta = Some(found),
            _ => {}
        }
    }
    let brand = brand.ok_or("no file type box")?;
    let meta = meta.ok_or("no meta box: not a still image")?;
    let (_, _, meta_body) = full_box(meta.body)?;
    let meta_at = meta.at + 4;
    let (mut primary, mut kinds, mut locations) = (None, Vec::new(), Vec::new());
    let (mut properties, mut associations, mut references, mut idat) = (Vec::new(), Vec::new(), Vec::new(), None);
    for found in boxes(meta_body, meta_at) {
        let found = found?;
        match &found.kind {
            b"pitm" => {
                let (version, _, body) = full_box(found.body)?;
                primary = Some(if version == 0 { u32::from(be16(body, 0)?) } else { be32(body, 0)? });
            }
            b"iinf" => kinds = parse_iinf(found.body)?,
            b"iloc" => locations = parse_iloc(found.body)?,
            b"iref" => references = parse_iref(found.body)?,
            b"idat" => idat = Some(found.body),
            b"iprp" => {
                for child in boxes(found.body, found.at) {
                    let child = child?;
                    match &child.kind {
                        b"ipco" => {
                            properties = boxes(child.body, child.at)
                                .map(|p| p.and_then(|p| parse_property(&p)))
                                .collect::<Result<_, _>>()?;
                        }
                        b"ipma" => associations.extend(parse_ipma(child.body, &properties)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let primary = primary.ok_or("no primary item")?;
    let kind =
        kinds.iter().find(|(id, _)| *id == primary).map(|(_, kind)| *kind).ok_or("the primary item has no type")?;
    let properties_of =
        |item: u32| associations.iter().filter(move |(id, _)| *id == item).flat_map(|(_, list)| list.iter()).cloned();
    let data_of = |item: u32| -> Result<Cow<'_, [u8]>, &'static str> {
        let location = locations.iter().find(|l| l.item == item).ok_or("an item has no location")?;
        let source = if location.in_idat { idat.ok_or("an item is in a missing idat box")? } else { bytes };
        let mut data = Cow::Borrowed(&[][..]);
        for &(offset, length) in &location.extents {
            let start = usize::try_from(offset).map_err(|_| "an item lies past the end of the file")?;
            // A length of 0 runs to the end of the file.
            let end = if length == 0 {
                source.len()
            } else {
                usize::try_from(offset.saturating_add(length)).map_err(|_| "an item lies past the end")?
            };
            let extent = source.get(start..end).ok_or("an item lies past the end of the file")?;
            // Extents may not add up to more than the file: no repeated region inflates an item.
            if data.len() + extent.len() > bytes.len() {
                return Err("an item's extents add up to more than the file");
            }
            if data.is_empty() {
                data = Cow::Borrowed(extent);
            } else {
                data.to_mut().extend_from_slice(extent);
            }
        }
        Ok(data)
    };
    let mut still = Still {
        brand,
        kind,
        width: 0,
        height: 0,
        orientation: None,
        nclx: None,
        icc_profile: None,
        config: None,
        data: Coded { tiles: Vec::new(), columns: 1, tile_size: (0, 0), kind },
        alpha: None,
        alpha_size: None,
        premultiplied: references.iter().any(|(kind, from, _)| kind == b"prem" && *from == primary),
    };
    let (mut rotation, mut mirror) = (0u8, None);
    for property in properties_of(primary) {
        match property {
            Property::Size(width, height) => (still.width, still.height) = (width, height),
            Property::Rotation(turns) => rotation = turns,
            Property::Mirror(axis) => mirror = Some(axis),
            Property::Nclx(nclx) => still.nclx = still.nclx.or(Some(nclx)),
            Property::Icc(icc) => still.icc_profile = still.icc_profile.take().or(Some(icc)),
            Property::Config(config) => still.config = still.config.take().or(Some(config)),
            Property::Auxiliary(_) | Property::Other => {}
        }
    }
    if still.width == 0 || still.height == 0 {
        return Err("the primary item has no size (ispe)");
    }
    // An item's coded data: itself, or the tiles its grid descriptor lays out (ISO/IEC
    // 23008-12 6.6.2.3), each of a size that covers the image without a spare row or column.
    let coded = |item: u32, kind: [u8; 4], size: (u32, u32)| -> Result<Coded<'_>, &'static str> {
        if &kind != b"grid" {
            return Ok(Coded { tiles: vec![data_of(item)?], columns: 1, tile_size: size, kind });
        }
        let descriptor = data_of(item)?;
        let (&version, rest) = descriptor.split_first().ok_or("a grid descriptor is empty")?;
        if version != 0 {
            return Err("a grid descriptor of an unknown version");
        }
        let [flags, rows, columns, ..] = *rest else { return Err("a grid descriptor is cut short") };
        let (rows, columns) = (u32::from(rows) + 1, u32::from(columns) + 1);
        let wide = flags & 1 == 1;
        let mut at = 4;
        let output = (
            field(&descriptor, &mut at, if wide { 4 } else { 2 })?,
            field(&descriptor, &mut at, if wide { 4 } else { 2 })?,
        );
        if output != (u64::from(size.0), u64::from(size.1)) {
            return Err("a grid's output size is not its item's size");
        }
        let tiles: Vec<u32> = references
            .iter()
            .filter(|(reference, from, _)| reference == b"dimg" && *from == item)
            .flat_map(|(_, _, to)| to.iter().copied())
            .collect();
        if tiles.len() as u64 != u64::from(rows) * u64::from(columns) {
            return Err("a grid's tiles are not its rows times its columns");
        }
        let first = tiles[0];
        let tile_kind = kinds.iter().find(|(id, _)| *id == first).map(|(_, kind)| *kind).ok_or("a tile has no type")?;
        let tile_size = properties_of(first)
            .find_map(|p| match p {
                Property::Size(width, height) => Some((width, height)),
                _ => None,
            })
            .ok_or("a tile has no size (ispe)")?;
        let covers = |tile: u32, count: u32, side: u32| {
            tile > 0
                && u64::from(tile) * u64::from(count) >= u64::from(side)
                && u64::from(tile) * u64::from(count - 1) < u64::from(side)
        };
        if !covers(tile_size.0, columns, size.0) || !covers(tile_size.1, rows, size.1) {
            return Err("a grid's tiles do not cover its image exactly");
        }
        for &tile in &tiles {
            let same_kind = kinds.iter().any(|(id, kind)| *id == tile && *kind == tile_kind);
            let same_size = properties_of(tile).any(|p| matches!(p, Property::Size(w, h) if (w, h) == tile_size));
            if !same_kind || !same_size {
                return Err("a grid's tiles differ in type or size");
            }
        }
        Ok(Coded {
            tiles: tiles.iter().map(|&tile| data_of(tile)).collect::<Result<_, _>>()?,
            columns,
            tile_size,
            kind: tile_kind,
        })
    };
    still.data = coded(primary, kind, (still.width, still.height))?;
    if still.config.is_none() && &kind == b"grid" {
        // The codec's configuration is the tiles'.
        let first =
            references.iter().find(|(r, from, _)| r == b"dimg" && *from == primary).and_then(|(_, _, to)| to.first());
        still.config = first.and_then(|&tile| {
            properties_of(tile).find_map(|p| match p {
                Property::Config(config) => Some(config),
                _ => None,
            })
        });
    }
    still.orientation = orientation(rotation, mirror);
    // The alpha plane: an auxiliary image of the primary one whose type is alpha.
    for (kind, from, to) in &references {
        if kind != b"auxl" || !to.contains(&primary) {
            continue;
        }
        let is_alpha =
            properties_of(*from).any(|p| matches!(p, Property::Auxiliary(urn) if ALPHA_URNS.contains(&urn.as_slice())));
        if is_alpha {
            let size = properties_of(*from).find_map(|p| match p {
                Property::Size(width, height) => Some((width, height)),
                _ => None,
            });
            still.alpha_size = size;
            let kind = kinds.iter().find(|(id, _)| id == from).map_or(*b"av01", |(_, kind)| *kind);
            still.alpha = Some(coded(*from, kind, size.unwrap_or((still.width, still.height)))?);
            break;
        }
    }
    Ok(still)
}

/// HEIF applies the rotation (`irot`, anticlockwise quarter turns) and then the mirror (`imir`:
/// 0 exchanges top and bottom, 1 left and right, as HEIF's second edition and libavif read it);
/// the EXIF orientation that does the same (its rotations are clockwise).
fn orientation(anticlockwise: u8, mirror: Option<u8>) -> Option<Orientation> {
    use Orientation::*;
    let rotated = match anticlockwise {
        1 => Rotate270,
        2 => Rotate180,
        3 => Rotate90,
        _ => NoTransforms,
    };
    let result = match (rotated, mirror) {
        (rotated, None) => rotated,
        (NoTransforms, Some(1)) | (Rotate180, Some(0)) => FlipHorizontal,
        (NoTransforms, Some(_)) | (Rotate180, Some(_)) => FlipVertical,
        (Rotate90, Some(1)) | (Rotate270, Some(0)) => Rotate90FlipH,
        (_, Some(_)) => Rotate270FlipH,
    };
    (result != NoTransforms).then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_after_rotations_match_the_exif_orientations() {
        use Orientation::*;
        assert_eq!(orientation(0, None), None);
        assert_eq!(orientation(1, None), Some(Rotate270));
        assert_eq!(orientation(3, None), Some(Rotate90));
        assert_eq!(orientation(0, Some(1)), Some(FlipHorizontal));
        assert_eq!(orientation(0, Some(0)), Some(FlipVertical));
        assert_eq!(orientation(2, Some(1)), Some(FlipVertical));
        assert_eq!(orientation(2, Some(0)), Some(FlipHorizontal));
        assert_eq!(orientation(3, Some(1)), Some(Rotate90FlipH));
        assert_eq!(orientation(3, Some(0)), Some(Rotate270FlipH));
        assert_eq!(orientation(1, Some(1)), Some(Rotate270FlipH));
        assert_eq!(orientation(1, Some(0)), Some(Rotate90FlipH));
    }

    #[test]
    fn boxes_that_run_past_their_container_are_errors() {
        let mut bytes = b"\0\0\0\x10ftypavif\0\0\0\0".to_vec();
        assert_eq!(boxes(&bytes, 0).count(), 1);
        bytes[3] = 0x40;
        assert!(boxes(&bytes, 0).any(|b| b.is_err()));
        assert!(read_inner(&bytes).is_err());
    }
}
