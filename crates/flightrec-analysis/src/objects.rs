//! Objects: a field value followed across records, threads and (later) processes.
//!
//! A record *carries* an object when one of its fields has the object's field name and its
//! value, as text. Consecutive carriers on different threads are a *hand-over*: the object
//! passed from one thread to another.

use flightrec_format::Record;

use crate::Names;

/// A field name and a value, as the user picked them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub field: String,
    pub value: String,
}

impl ObjectKey {
    pub fn new(field: impl Into<String>, value: impl Into<String>) -> ObjectKey {
        ObjectKey {
            field: field.into(),
            value: value.into(),
        }
    }

    /// Whether `r` carries this object.
    pub fn carried_by(&self, names: &Names<'_>, r: &Record) -> bool {
        r.fields.iter().any(|f| {
            names.field_name(r.callsite, f.index) == self.field.as_str()
                && f.value.to_text() == self.value
        })
    }
}

/// Follows an object's carriers in stream order, telling hand-overs.
#[derive(Debug, Default)]
pub struct Trail {
    last_thread: Option<u32>,
    /// Carriers so far.
    pub carriers: usize,
    /// Hand-overs so far.
    pub handovers: usize,
}

impl Trail {
    /// The next carrier is on `thread`: returns the thread it was handed over from, if any.
    pub fn step(&mut self, thread: u32) -> Option<u32> {
        self.carriers += 1;
        let from = self.last_thread.filter(|&p| p != thread);
        self.handovers += from.is_some() as usize;
        self.last_thread = Some(thread);
        from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_over_is_a_change_of_thread_between_consecutive_carriers() {
        let mut t = Trail::default();
        let froms: Vec<_> = [1, 1, 2, 2, 1, 3].iter().map(|&th| t.step(th)).collect();
        assert_eq!(froms, vec![None, None, Some(1), None, Some(2), Some(1)]);
        assert_eq!((t.carriers, t.handovers), (6, 3));
    }
}
