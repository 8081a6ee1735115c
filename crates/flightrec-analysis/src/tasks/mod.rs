//! Requests and tasks: what an async service's records belong to.
//!
//! * **Without runtime hooks**, the root span of an `.instrument`ed future is the request:
//!   each entry of it is a poll, on whichever worker ran it.
//! * **With flightrec's `tokio` feature**, each tokio task is itself recorded as a span of
//!   the `tokio_task` callsite, entered for every poll, so the same rule finds it: the task
//!   is the outermost span, and the request it runs nests inside its polls.
//!
//! One rule, used by every reader: a record belongs to the task whose span was outermost on
//! its thread when it was written (`Record::spans[0]`). A task is a span that is outermost
//! in some record, or a root span never entered (a request created but not yet polled).
//! Its polls are that span's entries; the spans it enters nest inside them.

use std::borrow::Cow;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use smallvec::SmallVec;

use flightrec_format::meta::tokio_task;
use flightrec_format::{FieldValue, Record, RecordKind};

use crate::names::Names;
use crate::spans::{merge_fields, Entry, Placement, SpanPlan};

mod naming;

pub use naming::{label, task_name, tell_apart, TokioIds};
use naming::{runs_span, tokio_info};

/// One poll: the task's span entered on a thread, from `begin` to `end` (ns since the Unix
/// epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub thread: u32,
    pub begin: i64,
    pub end: i64,
    /// Began before the thread's surviving data.
    pub starts_before_data: bool,
    /// Still running when the data ends.
    pub open_at_end: bool,
    /// The task's span was the outermost on the thread (not re-entered inside itself or
    /// inside another span): what a poll by a runtime is.
    pub outermost: bool,
}

/// A span entered inside a task's polls, placed relative to the task: depth 1 is a span the
/// task entered directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner {
    pub span: u64,
    pub thread: u32,
    pub depth: usize,
    pub begin: i64,
    pub end: i64,
    pub open_at_end: bool,
}

/// What the `tokio` feature recorded of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TokioTask {
    pub id: u64,
    /// `file:line` of the spawn.
    pub spawned_at: Option<String>,
    /// The fields of the span it runs (the first entered inside its polls), for its label:
    /// `task 17 · connection peer=10.0.0.7`.
    pub runs_fields: Vec<FieldValue>,
}

/// Where a task's root-span fields are kept. Most tasks' are exactly their creation
/// record's, read there: a copy for each of a million tasks would be over a hundred
/// megabytes. A span `record`ed after its creation gets a merged copy of its own.
#[derive(Debug, Clone, PartialEq)]
enum FieldsAt {
    None,
    /// The position of its creation record.
    Record(u32),
    /// (Boxed twice: one pointer wide, so a task's `FieldsAt` is two words, not three.)
    Merged(Box<Box<[FieldValue]>>),
}

impl FieldsAt {
    /// Notes a record of the span's fields (its creation or a later `record`), at position
    /// `i` of `records`.
    fn note(&mut self, records: &[Record], i: usize) {
        let new = &records[i].fields;
        let mut merged = match std::mem::replace(self, FieldsAt::None) {
            FieldsAt::None if records[i].kind == RecordKind::SpanNew => {
                *self = FieldsAt::Record(i as u32);
                return;
            }
            FieldsAt::None => Vec::new(),
            FieldsAt::Record(k) => records[k as usize].fields.to_vec(),
            FieldsAt::Merged(f) => f.into_vec(),
        };
        merge_fields(&mut merged, new);
        *self = FieldsAt::Merged(Box::new(merged.into_boxed_slice()));
    }
}

/// A request or task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its root span.
    pub span: u64,
    /// (Boxed: most tasks of a big recording are not tokio's, and a task is small.)
    pub tokio: Option<Box<TokioTask>>,
    /// The root span's fields, from its creation and later `record`s: [`Task::fields`].
    fields: FieldsAt,
    /// When its span was created and closed (ns since the Unix epoch), `NOT_RECORDED`
    /// when not: [`Task::created`], [`Task::closed`]. (A recording of a busy service holds
    /// millions of tasks: an `Option` would cost each of these two another word.)
    created: i64,
    closed: i64,
    /// Polls in time order. Most tasks are polled once: that one is kept in place.
    pub polls: SmallVec<[Poll; 1]>,
    /// Spans entered inside its polls, in the order they ended.
    pub inner: Vec<Inner>,
    /// When it began, as far as the recording shows: its creation, else its first poll or
    /// record (ns since the Unix epoch; 0 when none is known). Its records are
    /// [`Tasks::records_of`].
    pub start: i64,
    /// Whether it is an async task (what the exporters give a track of its own): a tokio
    /// task, or a span entered more than once or on more than one thread. A root span
    /// entered once is an ordinary span of its thread. The rule is `SpanPlan::is_task`.
    pub is_async: bool,
}

