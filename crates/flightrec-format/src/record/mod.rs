//! Records: what a chunk's payload is made of, how a writer encodes one in place and how a
//! reader parses one without trusting it.
//!
//! ```text
//! record  = len:u16 kind_flags:u8 callsite:varint dticks:zigzag body
//! body    = Event:       parent:id field*
//!           SpanNew:     span:id parent:id field*
//!           SpanRecord:  span:id field*
//!           Enter/Exit/Close: span:id
//!           FollowsFrom: span:id follows:id
//!           Context:     depth:varint (span:id callsite:varint)*   -- first record of a chunk
//! field   = head value
//! head    = index:4 tag:4 (one byte, index in the high half) when index < 15;
//!           0xF tag:4 then index:u8 otherwise
//! value   = i64: zigzag; u64: varint; f64: 8 bytes; i128|u128: 16; bool: 1;
//!           str|debug|error|bytes: size:varint bytes   -- size = length << 1 | cut short
//!           message: nothing -- the callsite's message, stored once in the meta log
//! id      = varint of the span id (or `PARENT_*`) plus one, wrapping: `PARENT_ROOT` is 0
//! ```
//!
//! `len` counts the whole record. `kind_flags` holds the kind in its low four bits and the
//! flags in its high four. A varint is a prefix varint: its length `n` in unary in the low
//! bits of its first byte (`n - 1` zeros, then a one), the value in the 7n bits above, little
//! endian, for values under 2^56; a zero byte then eight bytes for the rest. A writer encodes
//! one with an eight-byte store, with no branch a byte as LEB128 needs. A zigzag is a varint
//! of a signed value folded so small magnitudes stay small.
//! `dticks` is the record's time less its chunk's claim time (the chunk header's
//! `CLAIM_TICKS`): a record is read on its own, given its chunk, and a time a few
//! milliseconds into a chunk takes three or four bytes, not eight. Field indexes are
//! positions in the callsite's field list, so names are stored once, in the meta log, and
//! never per record. (Format version 1 stored the header's fields, ids and integers at
//! fixed sizes: 16 bytes of header, 8 a span id, 10 an integer field.)
//!
//! A field head takes one byte for the first fifteen fields of a callsite, and a text's
//! size one byte below 64 bytes (a text formatted piece by piece keeps two, written when
//! its length is known). An event's message that is the same text as the first message
//! its callsite wrote is a `message` head alone: the writer put that text in the meta log
//! once (`meta::KIND_MESSAGE`), and a reader puts it back (see `RawRecord::message`). Most
//! messages are literals, and were the largest part of an event. (Format version 2 gave a
//! field head two bytes and a text two bytes of length, and stored every message whole.)

use crate::layout::get_u16;

mod encode;
mod fields;

/// The shortest record: its length, kind and a one-byte callsite and time.
pub const RECORD_HEADER_MIN: usize = 5;
/// The longest header: length, kind, a five-byte callsite and a nine-byte time. A writer
/// starts a record only where this much room is left.
pub const RECORD_HEADER_MAX: usize = 17;
/// The longest varint.
pub const MAX_VARINT: usize = 9;

/// `v` folded so that values near zero, either side, have small varints.
#[inline(always)]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline(always)]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The bytes `v` takes as a varint: one for every seven bits up to 56, then nine.
#[inline(always)]
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    if bits > 56 {
        9
    } else {
        bits.div_ceil(7)
    }
}

/// The varint at the start of `b` and the bytes it takes; `None` when `b` ends inside it.
/// `n - 1` zero bits then a one in the first byte's low bits give its length `n` (up to 8
/// bytes, holding 7n bits); a zero first byte is followed by eight bytes.
#[inline(always)]
pub(crate) fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    // Most varints are read from a record with eight bytes after them: one load, no copy.
    if let Some(word) = b.get(..8) {
        let word = u64::from_le_bytes(word.try_into().ok()?);
        let n = (word as u8).trailing_zeros() as usize + 1;
        if n < 8 {
            return Some(((word & ((1 << (8 * n)) - 1)) >> n, n));
        }
        if n == 8 {
            return Some((word >> 8, 8));
        }
    }
    let first = *b.first()?;
    if first == 0 {
        let word = b.get(1..9)?;
        return Some((u64::from_le_bytes(word.try_into().ok()?), 9));
    }
    let n = first.trailing_zeros() as usize + 1;
    let mut word = [0u8; 8];
    word[..n].copy_from_slice(b.get(..n)?);
    Some((u64::from_le_bytes(word) >> n, n))
}

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    Event = 1,
    SpanNew = 2,
    SpanRecord = 3,
    Enter = 4,
    Exit = 5,
    Close = 6,
    FollowsFrom = 7,
    /// Written first in every chunk: the owning thread's entered spans at that moment, so a
    /// chunk can be read without its thread's older (perhaps overwritten) chunks.
    Context = 8,
}

