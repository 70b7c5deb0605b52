//! Huffman decoding of JPEG entropy-coded data: a copy of a scan's data without its byte
//! stuffing and markers, a bit reader over it, and Huffman tables with one-lookup decoding of
//! short codes.
//!
//! Vocabulary: a *symbol* is what a Huffman code stands for; for AC coefficients it packs a
//! zero *run* (high nibble) and the *size* in bits of the value that follows (low nibble). A
//! *fast entry* decodes code, run and value in one table lookup when code and value together
//! fit in [`LOOKUP_BITS`].

use std::sync::{Arc, Mutex, PoisonError};

/// Bits looked up at once. Nine covers the great majority of codes in real files (libjpeg-turbo
/// uses eight; stb_image nine).
pub const LOOKUP_BITS: u32 = 9;

/// Bits looked up at once when AC codes are only walked over, not kept: a table of 16 KiB.
/// Measured on 400 px renders of 2560 px photos: 13 about 2% faster than 12 (fewer lookups a
/// block), 14 slower on a 4:4:4 photo (the tables of both components no longer stay in L1).
pub const SKIP_BITS: u32 = 13;

/// Bits looked up at once when a baseline block's AC coefficients are kept: up to two
/// coefficients (or a coefficient and the end of the block) a lookup.
pub const PAIR_BITS: u32 = 12;

/// Bits [`BitReader::refill`] leaves in the buffer at least.
pub const REFILLED: u32 = 56;

/// What went wrong in the entropy-coded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyError {
    /// A bit pattern that no code of the table starts with.
    BadCode,
    /// The data ended, or a marker came, before the scan was complete.
    Truncated,
}

/// A scan's entropy-coded data with the byte stuffing taken out, in segments: the data up to
/// each restart marker, and after the last one up to the marker that ends the scan. At most
/// the size of the file, and a position for each restart the scan can use. What
/// [`BitReader`] reads: with no stuffing and no markers left, it refills without a test on
/// the data.
pub struct Unstuffed {
    bytes: Vec<u8>,
    /// Where each segment ends in `bytes` (and the next starts).
    ends: Vec<usize>,
    /// Where the marker that ends the scan starts, in the file.
    pub end: usize,
}

impl Unstuffed {
    /// The data from `pos` in the file: unstuffed (0xFF 0x00 is 0xFF), fill bytes (0xFF before
    /// a marker) dropped, split at restart markers into at most `segments`, up to any other
    /// marker, the restart marker after the last segment, or the end.
    pub fn new(data: &[u8], pos: usize, segments: usize) -> Unstuffed {
        let mut bytes = Vec::with_capacity(data.len().saturating_sub(pos));
        let mut ends = Vec::new();
        let mut at = pos;
        let end = loop {
            let rest = data.get(at..).unwrap_or_default();
            let Some(offset) = memchr::memchr(0xFF, rest) else {
                bytes.extend_from_slice(rest);
                break data.len();
            };
            bytes.extend_from_slice(&rest[..offset]);
            at += offset;
            match data.get(at + 1) {
                Some(0x00) => {
                    bytes.push(0xFF);
                    at += 2;
                }
                Some(0xFF) => at += 1,
                Some(0xD0..=0xD7) if ends.len() + 1 < segments => {
                    ends.push(bytes.len());
                    at += 2;
                }
                _ => break at,
            }
        };
        ends.push(bytes.len());
        Unstuffed { bytes, ends, end }
    }

    /// A reader from the start of the first segment.
    pub fn reader(&self) -> BitReader<'_> {
        BitReader::at_segment(self, 0)
    }
}

/// Reads an [`Unstuffed`] scan, most significant bit first, a segment at a time. Past a
/// segment's end it reads zero bits, and [`BitReader::overran`] reports it (as libjpeg-turbo
/// warns), never a panic. It is `Copy`, and nothing takes it by reference that is not inlined,
/// so that in the decoding loops its fields stay in registers.
#[derive(Clone, Copy)]
pub struct BitReader<'a> {
    unstuffed: &'a Unstuffed,
    /// The bytes of the segment not yet in `bits`: a slice rather than a position, so that the
    /// refill tests one length, and moving on needs no test at all.
    rest: &'a [u8],
    /// Valid bits, left-aligned; the bits below them are the data's that follow, or zero.
    bits: u64,
    count: u32,
    segment: u32,
    /// The zero bytes read past the segment's end (`rest` is then empty).
    beyond: usize,
}

/// The refill within the last eight bytes of a segment: those bytes, then zeros, as a
/// big-endian word, the bytes left after moving on by `advance`, and how many of the `advance`
/// were past the end. Takes no reader: one passed by reference would keep the decoding loops'
/// reader out of registers.
#[cold]
#[inline(never)]
fn last_word(rest: &[u8], advance: usize) -> (u64, &[u8], usize) {
    let mut word = [0u8; 8];
    let n = rest.len().min(8);
    word[..n].copy_from_slice(&rest[..n]);
    let within = advance.min(rest.len());
    (u64::from_be_bytes(word), &rest[within..], advance - within)
}

