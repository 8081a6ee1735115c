//! Encoding a record in place: the writer's side of the record format (see the module
//! above), bounds-checked, never allocating, never calling `memmove` for short values.

use super::{
    tag, varint_len, zigzag, RecordKind, FLAG_TRUNCATED, MAX_VALUE_LEN, MAX_VARINT,
    RECORD_HEADER_MAX,
};

/// Where a record is written: the free tail of a chunk, with what its time is stored
/// against.
pub struct Tail<'a> {
    pub buf: &'a mut [u8],
    /// The chunk's claim time (its header's `CLAIM_TICKS`): a record stores its time as
    /// the difference from it.
    pub base_ticks: u64,
    /// Text values may be cut to fit: the tail is a whole empty chunk, so retrying
    /// elsewhere cannot help.
    pub truncate_to_fit: bool,
}

/// Writes one record into a caller-provided buffer (the free tail of a chunk).
///
/// Every write is bounds-checked against the buffer; when something does not fit the
/// encoder remembers it (`overflowed`) instead of failing at once, so callers can encode a
/// whole record with straight-line code and decide afterwards.
pub struct Encoder<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflowed: bool,
    truncated: bool,
    /// When set, text values are cut to fit the buffer rather than overflowing it.
    truncate_to_fit: bool,
}