impl RecordKind {
    pub fn from_u8(v: u8) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Event,
            2 => RecordKind::SpanNew,
            3 => RecordKind::SpanRecord,
            4 => RecordKind::Enter,
            5 => RecordKind::Exit,
            6 => RecordKind::Close,
            7 => RecordKind::FollowsFrom,
            8 => RecordKind::Context,
            _ => return None,
        })
    }

    /// The name used in `cat --json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Event => "event",
            RecordKind::SpanNew => "span_new",
            RecordKind::SpanRecord => "span_record",
            RecordKind::Enter => "enter",
            RecordKind::Exit => "exit",
            RecordKind::Close => "close",
            RecordKind::FollowsFrom => "follows_from",
            RecordKind::Context => "context",
        }
    }
}

/// Record flag: a field value was cut short, or fields were left out, to fit the chunk.
pub const FLAG_TRUNCATED: u8 = 1;

/// `parent` of an event or span: the thread's current span at that moment.
pub const PARENT_CONTEXTUAL: u64 = 0;
/// `parent` of an event or span: explicitly a root (`parent: None`).
pub const PARENT_ROOT: u64 = u64::MAX;

/// Value type tags.
pub mod tag {
    pub const I64: u8 = 1;
    pub const U64: u8 = 2;
    pub const I128: u8 = 3;
    pub const U128: u8 = 4;
    pub const F64: u8 = 5;
    pub const BOOL: u8 = 6;
    pub const STR: u8 = 7;
    pub const DEBUG: u8 = 8;
    pub const ERROR: u8 = 9;
    pub const BYTES: u8 = 10;
    /// An event's message that is its callsite's message, kept in the meta log: no value.
    pub const MESSAGE: u8 = 11;
    /// The high half of a one-byte head that says the index follows in a byte of its own.
    pub const WIDE_INDEX: u8 = 0xF;
}

/// Longest text (str, Debug, error chain, bytes) stored for one field value; longer values
/// are truncated and flagged, so one huge value cannot evict a thread's history.
pub const MAX_VALUE_LEN: usize = 1024;

pub(crate) use encode::store_varint;
pub use encode::{Encoder, Tail, TextWriter};
pub use fields::{Fields, FieldsIter};

/// A decoded field value.
///
/// 24 bytes, so a [`FieldValue`] is 32: readers hold many at once (a span's merged fields,
/// a table's column). Hence boxed text (a `String`'s capacity would be a third word) and
/// [`Wide`] integers (`i128`'s 16-byte alignment would pad every value to 32 bytes). A
/// record keeps its values encoded ([`Fields`]) and makes these as they are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    I64(i64),
    U64(u64),
    I128(Wide<i128>),
    U128(Wide<u128>),
    F64(f64),
    Bool(bool),
    Str(Box<str>),
    Debug(Box<str>),
    Error(Box<str>),
    Bytes(Box<[u8]>),
}

/// A 128-bit integer kept at 8-byte alignment (see [`Value`]); [`Wide::get`] reads it.
#[derive(Clone, Copy)]
#[repr(C, packed(8))]
pub struct Wide<T: Copy>(pub T);

impl<T: Copy> Wide<T> {
    pub fn get(self) -> T {
        self.0
    }
}

impl<T: Copy + PartialEq> PartialEq for Wide<T> {
    fn eq(&self, other: &Wide<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for Wide<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl<T: Copy + std::fmt::Display> std::fmt::Display for Wide<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl Value {
    /// The value as plain text: numbers in decimal, strings without quotes, bytes in hex.
    pub fn to_text(&self) -> String {
        match self {
            Value::I64(x) => x.to_string(),
            Value::U64(x) => x.to_string(),
            Value::I128(x) => x.to_string(),
            Value::U128(x) => x.to_string(),
            Value::F64(x) => x.to_string(),
            Value::Bool(x) => x.to_string(),
            Value::Str(s) | Value::Debug(s) | Value::Error(s) => s.to_string(),
            Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        }
    }

    /// The name of the value's type, as the viewer and exports show it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::I64(_) => "i64",
            Value::U64(_) => "u64",
            Value::I128(_) => "i128",
            Value::U128(_) => "u128",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::Str(_) => "str",
            Value::Debug(_) => "debug",
            Value::Error(_) => "error",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// One field of a decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue {
    /// Position in the callsite's field list.
    pub index: u8,
    pub value: Value,
    /// The stored value was cut short.
    pub truncated: bool,
}

/// A record parsed from a chunk, before times and names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub kind: RecordKind,
    pub flags: u8,
    pub callsite: u32,
    pub ticks: u64,
    /// Span the record is about (span records), 0 otherwise.
    pub span: u64,
    /// Parent (events, new spans), `follows` span (follows_from); see `PARENT_*`.
    pub other: u64,
    pub fields: Vec<FieldValue>,
    /// An event whose message is its callsite's message (`tag::MESSAGE`): the field's
    /// index, and its position in `fields`, where an empty text holds the place of the
    /// callsite's message until a reader puts it there.
    pub message: Option<(u8, u16)>,
    /// Where the field values start in the record's bytes (its length if it has none): a
    /// reader keeps them as they are ([`Fields::from_ring`]).
    pub fields_at: usize,
    /// `Context` records only: the entered spans, outermost first, with their callsites.
    pub context: Vec<(u64, u32)>,
}

/// Why a record could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Too short for its header or its declared length runs past the committed bytes.
    BadLength,
    UnknownKind(u8),
    /// The body does not parse as its kind says.
    BadBody,
}

