//! The `tracing` layer: turns events and span lifecycle callbacks into records in the
//! calling thread's chunk.

mod visit;

use std::sync::Arc;

use flightrec_format::record::{Encoder, RecordKind, PARENT_CONTEXTUAL, PARENT_ROOT};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::ring::clock;
use crate::ring::span_table::{SpanEntry, SpanTable};
use crate::ring::writer::{with_writer, EnteredBy, ThreadWriter};
use crate::shared::Shared;
use visit::FieldEncoder;

/// The layer that records into a `Recorder`'s ring. Get one from `Recorder::layer`.
#[derive(Clone)]
pub struct FlightrecLayer {
    pub(crate) shared: Arc<Shared>,
    /// Our id and callsite of each live span, by tracing `Id`: what enter and exit need,
    /// without the registry's lock or an allocation. One per subscriber the layer joins
    /// (`on_layer` makes it), since each registry numbers its spans from 1.
    spans: Arc<SpanTable>,
}

/// Slots in a layer's span table: room for about 20 000 live spans before some go to the
/// registry's extensions instead.
const SPAN_TABLE_SLOTS: usize = 1 << 15;

impl FlightrecLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> FlightrecLayer {
        FlightrecLayer {
            shared,
            spans: Arc::new(SpanTable::new(SPAN_TABLE_SLOTS)),
        }
    }
}

/// Our id and callsite for a tracing span, kept in the span's extensions. tracing reuses
/// span `Id`s; these ids are unique within the recording.
#[derive(Clone, Copy, Debug)]
struct RecordedSpan {
    id: u64,
    callsite: u32,
}

impl FlightrecLayer {
    /// Our id and callsite for a live span: from the span table, or from the registry's
    /// extensions for a span the table had no room for.
    #[inline]
    fn recorded<S>(&self, ctx: &Context<'_, S>, id: &Id) -> Option<RecordedSpan>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(e) = self.spans.get(id.into_u64()) {
            return Some(RecordedSpan {
                id: e.id,
                callsite: e.callsite,
            });
        }
        Self::recorded_in_extensions(ctx, id)
    }

    /// Who enters the span `id` through this layer (see `EnteredBy`).
    #[inline]
    fn entered_by(&self, id: &Id) -> EnteredBy {
        EnteredBy {
            key: id.into_u64(),
            table: Arc::as_ptr(&self.spans) as usize,
        }
    }

    #[cold]
    fn recorded_in_extensions<S>(ctx: &Context<'_, S>, id: &Id) -> Option<RecordedSpan>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        ctx.span(id)?.extensions().get::<RecordedSpan>().copied()
    }

    fn parent_of<S>(&self, ctx: &Context<'_, S>, contextual: bool, explicit: Option<&Id>) -> u64
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if contextual {
            return PARENT_CONTEXTUAL;
        }
        explicit
            .and_then(|p| self.recorded(ctx, p))
            .map_or(PARENT_ROOT, |s| s.id)
    }
}

/// Writes a record that is only a span id (enter, exit, close), then runs `after` on the
/// writer (to push or pop the span on the thread's context).
pub(crate) fn span_op(
    shared: &Shared,
    kind: RecordKind,
    span: u64,
    callsite: u32,
    after: impl FnOnce(&mut ThreadWriter),
) {
    let ticks = clock::ticks();
    with_writer(&shared.ring, |w| {
        w.write(|tail| {
            let mut e = Encoder::new(tail, kind, callsite, ticks);
            e.id(span);
            e.finish()
        });
        after(w);
    });
}

