//! Span entries reconstructed from a record stream, in two streaming passes.
//!
//! A span is entered and exited, possibly many times and on several threads; each
//! enter/exit pair is an *entry*. What the stream leaves unsaid is settled here, once:
//!
//! * A thread's surviving data may begin inside spans: the first record's context (the
//!   chunk's span stack) says which, and those entries begin at that record, marked as
//!   having started before the data.
//! * Entries still open when the data ends, end at the recording's end, marked open.
//! * An exit whose entry was overwritten is ignored.
//! * **The nesting rule.** A span that exits, anywhere, while a span entered after it on
//!   the same thread is still entered (out of nesting order: async code, guards dropped out
//!   of order) does not nest: all its entries go on a track of their own
//!   ([`Placement::Own`], one per span and thread), so the thread's track stays properly
//!   nested. Every other entry is [`Placement::Nested`] at its depth on the thread.
//!   Knowing this before drawing takes a first pass ([`SpanPlan`]); the second
//!   ([`SpanWalker`]) emits entries as [`Step`]s.
//!
//! Neither pass holds records: memory grows with the number of live spans.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::num::NonZeroU64;

use flightrec_format::meta::tokio_task;
use flightrec_format::{FieldValue, Record, RecordKind, Recording, Trigger, TriggerReason};

/// The spans entered on a thread before the record `r` (its chunk context), outermost
/// first: an enter record's stack already holds the span it enters.
pub fn initial_stack(r: &Record) -> &[u64] {
    let s = &r.spans[..];
    match r.kind {
        RecordKind::Enter if s.last() == Some(&r.span) => &s[..s.len() - 1],
        _ => s,
    }
}

/// Merges a span's newly recorded field values into what is known of it: a later value of
/// a field replaces the earlier one.
pub fn merge_fields(into: &mut Vec<FieldValue>, new: impl IntoIterator<Item = FieldValue>) {
    let new = new.into_iter();
    if into.is_empty() {
        // The common case, a span's creation: room for exactly its fields.
        into.reserve_exact(new.size_hint().0);
    }
    for v in new {
        match into.iter_mut().find(|o| o.index == v.index) {
            Some(o) => o.value = v.value,
            None => into.push(v),
        }
    }
}

/// What the first pass knows of a span that is still needed.
#[derive(Debug, Clone, Copy)]
pub struct SpanFacts {
    /// Entries, over all threads and the whole stream.
    pub enters: u32,
    /// The thread of its first entry.
    pub first_thread: u32,
    /// Entered on more than one thread (handed over).
    pub moved: bool,
}

/// The first pass: what cannot be known while drawing.
#[derive(Debug, Default)]
pub struct SpanPlan {
    /// Spans that exit out of nesting order on some thread.
    own_track: HashSet<u64>,
    /// Facts per span; kept after the span closes only when it moved or is a
    /// `follows_from` cause, so the map holds live spans and those.
    spans: HashMap<u64, SpanFacts>,
    /// `follows_from` links whose cause had been entered before the link was made, per
    /// cause, numbered in the order they were made (from 0, over the whole recording).
    follows: HashMap<u64, Vec<u64>>,
    next_follow: u64,
    /// Per thread: the spans entered, outermost first.
    stacks: HashMap<u32, Vec<u64>>,
    /// Live spans entered outermost on a thread at least once.
    outermost: HashSet<u64>,
    /// Spans that are async tasks (see [`SpanPlan::is_task`]).
    tasks: HashSet<u64>,
    /// The callsite of tokio tasks recorded by the `tokio` feature, if the recording has it.
    tokio_callsite: Option<u32>,
    /// The earliest and latest timestamps (records and, after `finish`, the trigger).
    pub start_ts: i64,
    pub end_ts: i64,
}

impl SpanPlan {
    pub fn new() -> SpanPlan {
        SpanPlan {
            start_ts: i64::MAX,
            end_ts: i64::MIN,
            ..SpanPlan::default()
        }
    }