/// Parses the record at the start of `b`, a chunk's payload from that record on, in a
/// chunk claimed at `base_ticks` (its header's `CLAIM_TICKS`). Returns it and its length.
pub fn parse_record(b: &[u8], base_ticks: u64) -> Result<(RawRecord, usize), RecordError> {
    parse(b, base_ticks, true)
}

/// `parse_record` without the field values: the record is checked just as fully (it fails
/// exactly where `parse_record` does), but `fields` is left empty and nothing is allocated
/// for them. For passes that only measure and index (a scan walks every record of a
/// recording before anything is shown).
pub fn parse_record_head(b: &[u8], base_ticks: u64) -> Result<(RawRecord, usize), RecordError> {
    parse(b, base_ticks, false)
}

fn parse(b: &[u8], base_ticks: u64, keep_fields: bool) -> Result<(RawRecord, usize), RecordError> {
    let len = get_u16(b, 0).ok_or(RecordError::BadLength)? as usize;
    if len < RECORD_HEADER_MIN || len > b.len() {
        return Err(RecordError::BadLength);
    }
    let kind = RecordKind::from_u8(b[2] & 0x0F).ok_or(RecordError::UnknownKind(b[2] & 0x0F))?;
    let mut p = Parser {
        b: &b[3..len],
        pos: 0,
    };
    let callsite = u32::try_from(p.varint()?).map_err(|_| RecordError::BadBody)?;
    let ticks = base_ticks.wrapping_add(unzigzag(p.varint()?) as u64);
    let mut r = RawRecord {
        kind,
        flags: b[2] >> 4,
        callsite,
        ticks,
        span: 0,
        other: 0,
        fields: Vec::new(),
        message: None,
        fields_at: len,
        context: Vec::new(),
    };
    match kind {
        RecordKind::Event => {
            r.other = p.id()?;
            r.fields_at = 3 + p.pos;
            r.fields = p.fields(keep_fields, Some(&mut r.message))?;
        }
        RecordKind::SpanNew => {
            r.span = p.id()?;
            r.other = p.id()?;
            r.fields_at = 3 + p.pos;
            r.fields = p.fields(keep_fields, None)?;
        }
        RecordKind::SpanRecord => {
            r.span = p.id()?;
            r.fields_at = 3 + p.pos;
            r.fields = p.fields(keep_fields, None)?;
        }
        RecordKind::Enter | RecordKind::Exit | RecordKind::Close => {
            r.span = p.id()?;
        }
        RecordKind::FollowsFrom => {
            r.span = p.id()?;
            r.other = p.id()?;
        }
        RecordKind::Context => {
            let depth = u16::try_from(p.varint()?).map_err(|_| RecordError::BadBody)? as usize;
            // Each entry takes two bytes at least; refuse a depth the body cannot hold
            // before allocating.
            if depth * 2 > p.b.len() - p.pos {
                return Err(RecordError::BadBody);
            }
            r.context.reserve_exact(depth);
            for _ in 0..depth {
                let span = p.id()?;
                let callsite = u32::try_from(p.varint()?).map_err(|_| RecordError::BadBody)?;
                r.context.push((span, callsite));
            }
        }
    }
    if p.pos != p.b.len() {
        return Err(RecordError::BadBody);
    }
    Ok((r, len))
}

struct Parser<'b> {
    b: &'b [u8],
    pos: usize,
}

