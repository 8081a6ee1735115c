//! Field values straight into the record: scalars as they are, strings as bytes, and
//! `Debug`/`Display`/error values formatted in place, bounded by the record's space.

use core::fmt::Write;

use flightrec_format::record::{tag, Encoder};
use tracing_core::field::{Field, Visit};

use crate::shared::Shared;

pub(crate) struct FieldEncoder<'e, 'a> {
    pub(crate) enc: &'e mut Encoder<'a>,
    /// An event's callsite, whose message may be kept once instead of in every record;
    /// `None` for spans.
    pub(crate) message_of: Option<(u32, &'e Shared)>,
}

impl<'e, 'a> FieldEncoder<'e, 'a> {
    /// For a span's fields.
    pub(crate) fn new(enc: &'e mut Encoder<'a>) -> Self {
        FieldEncoder {
            enc,
            message_of: None,
        }
    }

    /// For an event's fields: its message may stand for the callsite's.
    pub(crate) fn event(enc: &'e mut Encoder<'a>, callsite: u32, shared: &'e Shared) -> Self {
        FieldEncoder {
            enc,
            message_of: Some((callsite, shared)),
        }
    }
}

impl Visit for FieldEncoder<'_, '_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.enc.field_i64(field.index(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.enc.field_u64(field.index(), value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.enc.field_i128(field.index(), value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.enc.field_u128(field.index(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.enc.field_f64(field.index(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.enc.field_bool(field.index(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.enc
            .field_bytes(field.index(), tag::STR, value.as_bytes());
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.enc.field_bytes(field.index(), tag::BYTES, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if let Some(mut w) = self.enc.begin_text(field.index(), tag::ERROR) {
            let _ = write!(w, "{value}");
            let mut source = value.source();
            while let Some(s) = source {
                let _ = write!(w, ": {s}");
                source = s.source();
            }
            w.end();
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
        if let Some((callsite, shared)) = self.message_of.filter(|_| is_message(field.name())) {
            if let Some(slot) = shared.callsites.message(callsite) {
                let known = slot.get().map(|t| &t[..]);
                let written = self.enc.field_message(field.index(), value, known);
                if let (Some(text), None) = (written, known) {
                    shared.callsites.keep_message(callsite, text, &shared.ring);
                }
                return;
            }
        }
        if let Some(mut w) = self.enc.begin_text(field.index(), tag::DEBUG) {
            let _ = write!(w, "{value:?}");
            w.end();
        }
    }
}

/// `name == "message"`, as two four-byte compares rather than a call to `memcmp`: asked of
/// every `Debug` field of every event.
#[inline(always)]
fn is_message(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 7 && b[..4] == *b"mess" && b[3..] == *b"sage"
}