/// `Task::created` or `Task::closed` not in the recording.
const NOT_RECORDED: i64 = i64::MIN;

impl Task {
    /// When its span was created (ns since the Unix epoch), when recorded.
    pub fn created(&self) -> Option<i64> {
        (self.created != NOT_RECORDED).then_some(self.created)
    }

    /// When its span was closed (ns since the Unix epoch), when recorded.
    pub fn closed(&self) -> Option<i64> {
        (self.closed != NOT_RECORDED).then_some(self.closed)
    }

    /// The root span's fields, from its creation and later `record`s. `records` are those
    /// of the recording the tasks were resolved from.
    pub fn fields<'a>(&'a self, records: &'a [Record]) -> Cow<'a, [FieldValue]> {
        match &self.fields {
            FieldsAt::None => Cow::Borrowed(&[]),
            FieldsAt::Record(i) => Cow::Owned(
                records
                    .get(*i as usize)
                    .map_or(Vec::new(), |r| r.fields.to_vec()),
            ),
            FieldsAt::Merged(f) => Cow::Borrowed(f),
        }
    }

    /// When it ended: its close, else the end of the recording's data if it still ran.
    pub fn end(&self, data_end: i64) -> i64 {
        self.closed().unwrap_or(data_end).max(self.start)
    }

    /// The threads that polled it, in order of first poll.
    pub fn workers(&self) -> Vec<u32> {
        let mut seen = Vec::new();
        for p in &self.polls {
            if !seen.contains(&p.thread) {
                seen.push(p.thread);
            }
        }
        seen
    }
}

/// In `Tasks::of_record`: the record is in no task.
const NO_TASK: u32 = u32::MAX;

/// The tasks of a recording, sorted by start time, with the record-to-task index.
#[derive(Debug, Default)]
pub struct Tasks {
    pub list: Vec<Task>,
    /// Position in `list` by root span.
    by_span: HashMap<u64, usize>,
    /// For each record, its task's position in `list`.
    /// (`NO_TASK` for none: four bytes a record, not eight.)
    of_record: Vec<u32>,
    /// Each task's records, in order, task after task: task `t`'s are
    /// `record_list[record_starts[t]..record_starts[t + 1]]` (one list, not a vector a
    /// task: a big recording has millions of tasks).
    record_starts: Vec<u32>,
    record_list: Vec<u32>,
    /// The span entries nested on their thread (not out of nesting order) still open when
    /// the data ends, tasks or not: where a stuck thread is stuck.
    pub open_at_end: Vec<Entry>,
}

/// The task a record belongs to: the outermost span entered on its thread, if any.
pub fn task_of(r: &Record) -> Option<u64> {
    r.spans.first().copied()
}