/// Where the next marker starts, at or after `pos` in the file: where the entropy-coded data
/// that starts there ends (stuffed bytes and fill bytes are not markers).
pub fn marker_position(data: &[u8], mut pos: usize) -> usize {
    loop {
        match data.get(pos..).and_then(|rest| memchr::memchr(0xFF, rest)) {
            None => return data.len(),
            Some(offset) => pos += offset,
        }
        match data.get(pos + 1) {
            Some(0x00) => pos += 2,
            Some(0xFF) => pos += 1,
            _ => return pos,
        }
    }
}

impl<'a> BitReader<'a> {
    fn at_segment(unstuffed: &'a Unstuffed, segment: u32) -> BitReader<'a> {
        let index = segment as usize;
        let start = match index {
            0 => 0,
            _ => unstuffed.ends.get(index - 1).copied().unwrap_or(usize::MAX),
        };
        let end = unstuffed.ends.get(index).copied().unwrap_or(0);
        let rest = unstuffed.bytes.get(start..end).unwrap_or_default();
        BitReader { unstuffed, rest, bits: 0, count: 0, segment, beyond: 0 }
    }

    /// Fills the buffer to at least 56 bits, without a branch on the data: the next eight
    /// bytes or'd in below the valid bits (those already there are the same bits, or zero),
    /// and the bytes that fitted whole moved past.
    #[inline(always)]
    pub fn refill(&mut self) {
        // `count` is at most 63: the mask only tells the compiler so (the move needs no test).
        let advance = ((63 - self.count) >> 3) as usize & 7;
        if let Some(chunk) = self.rest.first_chunk::<8>() {
            self.bits |= u64::from_be_bytes(*chunk) >> self.count;
            self.rest = &self.rest[advance..];
        } else {
            let (word, rest, beyond) = last_word(self.rest, advance);
            self.bits |= word >> self.count;
            self.rest = rest;
            self.beyond += beyond;
        }
        self.count |= REFILLED;
    }

    /// The next `n` bits (1 to 32) without consuming them; the buffer must hold them.
    #[inline(always)]
    pub fn peek(&self, n: u32) -> u32 {
        (self.bits >> (64 - n)) as u32
    }

    #[inline(always)]
    pub fn consume(&mut self, n: u32) {
        self.bits <<= n;
        self.count -= n;
    }

    /// Consumes as many bits as the low five bits of `entry` say, its sixth bit clear and
    /// whatever above: a table entry with its length there. The shift reads only the low six
    /// bits itself, so no mask stands between one lookup and the index of the next (the chain
    /// of dependent steps that sets a decoding loop's pace). The count is masked to five bits,
    /// not six, so that the compiler cannot share one mask between the two.
    #[inline(always)]
    pub fn consume_low6(&mut self, entry: u32) {
        debug_assert_eq!(entry & 32, 0, "a length of at most 31 bits, the sixth bit clear");
        self.bits = self.bits.wrapping_shl(entry);
        self.count -= entry & 31;
    }

    /// Reads `n` bits (0 to 16) as an unsigned number; refills as needed.
    #[inline(always)]
    pub fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.refill();
        }
        let value = self.peek(n);
        self.consume(n);
        value
    }

    /// Reads one bit.
    #[inline(always)]
    pub fn bit(&mut self) -> u32 {
        self.bits(1)
    }

    /// Makes sure at least 32 bits are buffered. Where every lookup needs its bits, a baseline
    /// block's codes, [`BitReader::refill`] without the test costs less (whether a lookup finds
    /// the bits there is as good as random); where a block has a few bits, a progressive scan's,
    /// the test costs less than the refill it mostly skips.
    #[inline(always)]
    pub fn ensure32(&mut self) {
        if self.count < 32 {
            self.refill();
        }
    }

    /// Whether bits past the segment's data were consumed.
    pub fn overran(self) -> bool {
        // Bytes are read past the end only once `rest` is empty; of those, the bits still
        // buffered were not consumed.
        self.rest.is_empty() && self.beyond * 8 > self.count as usize
    }

    /// What a restart marker does: drops the buffered bits and reads the next segment. Fails
    /// if the interval read bits past its data.
    #[inline(never)]
    pub fn restart(self) -> Result<BitReader<'a>, EntropyError> {
        if self.overran() {
            return Err(EntropyError::Truncated);
        }
        Ok(BitReader::at_segment(self.unstuffed, self.segment.saturating_add(1)))
    }
}