impl<'a> Encoder<'a> {
    /// Starts a record of `kind` at the start of `tail`, written at `ticks`.
    #[inline]
    pub fn new(tail: Tail<'a>, kind: RecordKind, callsite: u32, ticks: u64) -> Encoder<'a> {
        let mut e = Encoder {
            buf: tail.buf,
            pos: 0,
            overflowed: false,
            truncated: false,
            truncate_to_fit: tail.truncate_to_fit,
        };
        if e.buf.len() < RECORD_HEADER_MAX {
            e.overflowed = true;
            return e;
        }
        e.buf[2] = kind as u8;
        e.pos = 3;
        // Room for the longest header is checked above: no check a varint.
        e.put_varint_in_room(u64::from(callsite));
        e.put_varint_in_room(zigzag(ticks.wrapping_sub(tail.base_ticks) as i64));
        e
    }

    /// Writes `v` as a varint where nine bytes of room are known to be left.
    #[inline(always)]
    fn put_varint_in_room(&mut self, v: u64) {
        self.pos += store_varint(&mut self.buf[self.pos..], v);
    }

    /// Writes `v` as a varint (see the module above: its length in unary in the first
    /// byte's low bits, then the value).
    #[inline(always)]
    pub fn varint(&mut self, v: u64) {
        if self.overflowed {
            return;
        }
        let room = self.buf.len() - self.pos;
        if room >= MAX_VARINT {
            self.put_varint_in_room(v);
            return;
        }
        // Near the end of the chunk: through a scratch buffer, as much as it takes.
        let mut scratch = [0u8; MAX_VARINT];
        let n = store_varint(&mut scratch, v);
        if room < n {
            self.overflowed = true;
            return;
        }
        self.buf[self.pos..self.pos + n].copy_from_slice(&scratch[..n]);
        self.pos += n;
    }

    /// Writes a span id, or a `PARENT_*`: plus one, so `PARENT_ROOT` takes one byte.
    #[inline(always)]
    pub fn id(&mut self, v: u64) {
        self.varint(v.wrapping_add(1));
    }

    /// Writes a value of a size known at compile time: a fixed-size store, never a call to
    /// `memmove`.
    #[inline(always)]
    fn put_fixed<const N: usize>(&mut self, v: [u8; N]) {
        if self.overflowed {
            return;
        }
        match self.buf.get_mut(self.pos..self.pos + N) {
            Some(dst) => {
                dst.copy_from_slice(&v);
                self.pos += N;
            }
            None => self.overflowed = true,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> bool {
        if self.overflowed {
            return false;
        }
        match self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dst) => {
                copy_short(dst, bytes);
                self.pos += bytes.len();
                true
            }
            None => {
                self.overflowed = true;
                false
            }
        }
    }

    /// Writes a field's head where its room is known to be left: one byte for the first
    /// fifteen indexes (`index << 4 | tag`), two for the rest.
    #[inline(always)]
    fn put_head_in_room(&mut self, index: usize, tag: u8) {
        if index < usize::from(tag::WIDE_INDEX) {
            self.buf[self.pos] = (index as u8) << 4 | tag;
            self.pos += 1;
        } else {
            self.buf[self.pos] = tag::WIDE_INDEX << 4 | tag;
            self.buf[self.pos + 1] = index as u8;
            self.pos += 2;
        }
    }

    /// Writes a field's head when the head and `value_len` bytes fit; otherwise marks the
    /// record (see below) and returns false.
    fn field_head(&mut self, index: usize, tag: u8, value_len: usize) -> bool {
        if self.overflowed {
            return false;
        }
        if index > u8::MAX as usize {
            self.truncated = true;
            return false;
        }
        if self.buf.len().saturating_sub(self.pos) < head_len(index) + value_len {
            // Fixed-size values are never cut; the record is marked and the field left out
            // when retrying elsewhere cannot help.
            if self.truncate_to_fit {
                self.truncated = true;
            } else {
                self.overflowed = true;
            }
            return false;
        }
        self.put_head_in_room(index, tag);
        true
    }

    /// Writes a fixed-size field: head and value, with one bounds check on the common
    /// path.
    #[inline(always)]
    fn fixed<const N: usize>(&mut self, index: usize, tag: u8, v: [u8; N]) {
        if index < usize::from(tag::WIDE_INDEX) && !self.overflowed {
            if let Some(dst) = self.buf.get_mut(self.pos..self.pos + 1 + N) {
                dst[0] = (index as u8) << 4 | tag;
                dst[1..].copy_from_slice(&v);
                self.pos += 1 + N;
                return;
            }
        }
        if self.field_head(index, tag, N) {
            self.put(&v);
        }
    }

    /// Writes a varint field: head and value, with one bounds check on the common path.
    #[inline(always)]
    fn varint_field(&mut self, index: usize, tag: u8, v: u64) {
        if index < usize::from(tag::WIDE_INDEX)
            && !self.overflowed
            && self.buf.len() - self.pos > MAX_VARINT
        {
            self.buf[self.pos] = (index as u8) << 4 | tag;
            self.pos += 1;
            self.put_varint_in_room(v);
            return;
        }
        if self.field_head(index, tag, varint_len(v)) {
            self.varint(v);
        }
    }

    #[inline]
    pub fn field_i64(&mut self, index: usize, v: i64) {
        self.varint_field(index, tag::I64, zigzag(v));
    }
    #[inline]
    pub fn field_u64(&mut self, index: usize, v: u64) {
        self.varint_field(index, tag::U64, v);
    }
    #[inline]
    pub fn field_i128(&mut self, index: usize, v: i128) {
        self.fixed(index, tag::I128, v.to_le_bytes());
    }
    #[inline]
    pub fn field_u128(&mut self, index: usize, v: u128) {
        self.fixed(index, tag::U128, v.to_le_bytes());
    }
    #[inline]
    pub fn field_f64(&mut self, index: usize, v: f64) {
        self.fixed(index, tag::F64, v.to_bits().to_le_bytes());
    }
    #[inline]
    pub fn field_bool(&mut self, index: usize, v: bool) {
        self.fixed(index, tag::BOOL, [v as u8]);
    }

    /// Writes a sized text or byte value, cut at `MAX_VALUE_LEN` (and, when truncating to
    /// fit, at the space left).
    #[inline]
    pub fn field_bytes(&mut self, index: usize, tag: u8, v: &[u8]) {
        // The common case, a short value of one of the first fifteen fields with room to
        // spare: a one-byte head, a one-byte size, the bytes, one bounds check.
        let n = v.len();
        if index < usize::from(tag::WIDE_INDEX) && n < 64 && !self.overflowed {
            if let Some(dst) = self.buf.get_mut(self.pos..self.pos + 2 + n) {
                dst[0] = (index as u8) << 4 | tag;
                // A one-byte varint of the size `n << 1` (not cut): `size << 1 | 1`.
                dst[1] = (n as u8) << 2 | 1;
                copy_short(&mut dst[2..], v);
                self.pos += 2 + n;
                return;
            }
        }
        self.field_bytes_slow(index, tag, v);
    }

    #[inline(never)]
    fn field_bytes_slow(&mut self, index: usize, tag: u8, v: &[u8]) {
        let mut len = v.len().min(MAX_VALUE_LEN);
        // Room for the head and the longest size this value can have (two bytes).
        let room = self
            .buf
            .len()
            .saturating_sub(self.pos + head_len(index) + TEXT_SIZE_MAX);
        if len > room && self.truncate_to_fit {
            len = room;
        }
        if tag == tag::STR || tag == tag::DEBUG {
            len = utf8_floor(v, len);
        }
        let cut = len < v.len();
        let size = (len as u64) << 1 | u64::from(cut);
        if self.field_head(index, tag, varint_len(size) + len) {
            self.truncated |= cut;
            self.varint(size);
            self.put(&v[..len]);
        }
    }

    /// Starts a text value written piecewise (Debug/Display output); finish with
    /// `TextWriter::end`. Its size takes two bytes, written once the length is known.
    #[inline]
    pub fn begin_text(&mut self, index: usize, tag: u8) -> Option<TextWriter<'_, 'a>> {
        if !self.field_head(index, tag, TEXT_SIZE_MAX) {
            return None;
        }
        let size_pos = self.pos;
        self.put_fixed([0; TEXT_SIZE_MAX]);
        let room = self.buf.len().saturating_sub(self.pos);
        let limit = if self.truncate_to_fit {
            room.min(MAX_VALUE_LEN)
        } else {
            MAX_VALUE_LEN
        };
        Some(TextWriter {
            enc: self,
            size_pos,
            written: 0,
            limit,
            cut: false,
        })
    }

    /// Writes an event's message, formatted in place. When its text is `known` (the
    /// callsite's message, which the meta log holds), the field is taken back and a
    /// `tag::MESSAGE` head alone stands for it. Returns the text when it was written whole
    /// and is not `known`: the caller may make it the callsite's message.
    pub fn field_message(
        &mut self,
        index: usize,
        value: &dyn core::fmt::Debug,
        known: Option<&[u8]>,
    ) -> Option<&[u8]> {
        let start = self.pos;
        let mut w = self.begin_text(index, tag::DEBUG)?;
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!("{value:?}"));
        let (text_at, cut) = (w.size_pos + TEXT_SIZE_MAX, w.cut);
        w.end();
        if self.overflowed || cut {
            return None;
        }
        if known.is_some_and(|k| same_bytes(k, &self.buf[text_at..self.pos])) {
            // The head was written at `start` already: its room is there.
            self.pos = start;
            self.put_head_in_room(index, tag::MESSAGE);
            return None;
        }
        Some(&self.buf[text_at..self.pos])
    }