impl Tasks {
    /// The tasks of `records`, from their span plan and the entries it placed, with `names`
    /// from the same recording. Readers get them from [`crate::Analysis`].
    pub(crate) fn from_parts(
        records: &[Record],
        entries: &[Entry],
        plan: &SpanPlan,
        names: Names<'_>,
    ) -> Tasks {
        // Which spans are tasks: outermost somewhere, or created as roots and never entered
        // (a span on some record's stack was entered, and has an entry).
        // Candidates in the order they first show: about the order of their starts, so the
        // passes below walk the list nearly in order (a big recording's list is hundreds of
        // megabytes, and random visits to it cost a cache miss each) and the final sort by
        // start has little to move.
        let mut outermost: HashSet<u64> = HashSet::default();
        let mut candidates: Vec<u64> = Vec::new();
        let mut entered: HashSet<u64> = HashSet::default();
        let mut created_root: Vec<u64> = Vec::new();
        // A thread's outermost span changes far less often than it writes a record: each
        // change is noted once, not once a record.
        let mut first_on: HashMap<u32, u64> = HashMap::default();
        for r in records {
            if let Some(&first) = r.spans.first() {
                if first_on.insert(r.thread, first) != Some(first) && outermost.insert(first) {
                    candidates.push(first);
                }
            }
            if r.kind == RecordKind::SpanNew && r.parent().is_none() {
                created_root.push(r.span);
            }
        }
        // Outermost on a thread as the placement rule sees it, too.
        let mut open_at_end = Vec::new();
        for e in entries {
            entered.insert(e.span);
            if e.placement == (Placement::Nested { depth: 0 }) && outermost.insert(e.span) {
                candidates.push(e.span);
            }
            if e.open_at_end && matches!(e.placement, Placement::Nested { .. }) {
                open_at_end.push(*e);
            }
        }
        drop(outermost);
        candidates.extend(created_root.into_iter().filter(|s| !entered.contains(s)));
        // Each of these sets and lists holds an entry a task (millions): freed as soon as
        // they are done with, not at the end, where the build's peak is.
        drop(entered);
        // Sized once: doubling a list of a million tasks would hold the old and the new
        // list at once, and leave up to half the new one empty.
        let mut list: Vec<Task> = Vec::with_capacity(candidates.len());
        let mut by_span: HashMap<u64, usize> =
            HashMap::with_capacity_and_hasher(candidates.len(), Default::default());
        for span in candidates {
            if by_span.contains_key(&span) {
                continue;
            }
            by_span.insert(span, list.len());
            list.push(Task {
                span,
                tokio: None,
                fields: FieldsAt::None,
                created: NOT_RECORDED,
                closed: NOT_RECORDED,
                polls: SmallVec::new(),
                inner: Vec::new(),
                start: 0,
                is_async: plan.is_task(span),
            });
        }
        // Records, creation, close, fields.
        let mut of_record: Vec<u32> = vec![NO_TASK; records.len()];
        // Each task's first record's time (`i64::MAX`: none yet), for its start.
        let mut first_ts: Vec<i64> = vec![i64::MAX; list.len()];
        // Per thread, its outermost span and that span's task, looked up once a change.
        let mut task_on: HashMap<u32, (u64, Option<usize>)> = HashMap::default();
        for (i, r) in records.iter().enumerate() {
            let own = match r.kind {
                RecordKind::SpanNew | RecordKind::SpanRecord | RecordKind::Close => {
                    by_span.get(&r.span).copied()
                }
                _ => None,
            };
            let Some(t) = own.or_else(|| {
                let s = task_of(r)?;
                match task_on.get(&r.thread) {
                    Some(&(on, t)) if on == s => t,
                    _ => {
                        let t = by_span.get(&s).copied();
                        task_on.insert(r.thread, (s, t));
                        t
                    }
                }
            }) else {
                continue;
            };
            of_record[i] = t as u32;
            first_ts[t] = first_ts[t].min(r.ts);
            let task = &mut list[t];
            if r.span == task.span {
                match r.kind {
                    RecordKind::SpanNew => {
                        task.created = r.ts;
                        task.fields.note(records, i);
                    }
                    RecordKind::SpanRecord => task.fields.note(records, i),
                    RecordKind::Close => task.closed = r.ts,
                    _ => {}
                }
            }
        }
        // Polls, then the spans entered inside them (found by the poll that covers them on
        // their thread).
        let mut polls_by_thread: HashMap<u32, Vec<(i64, i64, usize)>> = HashMap::default();
        // Each entry's task, if it is a poll of one. Usually the task its enter record
        // belongs to, found without a lookup: a million lookups in a map of a million tasks
        // are a cache miss each.
        let entry_task: Vec<u32> = entries
            .iter()
            .map(|e| {
                let of_enter = e.enter_record.map_or(NO_TASK, |i| of_record[i as usize]);
                if of_enter != NO_TASK && list[of_enter as usize].span == e.span {
                    of_enter
                } else {
                    by_span.get(&e.span).map_or(NO_TASK, |&t| t as u32)
                }
            })
            .collect();
        // Each thread's list sized once (a million polls on a few threads).
        let mut polls_on: HashMap<u32, usize> = HashMap::default();
        for (e, &t) in entries.iter().zip(&entry_task) {
            if t != NO_TASK {
                *polls_on.entry(e.thread).or_default() += 1;
            }
        }
        for (thread, n) in polls_on {
            polls_by_thread.insert(thread, Vec::with_capacity(n));
        }
        for (e, &t) in entries.iter().zip(&entry_task) {
            if t != NO_TASK {
                let t = t as usize;
                list[t].polls.push(Poll {
                    thread: e.thread,
                    begin: e.begin,
                    end: e.end,
                    starts_before_data: e.enter_record.is_none(),
                    open_at_end: e.open_at_end,
                    outermost: e.placement == Placement::Nested { depth: 0 },
                });
                polls_by_thread
                    .entry(e.thread)
                    .or_default()
                    .push((e.begin, e.end, t));
            }
        }
        for v in polls_by_thread.values_mut() {
            v.sort_unstable();
        }
        for (e, &t) in entries.iter().zip(&entry_task) {
            if t != NO_TASK {
                continue;
            }
            let Some(polls) = polls_by_thread.get(&e.thread) else {
                continue;
            };
            let k = polls.partition_point(|p| p.0 <= e.begin);
            let Some(&(_, end, t)) = k.checked_sub(1).map(|k| &polls[k]) else {
                continue;
            };
            if e.begin > end {
                continue;
            }
            let depth = match e.placement {
                Placement::Nested { depth } => (depth as usize).max(1),
                // Out of nesting order: below what nests.
                Placement::Own => usize::MAX,
            };
            list[t].inner.push(Inner {
                span: e.span,
                thread: e.thread,
                depth,
                begin: e.begin,
                end: e.end,
                open_at_end: e.open_at_end,
            });
        }
        drop((polls_by_thread, entry_task));
        for (task, first_record) in list.iter_mut().zip(first_ts) {
            task.polls.sort_by_key(|p| (p.begin, p.end));
            let first_poll = task.polls.first().map(|p| p.begin);
            let first_record = (first_record != i64::MAX).then_some(first_record);
            task.start = task
                .created()
                .or(first_poll.into_iter().chain(first_record).min())
                .unwrap_or(0);
            let deepest = task
                .inner
                .iter()
                .filter(|i| i.depth != usize::MAX)
                .map(|i| i.depth)
                .max()
                .unwrap_or(0);
            for i in &mut task.inner {
                if i.depth == usize::MAX {
                    i.depth = deepest + 1;
                }
            }
            let is_tokio = names
                .span_callsite(task.span)
                .and_then(|c| names.callsite(c))
                .is_some_and(tokio_task::is);
            if is_tokio {
                task.tokio = Some(Box::new(tokio_info(&task.fields(records))));
            }
        }
        // The fields of the span each tokio task runs, wherever it was made (usually by the
        // spawner, before the task existed): one pass over the span records.
        let runs: HashMap<u64, usize> = list
            .iter()
            .enumerate()
            .filter(|(_, t)| t.tokio.is_some())
            .filter_map(|(k, t)| Some((runs_span(t)?, k)))
            .collect();
        if !runs.is_empty() {
            for r in records {
                if matches!(r.kind, RecordKind::SpanNew | RecordKind::SpanRecord) {
                    if let Some(&k) = runs.get(&r.span) {
                        if let Some(tokio) = &mut list[k].tokio {
                            merge_fields(&mut tokio.runs_fields, &r.fields);
                        }
                    }
                }
            }
        }
        // By start time (ties by span id, for a stable order).
        let mut order: Vec<(i64, u64, usize)> = list
            .iter()
            .enumerate()
            .map(|(i, t)| (t.start, t.span, i))
            .collect();
        order.sort_unstable();
        let order: Vec<usize> = order.into_iter().map(|(_, _, i)| i).collect();
        let mut new_pos = vec![0u32; list.len()];
        for (pos, &old) in order.iter().enumerate() {
            new_pos[old] = pos as u32;
        }
        permute(&mut list, &order);
        drop(order);
        for t in of_record.iter_mut().filter(|t| **t != NO_TASK) {
            *t = new_pos[*t as usize];
        }
        drop(new_pos);
        // The index moved in place: a second map beside it would be another entry a task.
        for (i, t) in list.iter().enumerate() {
            if let Some(pos) = by_span.get_mut(&t.span) {
                *pos = i;
            }
        }
        let (record_starts, record_list) = index_records(&of_record, list.len());
        Tasks {
            list,
            by_span,
            of_record,
            record_starts,
            record_list,
            open_at_end,
        }
    }