/// One Huffman table, ready for decoding.
#[derive(Clone)]
pub struct HuffmanTable {
    /// Indexed by the next [`LOOKUP_BITS`] bits: code length (high byte, 0 if longer) and symbol.
    lookup: [u16; 1 << LOOKUP_BITS],
    /// Indexed like `lookup`: 0, or the value (bits 16..32, signed), the run (bits 4..8, AC
    /// tables) and the total bits of code and value (bits 0..4, at most [`LOOKUP_BITS`]). DC
    /// tables have entries for a size of 0 too (a difference of 0), AC tables do not (an end
    /// of block or a run of 16 zeros).
    pub fast: [i32; 1 << LOOKUP_BITS],
    /// Indexed like `lookup`, for AC tables, what a progressive AC scan looks up: 0 (the slow
    /// way), a coefficient as in `fast` with [`COEFFICIENT`] (and [`SIZE_ONE`] if its value is
    /// one bit, what a refinement scan codes), or an end-of-band run with [`END_OF_BAND`]: its
    /// length in blocks (bits 16..32) and the bits of code and run length (bits 0..4).
    pub progressive: [i32; 1 << LOOKUP_BITS],
    /// Indexed by the next [`SKIP_BITS`] bits, for AC tables: the whole AC codes those bits
    /// hold, with their values, walked over at once (the last value may run past the window):
    /// the bits they take (bits 0..6, at most 28: see [`BitReader::consume_low6`]), the
    /// coefficients they advance by (bits 6..14), and whether the last is the end of the block
    /// ([`SKIP_END`]). An entry with no whole code is [`SKIP_NONE`]. So `entry >> 6` is past 63
    /// for the end of a block and for no code at all.
    pub skip: [u16; 1 << SKIP_BITS],
    /// Indexed by the next [`PAIR_BITS`] bits, for AC tables: 0 (the slow way) or one or two
    /// codes with their values, what a baseline block's kept coefficients look up (see
    /// [`Pair`]).
    pub pairs: [u32; 1 << PAIR_BITS],
    /// Codes longer than [`LOOKUP_BITS`], a second lookup: for each first [`LOOKUP_BITS`] bits
    /// that start such codes, the index of its table in `long` (or `u16::MAX`); each table is
    /// indexed by the next [`LONG_BITS`] bits, entries as in `lookup` (length 0: no code).
    long_index: [u16; 1 << LOOKUP_BITS],
    long: Vec<u16>,
}

/// An entry of [`HuffmanTable::pairs`]: a coefficient (`run` zeros before it, then `value`)
/// or the end of the block, then possibly a second coefficient or the end of the block.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Pair {
    /// Bits of the codes and values, 1 to [`PAIR_BITS`].
    pub length: u32,
    pub run: u32,
    pub value: i32,
    /// A second coefficient: its run and value.
    pub second: Option<(u32, i32)>,
    /// The block ends after these (its end-of-block code was read).
    pub end: bool,
}

impl Pair {
    /// Bits of a second value, signed.
    const SECOND_VALUE_BITS: u32 = 6;

    /// The largest size of a first value: it has ten bits, signed.
    pub const FIRST_MAX_SIZE: u32 = 9;

    /// The coefficients a pair advances by, at most 31: the first run and coefficient, then
    /// the second's run and coefficient.
    fn advance(self) -> u32 {
        self.run + 1 + self.second.map_or(0, |(run, _)| run + 1)
    }

    /// Bits 0..6 the length (4 and 5 clear: see [`BitReader::consume_low6`]), 6..10 the first
    /// run, 10..15 the advance (the second coefficient, if any, is the last it covers), bit 15
    /// set for the end of the block, 16..22 the second value (0 without one) and 22..32 the
    /// first (both signed).
    fn pack(self) -> u32 {
        let (_, value2) = self.second.unwrap_or((0, 0));
        let value2 = (value2 as u32) & ((1 << Self::SECOND_VALUE_BITS) - 1);
        self.length
            | self.run << 6
            | self.advance() << 10
            | u32::from(self.end) << 15
            | value2 << 16
            | (self.value as u32) << 22
    }

    #[cfg(test)]
    pub fn unpack(entry: u32) -> Pair {
        let (run, advance) = ((entry >> 6) & 15, (entry >> 10) & 31);
        Pair {
            length: entry & 63,
            run,
            value: entry as i32 >> 22,
            second: (advance > run + 1).then(|| (advance - run - 2, (entry << 10) as i32 >> 26)),
            end: entry & (1 << 15) != 0,
        }
    }
}

/// The tables of a baseline scan's AC walk an AC table gets beyond the first lookup (building
/// them takes about as long as decoding a few thousand blocks; where they are missing, their
/// entries are 0 and decoding takes the slow way, with the same result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Walks {
    /// None: a progressive file's scans do not use them.
    None,
    /// [`HuffmanTable::skip`]: AC codes walked over, not kept (1/8).
    Skip,
    /// And [`HuffmanTable::pairs`]: the kept coefficients too (1/4, 1/2).
    SkipAndPairs,
}

/// Tables built lately, shared by the decodes that use them again: most encoders write the
/// example tables of the standard (its Annex K), and a file rendered at several sizes brings its
/// own each time. Building an AC table with its walks takes as long as decoding a few thousand
/// blocks, more than a tenth of the blocks of a 2560 x 1600 photo.
pub struct TableCache {
    /// Most recently used first.
    tables: Mutex<Vec<(TableKey, Arc<HuffmanTable>)>>,
    capacity: usize,
}

/// What a table is built from.
#[derive(PartialEq, Eq)]
struct TableKey {
    counts: [u8; 16],
    symbols: Vec<u8>,
    ac: bool,
    walks: Walks,
}