impl<'b> Parser<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], RecordError> {
        let s = self
            .b
            .get(self.pos..self.pos.checked_add(n).ok_or(RecordError::BadBody)?)
            .ok_or(RecordError::BadBody)?;
        self.pos += n;
        Ok(s)
    }
    /// A varint (see [`read_varint`]).
    fn varint(&mut self) -> Result<u64, RecordError> {
        let rest = self.b.get(self.pos..).ok_or(RecordError::BadBody)?;
        let (v, n) = read_varint(rest).ok_or(RecordError::BadBody)?;
        self.pos += n;
        Ok(v)
    }
    /// A span id or `PARENT_*`, stored plus one.
    fn id(&mut self) -> Result<u64, RecordError> {
        Ok(self.varint()?.wrapping_sub(1))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u128(&mut self) -> Result<u128, RecordError> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().unwrap()))
    }
    /// A text's bytes and whether it was cut short.
    fn text(&mut self) -> Result<(&'b [u8], bool), RecordError> {
        let size = self.varint()?;
        let n = usize::try_from(size >> 1).map_err(|_| RecordError::BadBody)?;
        Ok((self.take(n)?, size & 1 != 0))
    }

    /// The field values to the end of the body; with `keep` false, only checked (the same
    /// checks) and none returned. `message` is where an event notes its callsite's message
    /// (`tag::MESSAGE`); other records have none.
    fn fields(
        &mut self,
        keep: bool,
        mut message: Option<&mut Option<(u8, u16)>>,
    ) -> Result<Vec<FieldValue>, RecordError> {
        let mut out = Vec::new();
        // Fields read so far, kept or not: a message's position means the same either way.
        let mut seen: u16 = 0;
        while self.pos < self.b.len() {
            let (index, t) = self.head()?;
            // At most one field a byte of a record under 64 KiB: never wraps.
            seen = seen.wrapping_add(1);
            if t == tag::MESSAGE {
                // One message a record, and only where a message can be. Its place is held
                // by an empty text, which the reader fills: the fields are never moved.
                match message.as_deref_mut() {
                    Some(m @ None) => *m = Some((index, seen - 1)),
                    _ => return Err(RecordError::BadBody),
                }
                if keep {
                    out.push(FieldValue {
                        index,
                        value: Value::Debug(Box::default()),
                        truncated: false,
                    });
                }
                continue;
            }
            if !keep {
                match t {
                    tag::I64 | tag::U64 => {
                        self.varint()?;
                    }
                    tag::F64 => {
                        self.take(8)?;
                    }
                    tag::I128 | tag::U128 => {
                        self.take(16)?;
                    }
                    tag::BOOL if self.take(1)?[0] <= 1 => {}
                    tag::STR | tag::DEBUG | tag::ERROR | tag::BYTES => {
                        self.text()?;
                    }
                    _ => return Err(RecordError::BadBody),
                }
                continue;
            }
            let (value, truncated) = self.value(t)?;
            out.push(FieldValue {
                index,
                value,
                truncated,
            });
        }
        // A record's fields are kept as long as the recording is open, millions of them:
        // not the spare room growing left (a one-field record would hold four).
        out.shrink_to_fit();
        Ok(out)
    }

    /// A field's head: its index and tag.
    fn head(&mut self) -> Result<(u8, u8), RecordError> {
        let head = self.take(1)?[0];
        let index = match head >> 4 {
            tag::WIDE_INDEX => self.take(1)?[0],
            i => i,
        };
        Ok((index, head & 0x0F))
    }

    /// A value of tag `t` (not `tag::MESSAGE`), and whether it was cut short.
    fn value(&mut self, t: u8) -> Result<(Value, bool), RecordError> {
        let mut truncated = false;
        let mut text = |p: &mut Self| -> Result<&'b [u8], RecordError> {
            let (b, cut) = p.text()?;
            truncated = cut;
            Ok(b)
        };
        let value = match t {
            tag::I64 => Value::I64(unzigzag(self.varint()?)),
            tag::U64 => Value::U64(self.varint()?),
            tag::I128 => Value::I128(Wide(self.u128()? as i128)),
            tag::U128 => Value::U128(Wide(self.u128()?)),
            tag::F64 => Value::F64(f64::from_bits(self.u64()?)),
            tag::BOOL => match self.take(1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(RecordError::BadBody),
            },
            tag::STR => Value::Str(String::from_utf8_lossy(text(self)?).into()),
            tag::DEBUG => Value::Debug(String::from_utf8_lossy(text(self)?).into()),
            tag::ERROR => Value::Error(String::from_utf8_lossy(text(self)?).into()),
            tag::BYTES => Value::Bytes(text(self)?.into()),
            _ => return Err(RecordError::BadBody),
        };
        Ok((value, truncated))
    }
}

#[cfg(test)]
mod tests;