    /// The tasks of several slices of records laid end to end (part `k` made from the
    /// slice starting at `bases[k]`, `starts[k]` when each of its tasks began, as
    /// `Task::start` says, on any one clock), as the tasks of the whole: sorted by start
    /// time (ties by span), record indexes moved to the whole. `records`: how many records
    /// the whole has. Span ids must already be apart between parts (see
    /// `merge::rename_into`). Also returns, for each part, where its tasks went.
    pub fn concat(
        parts: Vec<Tasks>,
        bases: &[usize],
        starts: &[Vec<i64>],
        records: usize,
    ) -> (Tasks, Vec<Vec<u32>>) {
        // Tasks are moved once into one list and then sorted in place: a merge of ten big
        // recordings has millions, and a copy of them all is hundreds of megabytes.
        let total = parts.iter().map(|p| p.list.len()).sum();
        // For each task of `list`: its part and position there.
        let mut origin: Vec<(usize, u32)> = Vec::with_capacity(total);
        let mut of_records = Vec::new();
        let mut open_at_end = Vec::new();
        // The list grows from the first part's, whose memory is kept (not copied).
        let mut list: Vec<Task> = Vec::new();
        for (k, part) in parts.into_iter().enumerate() {
            let base = bases.get(k).copied().unwrap_or(0);
            let from = list.len();
            if k == 0 {
                list = part.list;
                list.reserve_exact(total - list.len());
            } else {
                list.extend(part.list);
            }
            for pos in 0..list.len() - from {
                origin.push((k, pos as u32));
            }
            of_records.push(part.of_record);
            open_at_end.extend(part.open_at_end.into_iter().map(|mut e| {
                e.enter_record = e.enter_record.map(|i| i + base as u64);
                e
            }));
        }
        let mut order: Vec<(i64, u64, usize)> = list
            .iter()
            .zip(&origin)
            .enumerate()
            .map(|(i, (t, &(k, pos)))| {
                let start = starts
                    .get(k)
                    .and_then(|s| s.get(pos as usize))
                    .copied()
                    .unwrap_or(0);
                (start, t.span, i)
            })
            .collect();
        order.sort_unstable();
        let mut moved: Vec<Vec<u32>> = of_records.iter().map(|_| Vec::new()).collect();
        for &(k, _) in &origin {
            moved[k].push(0);
        }
        let from: Vec<usize> = order.into_iter().map(|(_, _, i)| i).collect();
        for (new, &old) in from.iter().enumerate() {
            let (k, pos) = origin[old];
            moved[k][pos as usize] = new as u32;
        }
        permute(&mut list, &from);
        let mut of_record = Vec::with_capacity(records);
        for (k, part) in of_records.into_iter().enumerate() {
            of_record.extend(part.into_iter().map(|t| {
                if t == NO_TASK {
                    t
                } else {
                    moved[k][t as usize]
                }
            }));
        }
        let by_span = list.iter().enumerate().map(|(i, t)| (t.span, i)).collect();
        let (record_starts, record_list) = index_records(&of_record, list.len());
        (
            Tasks {
                list,
                by_span,
                of_record,
                record_starts,
                record_list,
                open_at_end,
            },
            moved,
        )
    }