/// Tables kept by [`TableCache::shared`]: those of two colour files (four each), at about
/// 40 KiB a table (more with codes past [`LOOKUP_BITS`]: at most 1.3 MiB in all).
const CACHED_TABLES: usize = 8;

impl TableCache {
    pub const fn new(capacity: usize) -> TableCache {
        TableCache { tables: Mutex::new(Vec::new()), capacity }
    }

    /// The process's cache.
    pub fn shared() -> &'static TableCache {
        static SHARED: TableCache = TableCache::new(CACHED_TABLES);
        &SHARED
    }

    /// The table of [`HuffmanTable::new`], from the cache if one was built from the same counts
    /// and symbols with at least these walks (a DC table has none); `None` if the counts
    /// describe more codes than fit.
    pub fn table(&self, counts: &[u8; 16], symbols: &[u8], ac: bool, walks: Walks) -> Option<Arc<HuffmanTable>> {
        let walks = if ac { walks } else { Walks::None };
        let fits =
            |key: &TableKey| key.ac == ac && key.walks >= walks && key.counts == *counts && key.symbols == symbols;
        {
            let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = tables.iter().position(|(key, _)| fits(key)) {
                tables[..=at].rotate_right(1);
                return Some(Arc::clone(&tables[0].1));
            }
        }
        // Built outside the lock: a miss costs the other render threads nothing.
        let table = Arc::<HuffmanTable>::from(HuffmanTable::new(counts, symbols, ac, walks)?);
        let key = TableKey { counts: *counts, symbols: symbols.to_vec(), ac, walks };
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.insert(0, (key, Arc::clone(&table)));
        tables.truncate(self.capacity);
        Some(table)
    }
}

/// A [`HuffmanTable::skip`] entry that ends with the end of the block.
pub const SKIP_END: usize = 1 << 14;
/// A [`HuffmanTable::skip`] entry without a whole code: no bits, an advance of 255.
pub const SKIP_NONE: u32 = 0xFF << 6;

/// Flags of [`HuffmanTable::progressive`] entries.
pub const END_OF_BAND: i32 = 1 << 8;
pub const COEFFICIENT: i32 = 1 << 9;
pub const SIZE_ONE: i32 = 1 << 10;

/// Bits a code may have past the first lookup's.
const LONG_BITS: u32 = 16 - LOOKUP_BITS;

