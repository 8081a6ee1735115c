//! A record's field values as readers hold them: in the ring's own encoding (a byte or two
//! of head, then a varint or a sized text), decoded each time they are read.
//!
//! A reader holds millions of records. Decoded, an event's three fields were a 96-byte
//! allocation and a string each; encoded they are about a dozen bytes. Reading them again
//! costs what decoding them once did, and most are read once (the analysis's pass) or never.

use super::{tag, varint_len, zigzag, FieldValue, Parser, Value, MAX_VARINT};

/// A record's field values, in the ring's encoding (without `tag::MESSAGE`: a kept message
/// is written out as the text it stands for). Read them with [`Fields::iter`].
#[derive(Clone, Default)]
pub struct Fields(Box<[u8]>);

/// Equal values, however they were encoded (a text formatted in place by the writer has a
/// two-byte size whatever its length; one made here, the shortest).
impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.0 == other.0 || self.iter().eq(other.iter())
    }
}

impl Fields {
    /// The fields of a record as a chunk holds them (`bytes`, from its `fields_at` on).
    /// `message`, for an event whose message is its callsite's (`tag::MESSAGE`): the text,
    /// or `None` when the meta log lost it (an empty text, marked cut short). `bytes` were
    /// checked by the parser already; a field that does not parse ends the list.
    pub fn from_ring(bytes: &[u8], message: Option<Option<&str>>) -> Fields {
        let Some(text) = message else {
            return Fields(bytes.into());
        };
        // Exactly what the text adds (its head replaces the mark's, byte for byte): the
        // boxed slice is then made without a reallocation.
        let n = text.map_or(0, str::len);
        let mut out = Vec::with_capacity(bytes.len() + varint_len((n as u64) << 1 | 1) + n);
        let mut p = Parser { b: bytes, pos: 0 };
        while p.pos < bytes.len() {
            let start = p.pos;
            let Ok((index, t)) = p.head() else { break };
            if t == tag::MESSAGE {
                let (text, cut) = match text {
                    Some(text) => (text.as_bytes(), false),
                    None => (&[][..], true),
                };
                push_head(&mut out, index, tag::DEBUG);
                push_text(&mut out, text, cut);
                continue;
            }
            if p.value(t).is_err() {
                break;
            }
            out.extend_from_slice(&bytes[start..p.pos]);
        }
        Fields(out.into_boxed_slice())
    }

    /// The values, in the order they were recorded.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            p: Parser { b: &self.0, pos: 0 },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many values there are (a walk over them).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The value at position `k` (not the field index: see [`FieldValue::index`]).
    pub fn get(&self, k: usize) -> Option<FieldValue> {
        self.iter().nth(k)
    }

    /// The value of the field at index `index` of its callsite's field list.
    pub fn by_index(&self, index: u8) -> Option<FieldValue> {
        self.iter().find(|f| f.index == index)
    }

    pub fn to_vec(&self) -> Vec<FieldValue> {
        self.iter().collect()
    }

    /// The bytes they take.
    pub fn encoded_len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Values encoded as a chunk would hold them. A `truncated` mark is kept on text and bytes
/// (the encoding has room for it there, and only there: numbers are never cut).
impl<'v> FromIterator<&'v FieldValue> for Fields {
    fn from_iter<I: IntoIterator<Item = &'v FieldValue>>(values: I) -> Fields {
        let mut out = Vec::new();
        for f in values {
            push_value(&mut out, f);
        }
        Fields(out.into_boxed_slice())
    }
}

impl FromIterator<FieldValue> for Fields {
    fn from_iter<I: IntoIterator<Item = FieldValue>>(values: I) -> Fields {
        values.into_iter().collect::<Vec<_>>().iter().collect()
    }
}

impl From<Vec<FieldValue>> for Fields {
    fn from(values: Vec<FieldValue>) -> Fields {
        values.iter().collect()
    }
}

impl From<&[FieldValue]> for Fields {
    fn from(values: &[FieldValue]) -> Fields {
        values.iter().collect()
    }
}

impl<const N: usize> From<[FieldValue; N]> for Fields {
    fn from(values: [FieldValue; N]) -> Fields {
        values.iter().collect()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = FieldValue;
    type IntoIter = FieldsIter<'a>;

    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

/// The values of a [`Fields`], decoded one by one.
pub struct FieldsIter<'a> {
    p: Parser<'a>,
}

impl Iterator for FieldsIter<'_> {
    type Item = FieldValue;

    fn next(&mut self) -> Option<FieldValue> {
        if self.p.pos >= self.p.b.len() {
            return None;
        }
        let parsed = self.p.head().and_then(|(index, t)| {
            let (value, truncated) = self.p.value(t)?;
            Ok(FieldValue {
                index,
                value,
                truncated,
            })
        });
        match parsed {
            Ok(f) => Some(f),
            Err(_) => {
                // Checked when the record was parsed: cannot happen, ends the list if it does.
                self.p.pos = self.p.b.len();
                None
            }
        }
    }
}

fn push_head(out: &mut Vec<u8>, index: u8, t: u8) {
    if index < tag::WIDE_INDEX {
        out.push(index << 4 | t);
    } else {
        out.push(tag::WIDE_INDEX << 4 | t);
        out.push(index);
    }
}

