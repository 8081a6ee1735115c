//! A record as readers hold it: resolved times, parents and span stacks, made small
//! (a reader holds millions).

use std::num::NonZeroU64;

use crate::record::{Fields, RecordKind};

/// A resolved record.
///
/// 64 bytes: a reader holds millions of them, so the parent and the `follows_from` span
/// share one word (no record has both), and the span stack is one pointer wide.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// Index of the writing thread (see `Recording::threads`).
    pub thread: u32,
    pub kind: RecordKind,
    pub callsite: u32,
    /// The span this record is about, for span records; 0 otherwise.
    pub span: u64,
    /// The other span the record names: the parent of an event or new span, resolved
    /// against the thread's entered spans, or the span a `follows_from` record links to.
    /// Read it through [`Record::parent`] and [`Record::follows`]. (Span ids are never 0,
    /// as in `tracing`: the `Option` costs no room beside the id.)
    pub link: Option<NonZeroU64>,
    /// Its field values, kept encoded as the ring held them (a few bytes each, where
    /// decoded values took 32 and an allocation each): read them with `fields.iter()`.
    pub fields: Fields,
    pub truncated: bool,
    /// Spans entered on the writing thread at that moment, outermost first.
    pub spans: SpanStack,
}

impl Record {
    /// The parent of an event or a new span (`None`: a root, or another kind of record).
    pub fn parent(&self) -> Option<NonZeroU64> {
        match self.kind {
            RecordKind::Event | RecordKind::SpanNew => self.link,
            _ => None,
        }
    }

    /// The span a `follows_from` record links to.
    pub fn follows(&self) -> Option<NonZeroU64> {
        match self.kind {
            RecordKind::FollowsFrom => self.link,
            _ => None,
        }
    }
}

/// The spans entered on a thread, outermost first, shared by every record written under
/// them: one pointer wide (a slice's `Arc` is two) and one allocation (its counts and its
/// ids together), since millions of records carry one and a busy recording makes one for
/// each request.
#[derive(Clone)]
pub struct SpanStack(triomphe::ThinArc<(), u64>);

impl SpanStack {
    /// `a` and `b` are one shared stack, not two equal ones.
    pub fn ptr_eq(a: &SpanStack, b: &SpanStack) -> bool {
        std::ptr::eq(&*a.0, &*b.0)
    }
}

impl Default for SpanStack {
    fn default() -> SpanStack {
        SpanStack::from(&[][..])
    }
}

impl std::ops::Deref for SpanStack {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        &self.0.slice
    }
}

impl PartialEq for SpanStack {
    fn eq(&self, other: &SpanStack) -> bool {
        **self == **other
    }
}

impl Eq for SpanStack {}

impl std::fmt::Debug for SpanStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<&[u64]> for SpanStack {
    fn from(spans: &[u64]) -> SpanStack {
        SpanStack(triomphe::ThinArc::from_header_and_slice((), spans))
    }
}

impl From<Vec<u64>> for SpanStack {
    fn from(spans: Vec<u64>) -> SpanStack {
        SpanStack::from(&spans[..])
    }
}

impl<const N: usize> From<[u64; N]> for SpanStack {
    fn from(spans: [u64; N]) -> SpanStack {
        SpanStack::from(&spans[..])
    }
}

impl FromIterator<u64> for SpanStack {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> SpanStack {
        SpanStack::from(iter.into_iter().collect::<Vec<u64>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader holds millions of records: each byte here is megabytes there.
    #[test]
    fn a_record_is_64_bytes_and_its_stack_one_pointer() {
        assert_eq!(std::mem::size_of::<Record>(), 64);
        assert_eq!(std::mem::size_of::<SpanStack>(), 8);
    }

    /// A clone is the same stack; an equal stack made apart is equal, not the same.
    #[test]
    fn a_shared_stack_is_told_from_an_equal_one() {
        let a = SpanStack::from([1, 2, 3]);
        let b = a.clone();
        let c: SpanStack = [1u64, 2, 3].into_iter().collect();
        assert!(SpanStack::ptr_eq(&a, &b));
        assert!(!SpanStack::ptr_eq(&a, &c));
        assert_eq!(a, c);
        assert_eq!(&c[..], &[1, 2, 3]);
        assert!(SpanStack::default().is_empty());
        assert!(!SpanStack::ptr_eq(
            &SpanStack::default(),
            &SpanStack::default()
        ));
    }

    /// The one link word reads as a parent on events and new spans, as the followed span
    /// on a `follows_from` record, and as neither on any other kind.
    #[test]
    fn the_link_reads_as_parent_or_follows_by_kind() {
        let link = NonZeroU64::new(7);
        let record = |kind| Record {
            ts: 0,
            thread: 0,
            kind,
            callsite: 1,
            span: 3,
            link,
            fields: Fields::default(),
            truncated: false,
            spans: SpanStack::from([3]),
        };
        use RecordKind::*;
        for kind in [Event, SpanNew, FollowsFrom, Enter, Exit, Close, SpanRecord] {
            let r = record(kind);
            let (parent, follows) = match kind {
                Event | SpanNew => (link, None),
                FollowsFrom => (None, link),
                _ => (None, None),
            };
            assert_eq!((r.parent(), r.follows()), (parent, follows), "{kind:?}");
        }
    }
}