impl HuffmanTable {
    /// Builds a table from a DHT segment's 16 counts and its symbols; `None` if the counts
    /// describe more codes than fit. `ac` adds the tables that decode an AC code and its value
    /// at once, and `walks` those of a baseline scan's walk.
    pub fn new(counts: &[u8; 16], symbols: &[u8], ac: bool, walks: Walks) -> Option<Box<HuffmanTable>> {
        // One allocation, the arrays inside: a lookup then loads its table from the table's
        // address, not from a pointer in it.
        let mut table = Box::new(HuffmanTable {
            lookup: [0; 1 << LOOKUP_BITS],
            fast: [0; 1 << LOOKUP_BITS],
            progressive: [0; 1 << LOOKUP_BITS],
            skip: [SKIP_NONE as u16; 1 << SKIP_BITS],
            pairs: [0; 1 << PAIR_BITS],
            long_index: [u16::MAX; 1 << LOOKUP_BITS],
            long: Vec::new(),
        });
        let HuffmanTable { lookup, long_index, long, .. } = &mut *table;
        let mut code: u32 = 0;
        let mut index = 0usize;
        for length in 1..=16u32 {
            let n = u32::from(counts[length as usize - 1]);
            for _ in 0..n {
                let symbol = *symbols.get(index)?;
                if code >= (1 << length) {
                    return None;
                }
                let entry = (length as u16) << 8 | u16::from(symbol);
                if length <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - length;
                    let first = (code << shift) as usize;
                    lookup[first..first + (1 << shift)].fill(entry);
                } else {
                    let prefix = (code >> (length - LOOKUP_BITS)) as usize;
                    if long_index[prefix] == u16::MAX {
                        long_index[prefix] = (long.len() >> LONG_BITS) as u16;
                        long.resize(long.len() + (1 << LONG_BITS), 0);
                    }
                    let shift = 16 - length;
                    let first = (usize::from(long_index[prefix]) << LONG_BITS)
                        + (((code << shift) as usize) & ((1 << LONG_BITS) - 1));
                    long[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
        table.build_fast(ac);
        if ac && walks != Walks::None {
            table.build_skip();
        }
        if ac && walks == Walks::SkipAndPairs {
            table.build_pairs();
        }
        Some(table)
    }

    fn build_skip(&mut self) {
        for window in 0..(1u32 << SKIP_BITS) {
            let (mut used, mut advance, mut end_of_block) = (0u32, 0u32, false);
            loop {
                let left = SKIP_BITS - used;
                let (length, symbol) = self.code_in(window, SKIP_BITS, used);
                let (run, size) = (symbol >> 4, symbol & 15);
                if length == 0 || length > left {
                    break;
                }
                used += length + size;
                if size == 0 && run != 15 {
                    end_of_block = true;
                    break;
                }
                advance += if size == 0 { 16 } else { run + 1 };
                // A value that runs past the window is still in the reader's 32 bits (at most
                // 12 + 15 in all): it is walked over too, and ends the entry.
                if size > left - length {
                    break;
                }
            }
            // No whole code: an advance past any block's end, so that the walk's one test,
            // whether the block goes on, sends it the slow way.
            if used == 0 {
                advance = SKIP_NONE >> 6;
            }
            self.skip[window as usize] = (used | advance << 6 | u32::from(end_of_block) << 14) as u16;
        }
    }

    fn build_pairs(&mut self) {
        for window in 0..(1u32 << PAIR_BITS) {
            let value_at = |at: u32, size: u32| extend((window >> (PAIR_BITS - at - size)) & ((1 << size) - 1), size);
            let (length, symbol) = self.code_in(window, PAIR_BITS, 0);
            let (run, size) = (symbol >> 4, symbol & 15);
            if length == 0 || length + size > PAIR_BITS || (size == 0 && run == 15) || size > Pair::FIRST_MAX_SIZE {
                continue;
            }
            let first = if size == 0 {
                Pair { length, end: true, ..Pair::default() }
            } else {
                Pair { length: length + size, run, value: value_at(length, size), ..Pair::default() }
            };
            let mut pair = first;
            if !first.end {
                let (length, symbol) = self.code_in(window, PAIR_BITS, first.length);
                let (run, size) = (symbol >> 4, symbol & 15);
                let fits = length != 0 && first.length + length + size <= PAIR_BITS;
                if fits && size == 0 && run != 15 {
                    pair = Pair { length: first.length + length, end: true, ..first };
                } else if fits && size != 0 && size < Pair::SECOND_VALUE_BITS && first.run + run + 2 < 32 {
                    let second = value_at(first.length + length, size);
                    pair = Pair { length: first.length + length + size, second: Some((run, second)), ..first };
                }
            }
            self.pairs[window as usize] = pair.pack();
        }
    }

    /// The code at bit `at` of a `width`-bit window: its length and symbol, or a length of 0
    /// if it runs past the window. The bits past the window's end are read as zeros: a code no
    /// longer than what is left is read right whatever they are (codes are prefix-free).
    fn code_in(&self, window: u32, width: u32, at: u32) -> (u32, u32) {
        let left = width.saturating_sub(at);
        if left == 0 {
            return (0, 0);
        }
        let next16 = (window << (16 - left)) & 0xFFFF;
        let entry = self.lookup[(next16 >> (16 - LOOKUP_BITS)) as usize];
        let (length, symbol) = if entry >> 8 != 0 {
            (u32::from(entry >> 8), u32::from(entry & 0xFF))
        } else {
            self.decode_long(next16).map(|(length, symbol)| (length, u32::from(symbol))).unwrap_or((0, 0))
        };
        if length > left { (0, 0) } else { (length, symbol) }
    }

    fn build_fast(&mut self, ac: bool) {
        for prefix in 0..(1u32 << LOOKUP_BITS) {
            let entry = self.lookup[prefix as usize];
            let length = u32::from(entry >> 8);
            let symbol = u32::from(entry & 0xFF);
            let (run, size) = if ac { (symbol >> 4, symbol & 15) } else { (0, symbol) };
            if ac && size == 0 && run < 15 && length != 0 && length + run <= LOOKUP_BITS {
                // An end-of-band run of 2^run blocks and the next `run` bits.
                let extra = (prefix >> (LOOKUP_BITS - length - run)) & ((1 << run) - 1);
                let blocks = (1 << run) + extra;
                self.progressive[prefix as usize] = (blocks << 16) as i32 | END_OF_BAND | (length + run) as i32;
            }
            if length == 0 || (ac && size == 0) || length + size > LOOKUP_BITS {
                continue;
            }
            let raw = (prefix >> (LOOKUP_BITS - length - size)) & ((1 << size) - 1);
            let value = extend(raw, size);
            self.fast[prefix as usize] = (value << 16) | (run << 4) as i32 | (length + size) as i32;
            if ac {
                let one = if size == 1 { SIZE_ONE } else { 0 };
                self.progressive[prefix as usize] = self.fast[prefix as usize] | COEFFICIENT | one;
            }
        }
    }

    /// Decodes one symbol. The reader must hold at least 16 bits.
    #[inline(always)]
    pub fn decode(&self, reader: &mut BitReader) -> Result<u8, EntropyError> {
        let entry = self.lookup[reader.peek(LOOKUP_BITS) as usize];
        let length = u32::from(entry >> 8);
        if length != 0 {
            reader.consume(length);
            return Ok(entry as u8);
        }
        let (length, symbol) = self.decode_long(reader.peek(16))?;
        reader.consume(length);
        Ok(symbol)
    }

    /// A code longer than [`LOOKUP_BITS`], from the next 16 bits: its length and symbol.
    #[cold]
    #[inline(never)]
    fn decode_long(&self, bits: u32) -> Result<(u32, u8), EntropyError> {
        let table = usize::from(self.long_index[(bits >> LONG_BITS) as usize & ((1 << LOOKUP_BITS) - 1)]);
        let entry =
            self.long.get((table << LONG_BITS) + (bits as usize & ((1 << LONG_BITS) - 1))).copied().unwrap_or(0);
        match u32::from(entry >> 8) {
            0 => Err(EntropyError::BadCode),
            length => Ok((length, entry as u8)),
        }
    }
}

/// The value of `size` raw bits as JPEG codes it: the low half of the range is negative.
#[inline(always)]
pub fn extend(raw: u32, size: u32) -> i32 {
    // Without a branch: the sign is as good as random. `raw` is below 2^size (0 for size 0).
    let negative = -i32::from(raw << 1 < 1 << size);
    raw as i32 - (negative & ((1 << size) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_maps_the_low_half_of_each_size_to_negatives() {
        assert_eq!(extend(0, 1), -1);
        assert_eq!(extend(1, 1), 1);
        assert_eq!(extend(0b00, 2), -3);
        assert_eq!(extend(0b01, 2), -2);
        assert_eq!(extend(0b10, 2), 2);
        assert_eq!(extend(0b11, 2), 3);
        assert_eq!(extend(0, 11), -2047);
    }

    #[test]
    fn the_reader_unstuffs_and_stops_at_markers_with_zero_bits_it_reports() {
        let data = [0xAB, 0xFF, 0x00, 0x12, 0xFF, 0xFF, 0xD9, 0x34];
        let unstuffed = Unstuffed::new(&data, 0, 1);
        assert_eq!(unstuffed.end, 5);
        let mut reader = unstuffed.reader();
        assert_eq!(reader.bits(8), 0xAB);
        assert_eq!(reader.bits(8), 0xFF);
        assert_eq!(reader.bits(8), 0x12);
        assert!(!reader.overran());
        assert_eq!(reader.bits(8), 0);
        assert!(reader.overran());
    }

    #[test]
    fn a_restart_drops_the_partial_byte_and_skips_the_marker() {
        let mut data: Vec<u8> = (1..=20).collect();
        data.extend([0xFF, 0xD3, 0x77, 0xFF, 0xD4, 0x55, 0xFF, 0xD9]);
        // Two segments asked for: the second restart marker ends the data.
        let unstuffed = Unstuffed::new(&data, 0, 2);
        assert_eq!(unstuffed.end, 23);
        let mut reader = unstuffed.reader();
        assert_eq!(reader.bits(12), 0x010);
        let mut reader = reader.restart().expect("a restart");
        assert_eq!(reader.bits(8), 0x77);
        assert!(!reader.overran());
        assert_eq!(reader.bits(1), 0);
        assert_eq!(reader.restart().err(), Some(EntropyError::Truncated));
        assert_eq!(marker_position(&data, 0), 20);
        assert_eq!(Unstuffed::new(&data, 0, 3).end, data.len() - 2);
    }

    /// What one step of a reading does, for the comparison below.
    #[derive(Debug, Clone, Copy)]
    enum Read {
        Bits(u32),
        Peek(u32),
        Restart,
    }

    fn read_strategy() -> impl proptest::strategy::Strategy<Value = Read> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (1u32..=16).prop_map(Read::Bits),
            4 => (1u32..=12).prop_map(Read::Peek),
            1 => Just(Read::Restart),
        ]
    }

    /// Entropy-coded data as it comes: mostly plain bytes, with stuffed 0xFF, fill bytes,
    /// restart markers and other markers among them.
    fn data_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            16 => any::<u8>().prop_map(|b| vec![b]),
            3 => Just(vec![0xFF, 0x00]),
            1 => Just(vec![0xFF, 0xFF]),
            2 => (0xD0u8..=0xD7).prop_map(|m| vec![0xFF, m]),
            1 => prop_oneof![Just(0xD9u8), Just(0xC4), Just(0x01)].prop_map(|m| vec![0xFF, m]),
            1 => Just(vec![0xFF]),
        ];
        proptest::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
    }

    /// The data as the standard reads it, byte by byte: its segments (restart intervals) and
    /// where the first other marker starts.
    fn segments_by_the_book(data: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut segments = vec![Vec::new()];
        let mut at = 0;
        while at < data.len() {
            match (data[at], data.get(at + 1)) {
                (0xFF, Some(0x00)) => {
                    segments.last_mut().unwrap().push(0xFF);
                    at += 2;
                }
                (0xFF, Some(0xFF)) => at += 1,
                (0xFF, Some(0xD0..=0xD7)) => {
                    segments.push(Vec::new());
                    at += 2;
                }
                (0xFF, _) => return (segments, at),
                (byte, _) => {
                    segments.last_mut().unwrap().push(byte);
                    at += 1;
                }
            }
        }
        (segments, data.len())
    }

    proptest::proptest! {
        /// The reader reads as the standard does, bit for bit: the data of the segment it is
        /// in and then zeros, whether it read past the data, restarts, where the scan ends.
        #[test]
        fn the_reader_reads_the_data_as_the_standard_does(
            data in data_strategy(),
            reads in proptest::collection::vec(read_strategy(), 0..80),
        ) {
            let (segments, end) = segments_by_the_book(&data);
            let unstuffed = Unstuffed::new(&data, 0, usize::MAX);
            proptest::prop_assert_eq!(unstuffed.end, end);
            let mut reader = unstuffed.reader();
            // The model: a segment and a bit position in it.
            let (mut segment, mut at) = (0usize, 0usize);
            let bit = |segment: usize, at: usize| {
                segments.get(segment).and_then(|s| s.get(at / 8)).map_or(0, |byte| u32::from(byte >> (7 - at % 8)) & 1)
            };
            let number = |segment: usize, at: usize, n: u32| (0..n as usize).fold(0, |v, i| v << 1 | bit(segment, at + i));
            for read in reads {
                match read {
                    Read::Bits(n) => {
                        proptest::prop_assert_eq!(reader.bits(n), number(segment, at, n));
                        at += n as usize;
                    }
                    Read::Peek(n) => {
                        reader.ensure32();
                        proptest::prop_assert_eq!(reader.peek(n), number(segment, at, n));
                        reader.consume(n);
                        at += n as usize;
                    }
                    Read::Restart => {
                        let overran = at > segments.get(segment).map_or(0, Vec::len) * 8;
                        match reader.restart() {
                            Ok(next) if !overran => (reader, segment, at) = (next, segment + 1, 0),
                            Err(EntropyError::Truncated) if overran => break,
                            result => proptest::prop_assert!(false, "restart: {:?}, overran {overran}", result.err()),
                        }
                    }
                }
                let overran = at > segments.get(segment).map_or(0, Vec::len) * 8;
                proptest::prop_assert_eq!(reader.overran(), overran);
            }
        }
    }

    #[test]
    fn codes_of_every_length_decode_through_table_and_slow_path() {
        // One code of each length 1..=15 and two of length 16: a complete code.
        let mut counts = [1u8; 16];
        counts[15] = 2;
        let symbols: Vec<u8> = (0..17).collect();
        let table = HuffmanTable::new(&counts, &symbols, true, Walks::SkipAndPairs).expect("a valid table");
        // Canonical codes: length n is n-1 ones and a zero; the two of length 16 are all ones
        // but the last bit.
        for length in 1..=15u32 {
            let code = ((1u32 << (length - 1)) - 1) << 1;
            let mut bytes = Vec::new();
            for byte in (code << (32 - length)).to_be_bytes() {
                bytes.push(byte);
                // Byte stuffing: a 0xFF of data is followed by a zero.
                if byte == 0xFF {
                    bytes.push(0);
                }
            }
            let unstuffed = Unstuffed::new(&bytes, 0, 1);
            let mut reader = unstuffed.reader();
            reader.refill();
            assert_eq!(table.decode(&mut reader), Ok(length as u8 - 1), "length {length}");
        }
        let bytes = [0xFF, 0x00, 0xFE, 0, 0];
        let unstuffed = Unstuffed::new(&bytes, 0, 1);
        let mut reader = unstuffed.reader();
        reader.refill();
        assert_eq!(table.decode(&mut reader), Ok(15));
    }

    /// An AC table shaped like the standard luminance one (K.5): its counts, and every run and
    /// size of a baseline file's AC codes.
    /// Counts and symbols like the standard's luminance AC table: the same code lengths, the
    /// first symbols in its order.
    fn luminance_like_ac() -> ([u8; 16], Vec<u8>) {
        let counts = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
        let mut symbols = vec![0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51];
        for symbol in (0..16u8).flat_map(|run| (1..=10u8).map(move |size| run << 4 | size)).chain([0xF0]) {
            if !symbols.contains(&symbol) {
                symbols.push(symbol);
            }
        }
        assert_eq!(symbols.len(), 162);
        (counts, symbols)
    }

    fn luminance_like_ac_table() -> Box<HuffmanTable> {
        let (counts, symbols) = luminance_like_ac();
        HuffmanTable::new(&counts, &symbols, true, Walks::SkipAndPairs).expect("a valid table")
    }

    #[test]
    fn the_cache_shares_a_table_built_from_the_same_codes_with_the_walks_asked_for() {
        let cache = TableCache::new(2);
        let (counts, symbols) = luminance_like_ac();
        let skip = cache.table(&counts, &symbols, true, Walks::Skip).expect("a valid table");
        assert!(Arc::ptr_eq(&skip, &cache.table(&counts, &symbols, true, Walks::Skip).unwrap()));
        // Fewer walks than a cached table has: that table. More: a new one, with its pairs.
        assert!(Arc::ptr_eq(&skip, &cache.table(&counts, &symbols, true, Walks::None).unwrap()));
        let pairs = cache.table(&counts, &symbols, true, Walks::SkipAndPairs).unwrap();
        assert!(!Arc::ptr_eq(&skip, &pairs));
        assert_eq!(pairs.pairs, luminance_like_ac_table().pairs);
        assert_eq!(skip.skip, pairs.skip);
        // The same codes as a DC table, or other symbols: other tables.
        let dc = cache.table(&counts, &symbols, false, Walks::SkipAndPairs).unwrap();
        assert_ne!(dc.fast, pairs.fast);
        let mut swapped = symbols.clone();
        swapped.swap(0, 1);
        let other = cache.table(&counts, &swapped, true, Walks::SkipAndPairs).unwrap();
        assert_ne!(other.pairs, pairs.pairs);
        // Two tables kept, the most recently used: `pairs` and the first `skip` are gone.
        assert!(!Arc::ptr_eq(&pairs, &cache.table(&counts, &symbols, true, Walks::SkipAndPairs).unwrap()));
        assert!(Arc::ptr_eq(&other, &cache.table(&counts, &swapped, true, Walks::Skip).unwrap()));
        // Counts that describe too many codes are refused, and not kept.
        assert!(cache.table(&[3; 16], &[0; 48], true, Walks::Skip).is_none());
        assert_eq!(cache.tables.lock().unwrap().len(), 2);
    }

    /// Reads `window` (the first `PAIR_BITS` bits) followed by `filler` bits.
    fn reader_over(window: u32, filler: u32) -> (Vec<u8>, u32) {
        let word = window << (32 - PAIR_BITS) | filler >> PAIR_BITS;
        let mut bytes = Vec::new();
        for byte in word.to_be_bytes().into_iter().chain([0x5A, 0x5A]) {
            bytes.push(byte);
            if byte == 0xFF {
                bytes.push(0);
            }
        }
        (bytes, word)
    }

    /// An AC table whose shortest codes have the largest values: a value of six bits after a
    /// one-bit code, which a pair cannot hold second.
    fn large_values_ac_table() -> Box<HuffmanTable> {
        let mut counts = [1u8; 16];
        counts[15] = 2;
        let symbols =
            [0x06, 0x01, 0x00, 0x0A, 0x02, 0x11, 0x03, 0xF0, 0x21, 0x05, 0x04, 0x07, 0x31, 0x12, 0x08, 0x09, 0x0B];
        HuffmanTable::new(&counts, &symbols, true, Walks::SkipAndPairs).expect("a valid table")
    }

    #[test]
    fn pair_entries_decode_as_the_codes_one_at_a_time_whatever_follows_the_window() {
        check_pairs(&luminance_like_ac_table(), 3 * 4096 / 2);
        check_pairs(&large_values_ac_table(), 1);
    }

    /// Every entry of `table.pairs` against decoding its codes one at a time; at least
    /// `min_pairs` (window, filler) cases hold two coefficients.
    fn check_pairs(table: &HuffmanTable, min_pairs: usize) {
        let (mut pairs, mut ends) = (0, 0);
        for window in 0..(1u32 << PAIR_BITS) {
            let entry = table.pairs[window as usize];
            for filler in [0, u32::MAX, 0x5555_5555] {
                let (bytes, _) = reader_over(window, filler);
                let unstuffed = Unstuffed::new(&bytes, 0, 1);
                let mut reader = unstuffed.reader();
                reader.refill();
                let before = reader.count;
                // The all-ones code is not a code of such a table.
                let Ok(symbol) = table.decode(&mut reader) else {
                    assert_eq!(entry, 0, "window {window:012b}");
                    continue;
                };
                let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                let value = extend(reader.bits(size), size);
                let first_length = before - reader.count;
                if entry == 0 {
                    // Only what does not fit the window or the entry, or a run of 16 zeros, goes
                    // the slow way.
                    assert!(
                        first_length > PAIR_BITS || symbol == 0xF0 || size > Pair::FIRST_MAX_SIZE,
                        "window {window:012b}"
                    );
                    continue;
                }
                let pair = Pair::unpack(entry);
                if size == 0 {
                    assert_eq!(symbol, 0, "window {window:012b}");
                    assert_eq!(pair, Pair { length: first_length, end: true, ..Pair::default() });
                    continue;
                }
                assert_eq!((pair.run, pair.value), (run, value), "window {window:012b}");
                let mut length = first_length;
                if pair.second.is_some() || pair.end {
                    let symbol = table.decode(&mut reader).expect("a code inside the window");
                    let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                    let value = extend(reader.bits(size), size);
                    length = before - reader.count;
                    if pair.end {
                        assert_eq!((symbol, pair.second), (0, None), "window {window:012b}");
                        ends += 1;
                    } else {
                        assert_eq!(pair.second, Some((run, value)), "window {window:012b}");
                        pairs += 1;
                    }
                }
                assert_eq!(pair.length, length, "window {window:012b}");
                assert!(length <= PAIR_BITS);
            }
        }
        assert!(pairs >= min_pairs, "{pairs} pairs");
        assert!(ends > 0);
    }

    #[test]
    fn a_table_with_more_codes_than_fit_is_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(HuffmanTable::new(&counts, &[1, 2, 3], false, Walks::None).is_none());
    }
}