/// A varint as the ring writes it: its length in unary in the first byte's low bits, then
/// the value; a zero byte and eight bytes for the longest.
fn push_varint(out: &mut Vec<u8>, v: u64) {
    let n = varint_len(v);
    if n < MAX_VARINT {
        let word = (v << n) | (1 << (n - 1));
        out.extend_from_slice(&word.to_le_bytes()[..n]);
    } else {
        out.push(0);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn push_text(out: &mut Vec<u8>, text: &[u8], cut: bool) {
    push_varint(out, (text.len() as u64) << 1 | u64::from(cut));
    out.extend_from_slice(text);
}

fn push_value(out: &mut Vec<u8>, f: &FieldValue) {
    let text = |out: &mut Vec<u8>, t: u8, b: &[u8]| {
        push_head(out, f.index, t);
        push_text(out, b, f.truncated);
    };
    match &f.value {
        Value::I64(x) => {
            push_head(out, f.index, tag::I64);
            push_varint(out, zigzag(*x));
        }
        Value::U64(x) => {
            push_head(out, f.index, tag::U64);
            push_varint(out, *x);
        }
        Value::I128(x) => {
            push_head(out, f.index, tag::I128);
            out.extend_from_slice(&x.get().to_le_bytes());
        }
        Value::U128(x) => {
            push_head(out, f.index, tag::U128);
            out.extend_from_slice(&x.get().to_le_bytes());
        }
        Value::F64(x) => {
            push_head(out, f.index, tag::F64);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Bool(x) => {
            push_head(out, f.index, tag::BOOL);
            out.push(u8::from(*x));
        }
        Value::Str(s) => text(out, tag::STR, s.as_bytes()),
        Value::Debug(s) => text(out, tag::DEBUG, s.as_bytes()),
        Value::Error(s) => text(out, tag::ERROR, s.as_bytes()),
        Value::Bytes(b) => text(out, tag::BYTES, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Wide;

    fn field(index: u8, value: Value, truncated: bool) -> FieldValue {
        FieldValue {
            index,
            value,
            truncated,
        }
    }

    /// Every kind of value, narrow and wide indexes, long and cut texts, read back as
    /// they were made.
    #[test]
    fn values_read_back_as_they_were_made() {
        let values = vec![
            field(0, Value::I64(-5), false),
            field(1, Value::I64(i64::MIN), false),
            field(2, Value::U64(u64::MAX), false),
            field(3, Value::U64(300), false),
            field(4, Value::I128(Wide(-1 << 100)), false),
            field(5, Value::U128(Wide(1 << 120)), false),
            field(6, Value::F64(2.5), false),
            field(7, Value::Bool(true), false),
            field(8, Value::Str("order".into()), false),
            field(9, Value::Debug("x".repeat(1000).into()), true),
            field(14, Value::Error("refused".into()), false),
            field(15, Value::Bytes(vec![0, 255, 7].into()), false),
            field(200, Value::Str("".into()), false),
        ];
        let fields = Fields::from(values.clone());
        assert_eq!(fields.to_vec(), values);
        assert_eq!(fields.len(), values.len());
        assert_eq!(fields.get(8), Some(values[8].clone()));
        assert_eq!(fields.by_index(200), Some(values[12].clone()));
        assert_eq!(fields.by_index(10), None);
        assert!(Fields::default().is_empty());
        // The same text with a two-byte size, as the writer formats one in place.
        let mut wide = Vec::new();
        push_head(&mut wide, 0, tag::DEBUG);
        wide.extend_from_slice(&((5u16 << 1) << 2 | 0b10).to_le_bytes());
        wide.extend_from_slice(b"hello");
        let short = Fields::from(vec![field(0, Value::Debug("hello".into()), false)]);
        assert_ne!(short.encoded_len(), wide.len());
        assert_eq!(Fields::from_ring(&wide, None), short);
        assert_eq!(Fields::default().iter().count(), 0);
    }

    /// A kept message is written out as its text, in its place, and a lost one as an empty
    /// text cut short; the fields around it are kept as the ring holds them.
    #[test]
    fn a_kept_message_reads_as_its_text_in_its_place() {
        let mut ring = Vec::new();
        push_value(&mut ring, &field(1, Value::U64(64), false));
        push_head(&mut ring, 0, tag::MESSAGE);
        push_value(&mut ring, &field(2, Value::Str("a".into()), false));
        let kept = Fields::from_ring(&ring, Some(Some("handled")));
        assert_eq!(
            kept.to_vec(),
            vec![
                field(1, Value::U64(64), false),
                field(0, Value::Debug("handled".into()), false),
                field(2, Value::Str("a".into()), false),
            ]
        );
        let lost = Fields::from_ring(&ring, Some(None));
        assert_eq!(lost.get(1), Some(field(0, Value::Debug("".into()), true)));
        let plain = Fields::from_ring(&ring[..ring.len() - 3], None);
        assert_eq!(plain.encoded_len(), ring.len() - 3);
    }

    /// An event's two integers and a message take a dozen bytes or so, not a 96-byte
    /// allocation and a string.
    #[test]
    fn a_typical_event_takes_a_few_bytes() {
        let fields = Fields::from(vec![
            field(0, Value::Debug("handled".into()), false),
            field(1, Value::U64(17), false),
            field(2, Value::U64(300_000), false),
        ]);
        assert!(fields.encoded_len() <= 16, "{}", fields.encoded_len());
        assert_eq!(std::mem::size_of::<Fields>(), 16);
    }
}
