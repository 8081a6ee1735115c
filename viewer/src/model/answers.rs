//! The answers the page asks for, mapped to the contract's types: meta, locks, records,
//! spans, objects and search.

use super::*;
use std::num::NonZeroU64;

impl Model {
    /// The process (its position among the merged ones) a thread belongs to.
    pub(super) fn process_of(&self, thread: u32) -> Option<usize> {
        if self.processes.is_empty() {
            return None;
        }
        self.processes.iter().rposition(|p| p.thread_base <= thread)
    }

    pub(super) fn names(&self) -> Names<'_> {
        self.header.names()
    }

    pub(super) fn callsite(&self, id: u32) -> Option<&flightrec_format::Callsite> {
        self.header.callsites().get(&id)
    }

    pub(super) fn field_name(&self, callsite: Option<u32>, index: u8) -> String {
        match callsite {
            Some(c) => self.names().field_name(c, index).into_owned(),
            None => format!("field{index}"),
        }
    }

    pub(super) fn span_name(&self, span: u64) -> &str {
        self.names().span_name(span)
    }

    pub(super) fn thread_name(&self, index: u32) -> &str {
        self.names().thread(index).0
    }

    /// A record's title, by the reading layer's rule.
    pub fn title(&self, r: &Record) -> String {
        self.names().title(r).into_owned()
    }

    pub(super) fn matcher<'a>(&self, f: &'a Filter) -> Matcher<'a> {
        Matcher {
            min_level: f
                .level
                .as_deref()
                .and_then(parse_level)
                .unwrap_or(Level::Trace),
            target: f.target.as_deref().filter(|t| !t.is_empty()),
            text: f
                .text
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase),
        }
    }

    pub(super) fn callsite_passes(&self, m: &Matcher<'_>, callsite: Option<u32>) -> bool {
        let Some(cs) = callsite.and_then(|c| self.callsite(c)) else {
            return m.target.is_none();
        };
        cs.level >= m.min_level && m.target.is_none_or(|t| cs.target.contains(t))
    }

    pub(super) fn record_passes(&self, m: &Matcher<'_>, r: &Record) -> bool {
        if !self.callsite_passes(m, Some(r.callsite)) {
            return false;
        }
        match &m.text {
            None => true,
            Some(text) => {
                self.title(r).to_lowercase().contains(text)
                    || r.fields
                        .iter()
                        .any(|f| f.value.to_text().to_lowercase().contains(text))
            }
        }
    }

    pub(super) fn level_of(&self, callsite: Option<u32>) -> u8 {
        callsite
            .and_then(|c| self.callsite(c))
            .map_or(3, |c| level_num(c.level))
    }

    /// The page's first request: lanes, time range, trigger.
    pub fn meta(&self) -> Meta {
        let lanes = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, l)| LaneMeta {
                lane: i,
                thread: l.thread,
                tid: l.tid,
                name: l.name.clone(),
                data_start: l.data_start,
                last: l.last,
                overwritten: l.overwritten,
                cut: self.header.damage().missing_bytes > 0
                    || self.header.damage().missing_chunks > 0,
                depth: l.depths.len(),
                events: l.events.len(),
                process: self.process_of(l.thread),
            })
            .collect();
        let p = self.header.process();
        let t = self.header.trigger();
        let trigger = (t.reason != TriggerReason::None).then(|| {
            let lane = self.lanes.iter().position(|l| l.tid == t.tid && t.tid != 0);
            TriggerMeta {
                reason: t.reason.slug(),
                description: t.describe(),
                message: t.message.clone(),
                t: (t.wall_ns > 0).then(|| t.wall_ns.saturating_sub(self.origin)),
                tid: t.tid,
                lane,
                thread: lane.map(|l| self.lanes[l].name.clone()),
                stuck: self.stuck_lanes(),
            }
        });
        let mut targets: Vec<String> = self
            .header
            .callsites()
            .values()
            .map(|c| c.target.clone())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        Meta {
            loading: self.loading,
            progress: None,
            service: p.service.clone(),
            pid: p.pid,
            host: p.host.clone(),
            exe: p.exe.clone(),
            origin: self.origin.to_string(),
            end: self.end,
            records: self.records.len(),
            lanes,
            trigger,
            stacks: self
                .stacks
                .iter()
                .map(|t| StackOut {
                    tid: t.tid,
                    lane: self.lanes.iter().position(|l| l.tid == t.tid),
                    thread: t.thread.clone(),
                    headline: t.headline(),
                    reason: match t.reason {
                        flightrec_format::CaptureReason::Crash => "crash",
                        flightrec_format::CaptureReason::Stall => "stall",
                        flightrec_format::CaptureReason::Snapshot => "snapshot",
                        flightrec_format::CaptureReason::Unknown(_) => "unknown",
                    },
                    answered: t.outcome == flightrec_format::CaptureOutcome::Captured,
                    frames: t.frames.iter().map(|f| f.describe()).collect(),
                    note: t.note.clone(),
                })
                .collect(),
            deadlocks: self.deadlocks_out(),
            locks: self.lock_report.clone(),
            findings: self.findings_out(),
            processes: self
                .processes
                .iter()
                .map(|p| ProcessOut {
                    label: p.label.clone(),
                    service: p.process.service.clone(),
                    pid: p.process.pid,
                    host: p.process.host.clone(),
                    trigger: (p.trigger.reason != TriggerReason::None)
                        .then(|| p.trigger.describe()),
                    clock: p.clock,
                    shift_ns: p.shift_ns,
                })
                .collect(),
            several_hosts: {
                let mut hosts: Vec<&str> = self
                    .processes
                    .iter()
                    .map(|p| p.process.host.as_str())
                    .collect();
                hosts.sort_unstable();
                hosts.dedup();
                hosts.len() > 1
            },
            tasks: TasksMeta {
                count: self.task_lanes.len(),
                report: flightrec_analysis::report::TasksReport::of(&self.tasks),
            },
            targets,
            damaged: self.header.damage().is_damaged(),
            history: {
                let h = self.header.history();
                (h.attached > 0 || h.archived > 0 || h.skipped > 0).then_some(HistoryOut {
                    attached_chunks: h.attached,
                    archived_chunks: h.archived,
                    skipped_chunks: h.skipped,
                })
            },
            constants: Constants {
                flags: BarFlags {
                    starts_before_data: STARTS_BEFORE_DATA,
                    open_at_end: OPEN_AT_END,
                },
                levels: [
                    Level::Trace,
                    Level::Debug,
                    Level::Info,
                    Level::Warn,
                    Level::Error,
                ]
                .into_iter()
                .map(|l| LevelName {
                    level: level_num(l),
                    name: l.as_str(),
                })
                .collect(),
            },
            file: None,
            size: None,
        }
    }

    pub(super) fn findings_out(&self) -> Vec<FindingOut> {
        self.findings
            .iter()
            .map(|f| {
                let marks: Vec<FindingMark> = f
                    .records
                    .iter()
                    .map(|e| FindingMark {
                        id: e.record,
                        t: e.ts.saturating_sub(self.origin),
                        lane: self
                            .records
                            .get(e.record)
                            .and_then(|r| self.lane_of(r.thread)),
                        task: self.tasks.of_record(e.record),
                    })
                    .collect();
                let on_tasks = f.records.iter().any(|e| {
                    self.tasks
                        .of_record(e.record)
                        .is_some_and(|t| self.tasks.list[t].is_async)
                });
                FindingOut {
                    finding: f.clone(),
                    view: if on_tasks { "tasks" } else { "threads" },
                    from: marks.first().map_or(0, |r| r.t),
                    to: marks.last().map_or(0, |r| r.t),
                    marks,
                }
            })
            .collect()
    }

    pub(super) fn deadlocks_out(&self) -> Vec<DeadlockOut> {
        let names = self.names();
        let lane_of = |t: u32| self.lane_of(t);
        let lock_name = |l: u32| names.lock_name(l);
        self.locks
            .deadlocks
            .iter()
            .map(|cycle| DeadlockOut {
                description: flightrec_analysis::locks::describe_deadlock(&names, cycle),
                steps: cycle
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let next = &cycle[(i + 1) % cycle.len()];
                        DeadlockStep {
                            lane: lane_of(s.thread),
                            thread: names.thread_label(s.thread),
                            holds: lock_name(s.holds),
                            waits_for: lock_name(s.waits_for),
                            holder: lane_of(next.thread),
                            since: s.since.saturating_sub(self.origin),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// For a stall: each lane whose last record lies well before the trigger, with the spans
    /// open at its end and how long it had been silent.
    pub(super) fn stuck_lanes(&self) -> Vec<StuckLane> {
        let t = self.header.trigger();
        if t.reason != TriggerReason::Stall || t.wall_ns == 0 {
            return Vec::new();
        }
        let at = t.wall_ns.saturating_sub(self.origin);
        self.lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| at.saturating_sub(l.last) > 50_000_000)
            .map(|(i, l)| StuckLane {
                lane: i,
                name: l.name.clone(),
                silent_ns: at.saturating_sub(l.last),
                open_spans: l
                    .depths
                    .iter()
                    .flat_map(|d| d.last())
                    .filter(|b| b.flags & OPEN_AT_END != 0)
                    .map(|b| self.span_name(b.span).to_owned())
                    .collect(),
            })
            .collect()
    }

    pub(super) fn span_ref(&self, span: u64) -> SpanRef {
        SpanRef {
            span: span.to_string(),
            name: self.span_name(span).to_owned(),
        }
    }

    /// A recorded lock's page: what it is, how it was used, who holds and waits for it.
    pub fn lock(&self, id: u32) -> Option<LockDetails> {
        // Statistics, holders and waiters from the one lock model, as `info` reads them.
        let row = self.lock_report.locks.iter().find(|l| l.id == id)?.clone();
        let mut holders = Vec::new();
        let mut waiters = Vec::new();
        let mut waits = Vec::new();
        for (li, lane) in self.lanes.iter().enumerate() {
            for l in lane.locks.iter().filter(|l| l.lock == id) {
                let party = LockParty {
                    lane: Some(li),
                    thread: lane.name.clone(),
                    since: l.begin,
                    ns: l.end - l.begin,
                    shared: l.shared,
                };
                match (l.waiting, l.open) {
                    (true, true) => waiters.push(party),
                    (true, false) => waits.push(party),
                    (false, true) => holders.push(party),
                    (false, false) => {}
                }
            }
        }
        waits.sort_by_key(|w| std::cmp::Reverse(w.ns));
        waits.truncate(20);
        Some(LockDetails {
            row,
            holders,
            waiters,
            longest_waits: waits,
        })
    }

    /// Everything about one record, for the details panel.
    pub fn record(&self, id: usize) -> Option<RecordDetails> {
        let r = self.records.get(id)?;
        let cs = self.callsite(r.callsite);
        let fields = r
            .fields
            .iter()
            .map(|f| FieldOut {
                name: self.field_name(Some(r.callsite), f.index),
                value: f.value.to_text(),
                kind: f.value.type_name(),
                truncated: Some(f.truncated),
            })
            .collect();
        let lane = self.lane_of(r.thread);
        Some(RecordDetails {
            id,
            t: r.ts.saturating_sub(self.origin),
            ts: r.ts.to_string(),
            kind: r.kind.as_str(),
            title: self.title(r),
            level: cs.map(|c| c.level.as_str()),
            target: cs.map(|c| c.target.clone()),
            name: cs.map(|c| c.name.clone()),
            file: cs.and_then(|c| c.file.clone()),
            line: cs.and_then(|c| c.line),
            thread: self.thread_name(r.thread).to_owned(),
            lane,
            tid: lane.map(|l| self.lanes[l].tid),
            fields,
            spans: r.spans.iter().map(|&s| self.span_ref(s)).collect(),
            truncated: r.truncated,
            span: (r.span != 0).then(|| r.span.to_string()),
            follows: r.follows().map(|f| f.to_string()),
        })
    }

    /// What the recording says of `span`, gathered when asked (a click, not a load):
    /// one pass over the records and the bars. `None` when it says nothing.
    pub(super) fn span_info(&self, span: u64) -> Option<SpanInfo> {
        let mut s = SpanInfo {
            callsite: self.header.span_callsite(span),
            ..SpanInfo::default()
        };
        let mut known = s.callsite.is_some();
        for r in self.records.iter() {
            match r.kind {
                RecordKind::SpanNew if r.span == span => {
                    s.parent = r.parent().map(NonZeroU64::get);
                    s.created_on = Some(r.thread);
                    merge_fields(&mut s.fields, &r.fields);
                    known = true;
                }
                RecordKind::SpanRecord if r.span == span => {
                    merge_fields(&mut s.fields, &r.fields);
                    known = true;
                }
                RecordKind::FollowsFrom => {
                    if let Some(f) = r.follows().map(NonZeroU64::get) {
                        if r.span == span {
                            s.follows.push(f);
                            known = true;
                        }
                        if f == span {
                            s.followed_by.push(r.span);
                            known = true;
                        }
                    }
                }
                _ => {}
            }
        }
        for (li, l) in self.lanes.iter().enumerate() {
            for (depth, bars) in l.depths.iter().enumerate() {
                for (at, b) in bars.iter().enumerate() {
                    if b.span == span {
                        s.entries.push((li, depth, at));
                    }
                }
            }
        }
        known |= !s.entries.is_empty();
        known.then_some(s)
    }

    /// Everything about one span: fields, every entry on every thread, links.
    pub fn span(&self, span: u64) -> Option<SpanDetails> {
        let s = self.span_info(span)?;
        let cs = s.callsite.and_then(|c| self.callsite(c));
        let mut entries: Vec<SpanEntryOut> = s
            .entries
            .iter()
            .map(|&(lane, depth, at)| {
                let b = &self.lanes[lane].depths[depth][at];
                SpanEntryOut {
                    lane,
                    thread: self.lanes[lane].name.clone(),
                    b: b.begin,
                    e: b.end,
                    d: depth,
                    flags: b.flags,
                    record: (b.record != NO_RECORD).then_some(b.record),
                }
            })
            .collect();
        entries.sort_by_key(|e| e.b);
        // The span stack when it was first entered (from the enter record, when it survived).
        let stack = entries
            .iter()
            .find_map(|e| e.record)
            .and_then(|i| self.records.get(i as usize))
            .map(|r| r.spans.iter().map(|&s| self.span_ref(s)).collect())
            .unwrap_or_default();
        let fields = s
            .fields
            .iter()
            .map(|f| FieldOut {
                name: self.field_name(s.callsite, f.index),
                value: f.value.to_text(),
                kind: f.value.type_name(),
                truncated: None,
            })
            .collect();
        let refs = |v: &[u64]| v.iter().map(|&id| self.span_ref(id)).collect();
        Some(SpanDetails {
            span: span.to_string(),
            name: self.span_name(span).to_owned(),
            level: cs.map(|c| c.level.as_str()),
            target: cs.map(|c| c.target.clone()),
            file: cs.and_then(|c| c.file.clone()),
            line: cs.and_then(|c| c.line),
            fields,
            parent: s.parent.map(|p| self.span_ref(p)),
            created_on: s.created_on.map(|t| self.thread_name(t).to_owned()),
            entries,
            follows: refs(&s.follows),
            followed_by: refs(&s.followed_by),
            stack,
        })
    }

    /// Every record that carries `field = value`, on any thread, in time order, marking where
    /// the object passes from one thread to another. Beyond `limit`, the newest are kept:
    /// in a flight recording the end is where the trouble is.
    pub fn object(&self, field: &str, value: &str, limit: usize) -> ObjectTrail {
        let mut out = std::collections::VecDeque::new();
        let key = ObjectKey::new(field, value);
        let names = self.names();
        let mut trail = Trail::default();
        // The same trail, between tasks (a record outside any task ends no hand-over).
        let mut task_trail = Trail::default();
        // Merged recordings lie process after process: put the carriers in time order.
        let mut carriers: Vec<(i64, usize)> = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| key.carried_by(&names, r))
            .map(|(i, r)| (r.ts, i))
            .collect();
        carriers.sort_unstable();
        let mut threads = std::collections::HashSet::new();
        let mut tasks = std::collections::HashSet::new();
        for (_, i) in carriers {
            let r = &self.records[i];
            let from_thread = trail.step(r.thread);
            threads.insert(r.thread);
            let task = self.tasks.of_record(i);
            tasks.extend(task);
            let from_task = task.and_then(|t| task_trail.step(t as u32));
            if out.len() == limit.max(1) {
                out.pop_front();
            }
            out.push_back(ObjectRecord {
                id: i,
                t: r.ts.saturating_sub(self.origin),
                kind: r.kind.as_str(),
                lane: self.lane_of(r.thread),
                thread: self.thread_name(r.thread).to_owned(),
                span: r.spans.last().map(|&s| self.span_name(s).to_owned()),
                title: self.title(r),
                handover: from_thread.is_some(),
                from: from_thread.map(|p| self.thread_name(p).to_owned()),
                task,
                task_handover: from_task.is_some(),
                task_label: task.map(|t| self.task_lanes[t].label.clone()),
                from_task: from_task.map(|t| self.task_lanes[t as usize].label.clone()),
            });
        }
        ObjectTrail {
            field: field.to_owned(),
            value: value.to_owned(),
            truncated: trail.carriers > out.len(),
            records: out.into(),
            total: trail.carriers,
            threads: threads.len(),
            handovers: trail.handovers,
            tasks: tasks.len(),
            task_handovers: task_trail.handovers,
        }
    }

    /// Events matching the filter (its text is the search), in time order.
    pub fn search(&self, filter: &Filter, limit: usize) -> SearchHits {
        let m = self.matcher(filter);
        let mut out = Vec::new();
        let mut total = 0usize;
        for l in &self.lanes {
            for &i in &l.events {
                let r = &self.records[i as usize];
                if self.record_passes(&m, r) {
                    total += 1;
                    out.push((r.ts, i));
                }
            }
        }
        out.sort_unstable();
        out.truncate(limit);
        let hits = out
            .iter()
            .map(|&(ts, i)| {
                let r = &self.records[i as usize];
                SearchHit {
                    id: i,
                    t: ts.saturating_sub(self.origin),
                    lane: self.lane_of(r.thread),
                }
            })
            .collect();
        SearchHits { hits, total }
    }
}
