//! The triggers a dump holds: its own (the header's trigger block, the earliest), and those
//! that arrived while it was being copied and folded into it (each a `trigger folded`
//! event, naming the trigger's thread and time).

use flightrec_format::{Record, RecordKind, Value, TRIGGER_FOLDED};

use crate::Names;

/// A trigger folded into a dump whose own trigger came first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedTrigger {
    /// When the trigger struck, ns since the Unix epoch.
    pub ts: i64,
    /// The OS thread id whose trigger it was (0 when unknown).
    pub tid: u64,
    /// `panic`, `signal`, `stall`, ...
    pub reason: String,
    /// The trigger in words, as `Trigger::describe` gives it.
    pub description: String,
}

/// The trigger `r` records as folded into the dump, if it is such a record.
pub fn folded_trigger(names: &Names<'_>, r: &Record) -> Option<FoldedTrigger> {
    if r.kind != RecordKind::Event {
        return None;
    }
    let cs = names.callsite(r.callsite)?;
    if cs.target != "flightrec" || cs.name != TRIGGER_FOLDED {
        return None;
    }
    let field = |name: &str| {
        r.fields
            .iter()
            .find(|f| names.field_name(r.callsite, f.index) == name)
            .map(|f| f.value)
    };
    let text = |name: &str| match field(name) {
        Some(Value::Str(s)) => s.to_string(),
        Some(v) => v.to_text(),
        None => String::new(),
    };
    Some(FoldedTrigger {
        ts: match field("at") {
            Some(Value::I64(t)) if t > 0 => t,
            _ => r.ts,
        },
        tid: match field("tid") {
            Some(Value::U64(t)) => t,
            _ => 0,
        },
        reason: text("reason"),
        description: text("trigger"),
    })
}