    /// The positions of task `t`'s records (`t` its position in `list`), in order.
    pub fn records_of(&self, t: usize) -> impl ExactSizeIterator<Item = usize> + '_ {
        let (from, to) = (self.record_starts[t], self.record_starts[t + 1]);
        self.record_list[from as usize..to as usize]
            .iter()
            .map(|&i| i as usize)
    }

    /// The task whose root span is `span`.
    pub fn get(&self, span: u64) -> Option<&Task> {
        self.by_span.get(&span).map(|&i| &self.list[i])
    }

    /// Position in `list` of the task whose root span is `span`.
    pub fn position(&self, span: u64) -> Option<usize> {
        self.by_span.get(&span).copied()
    }

    /// Every task's [`label`], in `list` order, told apart ([`tell_apart`]).
    pub fn labels(&self, names: &Names<'_>) -> Vec<String> {
        let mut labels: Vec<String> = self.list.iter().map(|t| label(names, t)).collect();
        tell_apart(&mut labels);
        labels
    }

    /// Position in `list` of the task record `i` (of the slice these tasks were made from)
    /// belongs to.
    pub fn of_record(&self, i: usize) -> Option<usize> {
        self.of_record
            .get(i)
            .copied()
            .filter(|&t| t != NO_TASK)
            .map(|t| t as usize)
    }

    /// The tokio task id record `i` ran in, when the `tokio` feature recorded it.
    pub fn tokio_id(&self, i: usize) -> Option<u64> {
        self.of_record(i)
            .and_then(|t| self.list[t].tokio.as_ref())
            .map(|t| t.id)
    }

    /// Whether some task was polled on more than one thread: the recording is of an async
    /// runtime, and its tasks tell more than its threads.
    pub fn hop_threads(&self) -> bool {
        self.list.iter().any(|t| {
            let first = t.polls.first().map(|p| p.thread);
            t.polls.iter().any(|p| Some(p.thread) != first)
        })
    }
}

