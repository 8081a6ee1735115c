//! Field values straight into the record: scalars as they are, strings as bytes, and
//! `Debug`/`Display`/error values formatted in place, bounded by the record's space.

use core::fmt::Write;

use flightrec_format::record::{tag, Encoder};
use tracing_core::field::{Field, Visit};

pub(crate) struct FieldEncoder<'e, 'a> {
    pub(crate) enc: &'e mut Encoder<'a>,
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
        if let Some(mut w) = self.enc.begin_text(field.index(), tag::DEBUG) {
            let _ = write!(w, "{value:?}");
            w.end();
        }
    }
}