impl<S> Layer<S> for FlightrecLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let callsite = self
            .shared
            .callsites
            .id(event.metadata(), &self.shared.ring);
        let parent = self.parent_of(&ctx, event.is_contextual(), event.parent());
        let ticks = clock::ticks();
        with_writer(&self.shared.ring, |w| {
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::Event, callsite, ticks);
                e.id(parent);
                event.record(&mut FieldEncoder::event(&mut e, callsite, &self.shared));
                e.finish()
            })
        });
    }

    fn on_layer(&mut self, _subscriber: &mut S) {
        // A table of its own for this subscriber's span ids, even for a clone of a layer
        // that already joined another.
        self.spans = Arc::new(SpanTable::new(SPAN_TABLE_SLOTS));
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let callsite = self
            .shared
            .callsites
            .id(attrs.metadata(), &self.shared.ring);
        let parent = self.parent_of(&ctx, attrs.is_contextual(), attrs.parent());
        let ticks = clock::ticks();
        let ours = with_writer(&self.shared.ring, |w| {
            let span = w.next_span_id();
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::SpanNew, callsite, ticks);
                e.id(span);
                e.id(parent);
                attrs.record(&mut FieldEncoder::new(&mut e));
                e.finish()
            });
            span
        });
        if let Some(span) = ours {
            let entry = SpanEntry { id: span, callsite };
            // The registry's extensions (a lock and an allocation) only when the table has
            // no room near this id.
            if !self.spans.insert(id.into_u64(), entry) {
                if let Some(s) = ctx.span(id) {
                    s.extensions_mut()
                        .insert(RecordedSpan { id: span, callsite });
                }
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = self.recorded(&ctx, id) else {
            return;
        };
        let ticks = clock::ticks();
        with_writer(&self.shared.ring, |w| {
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::SpanRecord, span.callsite, ticks);
                e.id(span.id);
                values.record(&mut FieldEncoder::new(&mut e));
                e.finish()
            })
        });
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let (Some(span), Some(cause)) = (self.recorded(&ctx, id), self.recorded(&ctx, follows))
        else {
            return;
        };
        let ticks = clock::ticks();
        with_writer(&self.shared.ring, |w| {
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::FollowsFrom, span.callsite, ticks);
                e.id(span.id);
                e.id(cause.id);
                e.finish()
            })
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = self.recorded(&ctx, id) {
            // Written before the push: if the record opens a fresh chunk, that chunk's
            // context must not already hold the span this record enters.
            span_op(
                &self.shared,
                RecordKind::Enter,
                span.id,
                span.callsite,
                |w| w.push_span(span.id, span.callsite, self.entered_by(id)),
            );
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let by = self.entered_by(id);
        let ticks = clock::ticks();
        with_writer(&self.shared.ring, |w| {
            // Usually the span this thread entered last: no table lookup.
            let (span, callsite) = match w.innermost_entered_by(by) {
                Some(e) => (e.span, e.callsite),
                None => match self.recorded(&ctx, id) {
                    Some(s) => (s.id, s.callsite),
                    None => return,
                },
            };
            // Written out here: a helper shared with `span_op` cost 74 instructions more
            // per span life (callgrind, `hot_loop span`).
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::Exit, callsite, ticks);
                e.id(span);
                e.finish()
            });
            w.pop_span(span);
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // Out of the table at once: the registry may give this `Id` to a new span from now on.
        let span = match self.spans.take(id.into_u64()) {
            Some(e) => Some(RecordedSpan {
                id: e.id,
                callsite: e.callsite,
            }),
            None => Self::recorded_in_extensions(&ctx, &id),
        };
        if let Some(span) = span {
            span_op(
                &self.shared,
                RecordKind::Close,
                span.id,
                span.callsite,
                |_| {},
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    /// A recorder with a small ring in `dir`.
    fn small_recorder(dir: &std::path::Path) -> crate::Builder {
        crate::Recorder::builder().dir(dir).capacity(256 << 10)
    }

    struct Loud;
    impl std::fmt::Debug for Loud {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::info!("logged from inside Debug");
            f.write_str("loud")
        }
    }

    /// Two subscribers number their spans alike (each from 1). A span exited while another
    /// subscriber's span with the same `Id` is innermost on the thread must not be taken
    /// for it: each exit names the span it leaves, and the spans in force stay right.
    #[test]
    fn an_exit_is_matched_to_its_own_subscribers_span_not_one_with_the_same_id() {
        use flightrec_format::RecordKind;
        let dir = tempfile::tempdir().unwrap();
        let rec = small_recorder(dir.path()).build().unwrap();
        let first = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
        let second = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
        let a = tracing::dispatcher::with_default(&first, || tracing::info_span!("a"));
        let b = tracing::dispatcher::with_default(&second, || tracing::info_span!("b"));
        assert_eq!(
            a.id(),
            b.id(),
            "both registries give their first span the same Id"
        );
        let in_a = a.enter();
        let in_b = b.enter();
        drop(in_a); // leaves `a` while `b` is innermost
        tracing::dispatcher::with_default(&second, || tracing::info!("inside b only"));
        drop(in_b);
        drop((a, b));

        let r = flightrec_format::open(rec.ring_path()).unwrap();
        let named = |name: &str| {
            r.records
                .iter()
                .find(|x| x.kind == RecordKind::SpanNew && r.callsites[&x.callsite].name == name)
                .unwrap()
                .span
        };
        let (a, b) = (named("a"), named("b"));
        assert_ne!(a, b);
        let exits: Vec<u64> = r
            .records
            .iter()
            .filter(|x| x.kind == RecordKind::Exit)
            .map(|x| x.span)
            .collect();
        assert_eq!(exits, [a, b]);
        let event = r
            .records
            .iter()
            .find(|x| x.kind == RecordKind::Event)
            .unwrap();
        assert_eq!(&*event.spans, &[b]);
    }

    /// tracing itself turns a nested dispatch on the same thread into a no-op; the layer
    /// must not deadlock on its thread-local or corrupt the record being written.
    #[test]
    fn logging_from_inside_a_field_neither_deadlocks_nor_corrupts() {
        let dir = tempfile::tempdir().unwrap();
        let rec = small_recorder(dir.path()).chunk_size(1024).build().unwrap();
        let d = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
        tracing::dispatcher::with_default(&d, || {
            tracing::info!(v = ?Loud, "outer");
            for i in 0..100u64 {
                tracing::info!(i, "filler");
            }
        });
        let r = flightrec_format::open(rec.ring_path()).unwrap();
        assert!(!r.damage.is_damaged());
        assert_eq!(r.records.len(), 101);
        let outer = &r.records[0];
        let names = &r.callsites[&outer.callsite].fields;
        let v = outer
            .fields
            .iter()
            .find(|f| names[f.index as usize] == "v")
            .unwrap();
        assert_eq!(v.value, flightrec_format::Value::Debug("loud".into()));
    }
}
