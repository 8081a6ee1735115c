//! Records: what a chunk's payload is made of, how a writer encodes one in place and how a
//! reader parses one without trusting it.
//!
//! ```text
//! record  = len:u16 kind:u8 flags:u8 callsite:u32 ticks:u64 body
//! body    = Event:       parent:u64 field*
//!           SpanNew:     span:u64 parent:u64 field*
//!           SpanRecord:  span:u64 field*
//!           Enter/Exit/Close: span:u64
//!           FollowsFrom: span:u64 follows:u64
//!           Context:     depth:u16 (span:u64 callsite:u32)*   -- first record of a chunk
//! field   = index:u8 tag:u8 value
//! value   = i64|u64|f64: 8 bytes; i128|u128: 16; bool: 1; str|debug|error|bytes: len:u16 bytes
//! ```
//!
//! `len` counts the whole record. Field indexes are positions in the callsite's field list,
//! so names are stored once, in the meta log, and never per record.

use crate::layout::{get_u16, get_u32, get_u64};

mod encode;

pub const RECORD_HEADER_SIZE: usize = 16;

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
    /// Or'ed into a tag when the value was cut short.
    pub const TRUNCATED: u8 = 0x80;
}

/// Longest text (str, Debug, error chain, bytes) stored for one field value; longer values
/// are truncated and flagged, so one huge value cannot evict a thread's history.
pub const MAX_VALUE_LEN: usize = 1024;

pub use encode::{Encoder, TextWriter};

/// A decoded field value.
///
/// 24 bytes, so a [`FieldValue`] is 32: a recording holds millions of them. Hence boxed
/// text (a `String`'s capacity would be a third word) and [`Wide`] integers (`i128`'s
/// 16-byte alignment would pad every value to 32 bytes).
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

/// Parses the record at the start of `b`. Returns it and its length.
pub fn parse_record(b: &[u8]) -> Result<(RawRecord, usize), RecordError> {
    parse(b, true)
}

/// `parse_record` without the field values: the record is checked just as fully (it fails
/// exactly where `parse_record` does), but `fields` is left empty and nothing is allocated
/// for them. For passes that only measure and index (a scan walks every record of a
/// recording before anything is shown).
pub fn parse_record_head(b: &[u8]) -> Result<(RawRecord, usize), RecordError> {
    parse(b, false)
}

fn parse(b: &[u8], keep_fields: bool) -> Result<(RawRecord, usize), RecordError> {
    let len = get_u16(b, 0).ok_or(RecordError::BadLength)? as usize;
    if len < RECORD_HEADER_SIZE || len > b.len() {
        return Err(RecordError::BadLength);
    }
    let kind = RecordKind::from_u8(b[2]).ok_or(RecordError::UnknownKind(b[2]))?;
    let mut r = RawRecord {
        kind,
        flags: b[3],
        callsite: get_u32(b, 4).ok_or(RecordError::BadLength)?,
        ticks: get_u64(b, 8).ok_or(RecordError::BadLength)?,
        span: 0,
        other: 0,
        fields: Vec::new(),
        context: Vec::new(),
    };
    let body = &b[RECORD_HEADER_SIZE..len];
    let mut p = Parser { b: body, pos: 0 };
    match kind {
        RecordKind::Event => {
            r.other = p.u64()?;
            r.fields = p.fields(keep_fields)?;
        }
        RecordKind::SpanNew => {
            r.span = p.u64()?;
            r.other = p.u64()?;
            r.fields = p.fields(keep_fields)?;
        }
        RecordKind::SpanRecord => {
            r.span = p.u64()?;
            r.fields = p.fields(keep_fields)?;
        }
        RecordKind::Enter | RecordKind::Exit | RecordKind::Close => {
            r.span = p.u64()?;
        }
        RecordKind::FollowsFrom => {
            r.span = p.u64()?;
            r.other = p.u64()?;
        }
        RecordKind::Context => {
            let depth = p.u16()? as usize;
            // Each entry is 12 bytes; refuse a depth the body cannot hold before allocating.
            if depth * 12 > body.len() {
                return Err(RecordError::BadBody);
            }
            r.context.reserve_exact(depth);
            for _ in 0..depth {
                let span = p.u64()?;
                let callsite = p.u32()?;
                r.context.push((span, callsite));
            }
        }
    }
    if p.pos != body.len() {
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
    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u128(&mut self) -> Result<u128, RecordError> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().unwrap()))
    }
    fn text(&mut self) -> Result<&'b [u8], RecordError> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// The field values to the end of the body; with `keep` false, only checked (the same
    /// checks) and none returned.
    fn fields(&mut self, keep: bool) -> Result<Vec<FieldValue>, RecordError> {
        let mut out = Vec::new();
        while self.pos < self.b.len() {
            let head = self.take(2)?;
            let (index, t) = (head[0], head[1]);
            let truncated = t & tag::TRUNCATED != 0;
            if !keep {
                match t & !tag::TRUNCATED {
                    tag::I64 | tag::U64 | tag::F64 => {
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
            let value = match t & !tag::TRUNCATED {
                tag::I64 => Value::I64(self.u64()? as i64),
                tag::U64 => Value::U64(self.u64()?),
                tag::I128 => Value::I128(Wide(self.u128()? as i128)),
                tag::U128 => Value::U128(Wide(self.u128()?)),
                tag::F64 => Value::F64(f64::from_bits(self.u64()?)),
                tag::BOOL => match self.take(1)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    _ => return Err(RecordError::BadBody),
                },
                tag::STR => Value::Str(String::from_utf8_lossy(self.text()?).into()),
                tag::DEBUG => Value::Debug(String::from_utf8_lossy(self.text()?).into()),
                tag::ERROR => Value::Error(String::from_utf8_lossy(self.text()?).into()),
                tag::BYTES => Value::Bytes(self.text()?.into()),
                _ => return Err(RecordError::BadBody),
            };
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
}

#[cfg(test)]
mod tests;