    /// A plan for a stream of `rec`'s records, knowing its callsites (tokio tasks).
    pub fn for_recording(rec: &Recording) -> SpanPlan {
        SpanPlan {
            tokio_callsite: rec
                .callsites
                .values()
                .find(|c| tokio_task::is(c))
                .map(|c| c.id),
            ..SpanPlan::new()
        }
    }

    /// The whole first pass over a recording's records, knowing its callsites.
    pub fn of_recording(rec: &Recording) -> SpanPlan {
        let mut plan = SpanPlan::for_recording(rec);
        for r in &rec.records {
            plan.observe(r);
        }
        plan.finish(&rec.trigger);
        plan
    }

    /// The whole first pass over `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>, trigger: &Trigger) -> SpanPlan {
        let mut plan = SpanPlan::new();
        for r in records {
            plan.observe(r);
        }
        plan.finish(trigger);
        plan
    }

    /// Takes the next record of the stream into account.
    pub fn observe(&mut self, r: &Record) {
        self.start_ts = self.start_ts.min(r.ts);
        self.end_ts = self.end_ts.max(r.ts);
        if !self.stacks.contains_key(&r.thread) {
            let initial = initial_stack(r).to_vec();
            for &s in &initial {
                self.note_enter(s, r.thread);
            }
            if let Some(&first) = initial.first() {
                self.note_outermost(first, r.thread);
            }
            self.stacks.insert(r.thread, initial);
        }
        match r.kind {
            RecordKind::SpanNew if self.tokio_callsite == Some(r.callsite) => {
                self.tasks.insert(r.span);
            }
            RecordKind::Enter => {
                self.note_enter(r.span, r.thread);
                if !self.own_track.contains(&r.span) {
                    let stack = self.stacks.entry(r.thread).or_default();
                    let outermost = stack.is_empty();
                    stack.push(r.span);
                    if outermost {
                        self.note_outermost(r.span, r.thread);
                    }
                }
            }
            RecordKind::Exit => {
                let stack = self.stacks.entry(r.thread).or_default();
                if stack.last() == Some(&r.span) {
                    stack.pop();
                } else if let Some(pos) = stack.iter().rposition(|&s| s == r.span) {
                    // Out of nesting order: the span leaves the thread's track for good,
                    // which keeps the rest of the track properly nested.
                    stack.remove(pos);
                    self.own_track.insert(r.span);
                }
            }
            // Ids are never reused: a closed span is entered no more.
            RecordKind::Close => {
                self.settle_task(r.span);
                if self.spans.get(&r.span).is_some_and(|s| !s.moved)
                    && !self.follows.contains_key(&r.span)
                {
                    self.spans.remove(&r.span);
                }
            }
            RecordKind::FollowsFrom => {
                if let Some(cause) = r.follows().map(NonZeroU64::get) {
                    if self.spans.get(&cause).is_some_and(|s| s.enters > 0) {
                        self.follows
                            .entry(cause)
                            .or_default()
                            .push(self.next_follow);
                        self.next_follow += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Ends the pass: the trigger's moment counts as part of the recording.
    pub fn finish(&mut self, trigger: &Trigger) {
        if trigger.reason != TriggerReason::None && trigger.wall_ns > 0 {
            self.end_ts = self.end_ts.max(trigger.wall_ns);
            self.start_ts = self.start_ts.min(trigger.wall_ns);
        }
        if self.start_ts > self.end_ts {
            self.start_ts = 0;
            self.end_ts = 0;
        }
        self.stacks = HashMap::default();
        let live: Vec<u64> = self.outermost.iter().copied().collect();
        for span in live {
            self.settle_task(span);
        }
    }

    fn note_outermost(&mut self, span: u64, _thread: u32) {
        self.outermost.insert(span);
    }

    /// Decides, once its entries are all seen, whether an outermost span is a task.
    fn settle_task(&mut self, span: u64) {
        if self.outermost.remove(&span) {
            if let Some(f) = self.spans.get(&span) {
                if f.enters >= 2 || f.moved {
                    self.tasks.insert(span);
                }
            }
        }
    }

    /// Whether `span` is an async task or request: a tokio task recorded by the `tokio`
    /// feature, or a span entered outermost on its thread at least once and entered more
    /// than once or on more than one thread (the root span of an `.instrument`ed future,
    /// each entry a poll). A root span entered once is an ordinary span on its thread.
    /// Known after `finish`; agrees with `tasks::Task::is_async`.
    pub fn is_task(&self, span: u64) -> bool {
        self.tasks.contains(&span)
    }

    fn note_enter(&mut self, span: u64, thread: u32) {
        let s = self.spans.entry(span).or_insert(SpanFacts {
            enters: 0,
            first_thread: thread,
            moved: false,
        });
        s.enters += 1;
        s.moved |= s.first_thread != thread;
    }

    /// Whether `span`'s entries go on tracks of their own.
    pub fn has_own_track(&self, span: u64) -> bool {
        self.own_track.contains(&span)
    }

    /// What is known of a span that moved between threads, was a `follows_from` cause, or
    /// was still live at the end.
    pub fn facts(&self, span: u64) -> Option<&SpanFacts> {
        self.spans.get(&span)
    }

    /// The drawable `follows_from` links to `cause`, numbered, in the order they were made.
    pub fn follow_links(&self, cause: u64) -> &[u64] {
        self.follows.get(&cause).map_or(&[], |v| v.as_slice())
    }
}

/// Where an entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// On its thread's track, properly nested, `depth` spans deep (0: outermost).
    Nested { depth: u32 },
    /// On a track of its own, one per span and thread (see the nesting rule).
    Own,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Begin,
    End,
}

/// An entry beginning or ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub ts: i64,
    pub span: u64,
    pub thread: u32,
    pub placement: Placement,
    /// The enter (Begin) or exit (End) record's position in the stream; `None` for an
    /// entry that began before the thread's data, or is still open at its end.
    pub record: Option<u64>,
    /// Which entry of the span this is, over all threads (1: the first); 0 when unknown.
    pub entry: u32,
}

/// The second pass: turns records into entry steps, following the plan.
pub struct SpanWalker<'p> {
    plan: &'p SpanPlan,
    /// Per thread: spans on its track, outermost first.
    stacks: HashMap<u32, Vec<u64>>,
    /// Own-track entries open, per (span, thread).
    open_own: HashMap<(u64, u32), u32>,
    /// Per live span: entries so far.
    entered: HashMap<u64, u32>,
    /// Records pushed so far.
    position: u64,
}

impl<'p> SpanWalker<'p> {
    pub fn new(plan: &'p SpanPlan) -> SpanWalker<'p> {
        SpanWalker {
            plan,
            stacks: HashMap::default(),
            open_own: HashMap::default(),
            entered: HashMap::default(),
            position: 0,
        }
    }

    /// Feeds the next record of the stream (the same stream, in the same order, as the
    /// plan saw); `out` receives the steps it makes, in order.
    pub fn push(&mut self, r: &Record, out: &mut impl FnMut(Step)) {
        let position = self.position;
        self.position += 1;
        if let std::collections::hash_map::Entry::Vacant(e) = self.stacks.entry(r.thread) {
            e.insert(Vec::new());
            for &s in initial_stack(r) {
                self.enter(r.ts, s, r.thread, None, out);
            }
        }
        match r.kind {
            RecordKind::Enter => self.enter(r.ts, r.span, r.thread, Some(position), out),
            RecordKind::Exit => self.exit(r.ts, r.span, r.thread, Some(position), out),
            RecordKind::Close => {
                self.entered.remove(&r.span);
            }
            _ => {}
        }
    }

    /// How many times `span` has been entered so far (0 once it closed).
    pub fn entries_so_far(&self, span: u64) -> u32 {
        self.entered.get(&span).copied().unwrap_or(0)
    }

    fn enter(
        &mut self,
        ts: i64,
        span: u64,
        thread: u32,
        record: Option<u64>,
        out: &mut impl FnMut(Step),
    ) {
        let n = self.entered.entry(span).or_insert(0);
        *n += 1;
        let entry = *n;
        let placement = if self.plan.has_own_track(span) {
            *self.open_own.entry((span, thread)).or_insert(0) += 1;
            Placement::Own
        } else {
            let stack = self.stacks.entry(thread).or_default();
            stack.push(span);
            Placement::Nested {
                depth: stack.len() as u32 - 1,
            }
        };
        out(Step {
            kind: StepKind::Begin,
            ts,
            span,
            thread,
            placement,
            record,
            entry,
        });
    }

    fn exit(
        &mut self,
        ts: i64,
        span: u64,
        thread: u32,
        record: Option<u64>,
        out: &mut impl FnMut(Step),
    ) {
        let entry = self.entries_so_far(span);
        let placement = if self.plan.has_own_track(span) {
            match self.open_own.get_mut(&(span, thread)).filter(|n| **n > 0) {
                Some(n) => {
                    *n -= 1;
                    Placement::Own
                }
                None => return,
            }
        } else {
            let stack = self.stacks.entry(thread).or_default();
            // The plan makes the span the innermost; anything else (an exit whose entry
            // was overwritten) is ignored rather than misnested.
            if stack.last() != Some(&span) {
                return;
            }
            stack.pop();
            Placement::Nested {
                depth: stack.len() as u32,
            }
        };
        out(Step {
            kind: StepKind::End,
            ts,
            span,
            thread,
            placement,
            record,
            entry,
        });
    }

    /// Ends every entry still open, at the plan's end: per thread (by index) innermost
    /// first, then the own-track entries by span and thread.
    pub fn finish(self, out: &mut impl FnMut(Step)) {
        let end = self.plan.end_ts;
        let mut threads: Vec<_> = self.stacks.into_iter().collect();
        threads.sort_by_key(|(t, _)| *t);
        for (thread, stack) in threads {
            for (depth, &span) in stack.iter().enumerate().rev() {
                out(Step {
                    kind: StepKind::End,
                    ts: end,
                    span,
                    thread,
                    placement: Placement::Nested {
                        depth: depth as u32,
                    },
                    record: None,
                    entry: self.entered.get(&span).copied().unwrap_or(0),
                });
            }
        }
        let mut open: Vec<_> = self.open_own.into_iter().collect();
        open.sort();
        for ((span, thread), n) in open {
            for _ in 0..n {
                out(Step {
                    kind: StepKind::End,
                    ts: end,
                    span,
                    thread,
                    placement: Placement::Own,
                    record: None,
                    entry: self.entered.get(&span).copied().unwrap_or(0),
                });
            }
        }
    }
}

/// One entry, begin to end: what [`entries`] collects from the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub thread: u32,
    pub placement: Placement,
    pub span: u64,
    pub begin: i64,
    pub end: i64,
    /// The enter record's position, or `None` if it began before the thread's data.
    pub enter_record: Option<u64>,
    /// Still entered when the data ends.
    pub open_at_end: bool,
}

/// Both passes over an in-memory record slice, pairing each begin with its end: every
/// entry, in the order they ended.
pub fn entries(records: &[Record], trigger: &Trigger) -> Vec<Entry> {
    let plan = SpanPlan::of(records, trigger);
    entries_of_plan(&plan, records)
}

/// The second pass alone, over the records `plan` was made from.
pub fn entries_of_plan(plan: &SpanPlan, records: &[Record]) -> Vec<Entry> {
    let mut walker = SpanWalker::new(plan);
    // Per (thread, placement, span): the open entries' begins and enter records. A key
    // leaves the map when its last open entry ends, so the map holds what is open (a
    // handful), not every span the recording ever entered (millions).
    type Open = HashMap<(u32, Placement, u64), Vec<(i64, Option<u64>)>>;
    let mut open: Open = HashMap::default();
    let mut done = Vec::new();
    let mut on_step = |s: Step| {
        let key = (s.thread, s.placement, s.span);
        match s.kind {
            StepKind::Begin => open.entry(key).or_default().push((s.ts, s.record)),
            StepKind::End => {
                let std::collections::hash_map::Entry::Occupied(mut begins) = open.entry(key)
                else {
                    return;
                };
                let popped = begins.get_mut().pop();
                if begins.get().is_empty() {
                    begins.remove();
                }
                if let Some((begin, enter_record)) = popped {
                    done.push(Entry {
                        thread: s.thread,
                        placement: s.placement,
                        span: s.span,
                        begin,
                        end: s.ts,
                        enter_record,
                        open_at_end: s.record.is_none() && s.ts == plan.end_ts,
                    });
                }
            }
        }
    };
    for r in records {
        walker.push(r, &mut on_step);
    }
    walker.finish(&mut on_step);
    // The entries outlive this pass (the tasks are built from them): not the up to half
    // of a doubled vector left empty.
    done.shrink_to_fit();
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_format::{SpanStack, Trigger};

    fn rec(ts: i64, thread: u32, kind: RecordKind, span: u64, stack: &[u64]) -> Record {
        Record {
            ts,
            thread,
            kind,
            callsite: 1,
            span,
            link: None,
            fields: Default::default(),
            truncated: false,
            spans: SpanStack::from(stack),
        }
    }

    fn no_trigger() -> Trigger {
        Trigger::none()
    }

    #[test]
    fn an_out_of_order_exit_puts_every_entry_of_that_span_on_its_own_track() {
        use RecordKind::*;
        let records = vec![
            rec(1, 0, Enter, 10, &[10]),
            rec(2, 0, Enter, 11, &[10, 11]),
            rec(3, 0, Exit, 10, &[11]), // 10 leaves before 11: out of order
            rec(4, 0, Exit, 11, &[]),
            rec(5, 0, Enter, 10, &[10]),
            rec(6, 0, Exit, 10, &[]),
        ];
        let mut e = entries(&records, &no_trigger());
        e.sort();
        let placed: Vec<_> = e
            .iter()
            .map(|e| (e.span, e.placement, e.begin, e.end))
            .collect();
        assert_eq!(
            placed,
            vec![
                (11, Placement::Nested { depth: 0 }, 2, 4),
                (10, Placement::Own, 1, 3),
                (10, Placement::Own, 5, 6),
            ]
        );
    }

    #[test]
    fn data_that_begins_inside_spans_opens_them_and_the_end_closes_them() {
        use RecordKind::*;
        let records = vec![
            rec(5, 0, Event, 0, &[1, 2]),
            rec(6, 0, Exit, 2, &[1]),
            rec(7, 1, Enter, 3, &[3]),
        ];
        let mut e = entries(&records, &no_trigger());
        e.sort();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (
                e[0].span,
                e[0].begin,
                e[0].end,
                e[0].enter_record,
                e[0].open_at_end
            ),
            (1, 5, 7, None, true)
        );
        assert_eq!(
            (e[1].span, e[1].begin, e[1].end, e[1].open_at_end),
            (2, 5, 6, false)
        );
        assert_eq!(
            (e[2].span, e[2].enter_record, e[2].open_at_end),
            (3, Some(2), true)
        );
    }

    #[test]
    fn an_exit_whose_entry_was_overwritten_is_ignored() {
        use RecordKind::*;
        let records = vec![rec(1, 0, Exit, 9, &[]), rec(2, 0, Enter, 1, &[1])];
        let e = entries(&records, &no_trigger());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].span, 1);
    }
}