/// Each task's records from the record-to-task index: where each task's run starts in the
/// list, then the list (a counting sort, records in order within a task).
fn index_records(of_record: &[u32], tasks: usize) -> (Vec<u32>, Vec<u32>) {
    let mut starts = vec![0u32; tasks + 1];
    for &t in of_record.iter().filter(|&&t| t != NO_TASK) {
        starts[t as usize + 1] += 1;
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut next = starts.clone();
    let mut list = vec![0u32; starts[tasks] as usize];
    for (i, &t) in of_record.iter().enumerate().filter(|(_, &t)| t != NO_TASK) {
        list[next[t as usize] as usize] = i as u32;
        next[t as usize] += 1;
    }
    (starts, list)
}

/// Reorders `v` in place so that position `p` holds what was at `from[p]` (`from` is a
/// permutation of `0..v.len()`), by following each cycle of the permutation with swaps.
pub fn permute<T>(v: &mut [T], from: &[usize]) {
    debug_assert_eq!(v.len(), from.len());
    let mut placed = vec![false; v.len()];
    for start in 0..v.len() {
        let mut p = start;
        while !placed[p] {
            placed[p] = true;
            let q = from[p];
            if q == start {
                break;
            }
            // `v[p]` takes what was at `q` (untouched so far: a cycle visits it once), and
            // `v[q]` holds what was at `start`, for the next step (or the cycle's end).
            v.swap(p, q);
            p = q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{permute, Poll, SmallVec, Task};

    /// A busy service's recording holds millions of tasks, most polled once: such a task
    /// is one allocation-free struct (its poll in place), no bigger than this.
    #[test]
    fn a_task_polled_once_is_small_and_keeps_its_poll_in_place() {
        assert_eq!(std::mem::size_of::<Task>(), 120);
        let mut polls: SmallVec<[Poll; 1]> = SmallVec::new();
        polls.push(Poll {
            thread: 0,
            begin: 1,
            end: 2,
            starts_before_data: false,
            open_at_end: false,
            outermost: true,
        });
        assert!(!polls.spilled());
    }

    #[test]
    fn permuting_in_place_puts_at_each_position_what_was_at_its_source() {
        // Every permutation of five, and larger ones from a small xorshift shuffle.
        let mut perms: Vec<Vec<usize>> = Vec::new();
        let mut stack = vec![Vec::new()];
        while let Some(p) = stack.pop() {
            if p.len() == 5 {
                perms.push(p);
                continue;
            }
            for x in (0..5).filter(|x| !p.contains(x)) {
                let mut q = p.clone();
                q.push(x);
                stack.push(q);
            }
        }
        assert_eq!(perms.len(), 120);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for n in [0, 1, 2, 1000] {
            let mut from: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                from.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            perms.push(from);
        }
        for from in perms {
            let mut v: Vec<String> = (0..from.len()).map(|i| format!("item {i}")).collect();
            permute(&mut v, &from);
            let want: Vec<String> = from.iter().map(|i| format!("item {i}")).collect();
            assert_eq!(v, want, "from {from:?}");
        }
    }
}
