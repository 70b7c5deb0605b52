//! Edits of HEIF files that their encoders cannot make: rotation (`irot`) and mirror (`imir`)
//! properties added to the primary item, as a camera writes them. The boxes that hold the new
//! properties grow, and every file offset in `iloc` past them moves by as much.

/// A box's header and body: where it starts in `data`, its header's length, its whole length.
struct Box4 {
    kind: [u8; 4],
    start: usize,
    header: usize,
    len: usize,
}

fn boxes(data: &[u8], from: usize, to: usize) -> Vec<Box4> {
    let mut found = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = be(&data[at..at + 4]) as usize;
        let kind = [data[at + 4], data[at + 5], data[at + 6], data[at + 7]];
        let (header, len) = match size {
            1 => (16, be(&data[at + 8..at + 16]) as usize),
            0 => (8, to - at),
            n => (8, n),
        };
        assert!(len >= header && at + len <= to, "box {:?} at {at} fits", String::from_utf8_lossy(&kind));
        found.push(Box4 { kind, start: at, header, len });
        at += len;
    }
    found
}

fn child<'a>(children: &'a [Box4], kind: &[u8; 4]) -> &'a Box4 {
    children.iter().find(|b| &b.kind == kind).unwrap_or_else(|| panic!("a {:?} box", String::from_utf8_lossy(kind)))
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, &b| n << 8 | u64::from(b))
}

fn put_be(bytes: &mut [u8], value: u64) {
    let n = bytes.len();
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (value >> (8 * (n - 1 - i))) as u8;
    }
}

/// `heif` with `irot` (anticlockwise quarter turns) and then `imir` (0: top and bottom
/// exchanged, 1: left and right) on its primary item, in that order.
pub fn with_transform(heif: &[u8], turns: Option<u8>, mirror: Option<u8>) -> Vec<u8> {
    let top = boxes(heif, 0, heif.len());
    let meta = child(&top, b"meta");
    // `meta` is a full box: 4 bytes of version and flags before its children.
    let meta_children = boxes(heif, meta.start + meta.header + 4, meta.start + meta.len);
    let pitm = child(&meta_children, b"pitm");
    let primary = if heif[pitm.start + pitm.header] == 0 {
        be(&heif[pitm.start + pitm.header + 4..][..2])
    } else {
        be(&heif[pitm.start + pitm.header + 4..][..4])
    };
    let iprp = child(&meta_children, b"iprp");
    let iprp_children = boxes(heif, iprp.start + iprp.header, iprp.start + iprp.len);
    let ipco = child(&iprp_children, b"ipco");
    let ipma = child(&iprp_children, b"ipma");
    let properties = boxes(heif, ipco.start + ipco.header, ipco.start + ipco.len).len();

    let mut added = Vec::new();
    if let Some(turns) = turns {
        added.extend_from_slice(&[0, 0, 0, 9, b'i', b'r', b'o', b't', turns & 3]);
    }
    if let Some(mirror) = mirror {
        added.extend_from_slice(&[0, 0, 0, 9, b'i', b'm', b'i', b'r', mirror & 1]);
    }
    let new = turns.is_some() as usize + mirror.is_some() as usize;

    // The primary item's associations, with the new properties' (1-based) indices after them.
    let version = heif[ipma.start + ipma.header];
    let wide = heif[ipma.start + ipma.header + 3] & 1 == 1;
    let mut ipma_body = heif[ipma.start + ipma.header..ipma.start + ipma.len].to_vec();
    let entries = be(&ipma_body[4..8]);
    let mut at = 8;
    let id_len = if version < 1 { 2 } else { 4 };
    let association_len = if wide { 2 } else { 1 };
    let mut found = false;
    for _ in 0..entries {
        let id = be(&ipma_body[at..at + id_len]);
        let count = usize::from(ipma_body[at + id_len]);
        let end = at + id_len + 1 + count * association_len;
        if id == primary {
            ipma_body[at + id_len] = (count + new) as u8;
            let mut associations = Vec::new();
            for index in properties + 1..=properties + new {
                // Transformative properties are marked essential.
                if wide {
                    associations.extend_from_slice(&(0x8000 | index as u16).to_be_bytes());
                } else {
                    associations.push(0x80 | index as u8);
                }
            }
            ipma_body.splice(end..end, associations);
            found = true;
            break;
        }
        at = end;
    }
    assert!(found, "the primary item has associations");
    let ipma_grew = new * association_len;
    let grew = added.len() + ipma_grew;

    let mut out = heif.to_vec();
    // Back to front, so that the earlier positions hold.
    let (ipco_end, ipma_start, ipma_end) = (ipco.start + ipco.len, ipma.start + ipma.header, ipma.start + ipma.len);
    let (first, second) = if ipco_end <= ipma_start {
        ((ipco_end, ipco_end, added.clone()), (ipma_start, ipma_end, ipma_body))
    } else {
        ((ipma_start, ipma_end, ipma_body), (ipco_end, ipco_end, added.clone()))
    };
    out.splice(second.0..second.1, second.2);
    out.splice(first.0..first.1, first.2);
    // Where a box of the original starts now: moved by the edits before it.
    let moved = |start: usize| {
        start + if ipco_end <= start { added.len() } else { 0 } + if ipma_end <= start { ipma_grew } else { 0 }
    };
    for (b, by) in [(meta, grew), (iprp, grew), (ipco, added.len()), (ipma, ipma_grew)] {
        assert_eq!(b.header, 8, "small boxes");
        let start = moved(b.start);
        let size = be(&out[start..start + 4]);
        put_be(&mut out[start..start + 4], size + by as u64);
    }

    // Every file offset past `meta` moves by `grew` (the edits are inside it).
    let iloc = child(&meta_children, b"iloc");
    let mut at = moved(iloc.start) + iloc.header;
    let version = out[at];
    let offset_size = usize::from(out[at + 4] >> 4);
    let length_size = usize::from(out[at + 4] & 15);
    let base_offset_size = usize::from(out[at + 5] >> 4);
    let index_size = if version >= 1 { usize::from(out[at + 5] & 15) } else { 0 };
    at += 6;
    let count = if version < 2 {
        at += 2;
        be(&out[at - 2..at])
    } else {
        at += 4;
        be(&out[at - 4..at])
    };
    let meta_end = meta.start + meta.len;
    for _ in 0..count {
        at += if version < 2 { 2 } else { 4 };
        let method = if version >= 1 {
            at += 2;
            out[at - 1] & 15
        } else {
            0
        };
        at += 2; // data reference index
        let base = at;
        at += base_offset_size;
        let extents = be(&out[at..at + 2]);
        at += 2;
        let base_offset = be(&out[base..base + base_offset_size]);
        let base_moves = method == 0 && base_offset >= meta_end as u64;
        if base_moves {
            put_be(&mut out[base..base + base_offset_size], base_offset + grew as u64);
        }
        for _ in 0..extents {
            at += index_size;
            let offset = be(&out[at..at + offset_size]);
            if method == 0 && !base_moves && base_offset + offset >= meta_end as u64 {
                put_be(&mut out[at..at + offset_size], offset + grew as u64);
            }
            at += offset_size + length_size;
        }
    }
    out
}