    /// Finishes the record: writes its length and flags. Returns the record's length, or
    /// `None` when it did not fit in the buffer.
    #[inline]
    pub fn finish(self) -> Option<usize> {
        if self.overflowed || self.pos > u16::MAX as usize {
            return None;
        }
        self.buf[0..2].copy_from_slice(&(self.pos as u16).to_le_bytes());
        if self.truncated {
            self.buf[2] |= FLAG_TRUNCATED << 4;
        }
        Some(self.pos)
    }

    /// Whether something did not fit.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

/// The bytes a field's head takes.
#[inline(always)]
fn head_len(index: usize) -> usize {
    if index < usize::from(tag::WIDE_INDEX) {
        1
    } else {
        2
    }
}

/// The longest size a text can have, as a varint: `MAX_VALUE_LEN << 1 | 1` takes two bytes.
const TEXT_SIZE_MAX: usize = 2;
const _: () = assert!(MAX_VALUE_LEN << 1 < 1 << 14);

/// Stores `v` as a varint at the start of `dst`, which has nine bytes at least, and returns
/// its length: one eight-byte store and the bytes the value takes kept, no branch a byte.
#[inline(always)]
pub(crate) fn store_varint(dst: &mut [u8], v: u64) -> usize {
    let n = varint_len(v);
    if n <= 8 {
        let word = (v << n) | (1 << (n - 1));
        dst[..8].copy_from_slice(&word.to_le_bytes());
    } else {
        dst[0] = 0;
        dst[1..9].copy_from_slice(&v.to_le_bytes());
    }
    n
}

/// `dst.copy_from_slice(src)` for slices of equal length, without a call to `memmove` for
/// the short ones a record mostly holds (messages, names, ids): two overlapping fixed-size
/// copies cover any length between a size and twice it, and fixed-size copies compile to
/// plain loads and stores.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert_eq!(dst.len(), n);
    if n > 32 || dst.len() != n {
        dst.copy_from_slice(src);
    } else if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// `a == b` without a call to `memcmp` for the short texts a message mostly is: as
/// `copy_short`, two overlapping fixed-size loads a side cover any length between a size
/// and twice it.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
        s[at..at + N].try_into().unwrap()
    }
    if n > 32 {
        a == b
    } else if n >= 16 {
        word::<16>(a, 0) == word::<16>(b, 0) && word::<16>(a, n - 16) == word::<16>(b, n - 16)
    } else if n >= 8 {
        word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8)
    } else if n >= 4 {
        word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// Largest `n <= len` such that `v[..n]` does not split a UTF-8 sequence.
fn utf8_floor(v: &[u8], len: usize) -> usize {
    let mut n = len;
    while n > 0 && n < v.len() && (v[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    n
}

/// A `fmt::Write` sink for one text field, writing straight into the record: Debug and
/// Display values are formatted in place, bounded, never through a heap buffer.
pub struct TextWriter<'e, 'a> {
    enc: &'e mut Encoder<'a>,
    /// Where the text's two-byte size goes.
    size_pos: usize,
    written: usize,
    limit: usize,
    cut: bool,
}

impl TextWriter<'_, '_> {
    /// Writes the text's size: its length and whether it was cut short, as a two-byte
    /// varint (whatever the length, so the text never moves).
    #[inline]
    pub fn end(self) {
        if self.enc.overflowed {
            return;
        }
        let size = (self.written as u16) << 1 | u16::from(self.cut);
        let two_byte_varint = size << 2 | 0b10;
        self.enc.buf[self.size_pos..self.size_pos + TEXT_SIZE_MAX]
            .copy_from_slice(&two_byte_varint.to_le_bytes());
        self.enc.truncated |= self.cut;
    }
}

impl core::fmt::Write for TextWriter<'_, '_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.cut || self.enc.overflowed {
            return Ok(());
        }
        let room = self.limit - self.written;
        let mut n = s.len();
        if n > room {
            n = utf8_floor(s.as_bytes(), room);
            self.cut = true;
        }
        let pos = self.enc.pos;
        match self.enc.buf.get_mut(pos..pos + n) {
            Some(dst) => {
                copy_short(dst, &s.as_bytes()[..n]);
                self.enc.pos += n;
                self.written += n;
            }
            None => self.enc.overflowed = true,
        }
        // Never report an error: a formatting error would make `Debug` impls panic in
        // `to_string`-style callers, and truncation is not an error for us.
        Ok(())
    }
}
