//! The object rules: `interleaving` and `atomicity`, and the touches they and
//! `inconsistent_locking` (`lockset.rs`) read.
//!
//! A record *touches* an object when one of its fields carries it: the field's name and its
//! value, as text (`cache=0x55d0c0a0`, `job=142.job`). Only events count, not lock events
//! nor the recorder's own (its notes, panics and tokio tasks), and never the message.
//!
//! Which field values are objects:
//! - for `interleaving`, any value of a text or integer field: the failure is the evidence
//!   that the value mattered, and the value whose other touches explain it best is chosen
//!   (touches from code the failing request did not run first, then the rarest value);
//! - for `atomicity` and `inconsistent_locking`, which need no failure, only a value the
//!   recording shows to be an object: an address (`0x` and at least four hex digits, as
//!   `{:p}` prints), or a value of a field named like a recorded lock (a `cache` field,
//!   with `Mutex::named("cache", …)`);
//! - for `inconsistent_locking` also an *id*: an integer or text value of a field named as
//!   an identity (`id`, `…_id`, `…Id`, `conn`, `connection`, `fd`, `session`, `handle`,
//!   `slot`, `socket`). Ids coincide where addresses do not, so the lockset must show a
//!   protocol: the owner touched it only under the guard, in at least two holds, and the
//!   other thread or task never under it (`conn=7` checked out and in under the pool's
//!   lock, used by a thread that never takes it). Per-request data (`user=5`, `sku`, a
//!   `request_id` stored in one hold) stays silent, however many threads log it inside or
//!   outside critical sections.
//!
//! A request is the unit a failure is explained in: the task a record belongs to, else its
//! thread's outermost entered span. Records outside any span belong to no request. A
//! check-then-act happens within one *operation*, finer than a request: the act runs
//! inside the innermost span the check ran in (a command's span, not the connection's span
//! around many commands).

use std::collections::{HashMap, HashSet};

use flightrec_format::{Level, Record, RecordKind, Value};

use crate::locks::{is_task_lock, LockTracker};
use crate::names::Names;

use super::{Context, Finding, Kind, Severity, MAX_EVIDENCE, MAX_PER_KIND};

/// Failures looked at most: a storm of warnings tells one story many times.
const MAX_FAILURES: usize = 2_000;

/// Foreign touches shown in an interleaving's evidence; the others are counted.
const STORY_TOUCHES: usize = 3;

/// Carriers looked back over at most, from a failure to its request's earlier touch.
const MAX_LOOK_BACK: usize = 100_000;

/// Whether `value` names an object for the lock rules by its form: an address, as `{:p}`
/// and `{:?}` print pointers (`0x` and at least four hex digits).
pub fn is_address(value: &str) -> bool {
    value.strip_prefix("0x").is_some_and(|hex| {
        hex.len() >= 4 && hex.len() <= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether a field's name says its values are identities (`conn_id`, `id`, `conn`, `fd`):
/// an integer or text value of such a field is an object for `inconsistent_locking`, held
/// to a stricter rule than an address (see the module's doc). Per-request
/// data (`user`, `sku`, `key`) is not.
pub fn is_id_field(field: &str) -> bool {
    let last = field.rsplit(['.', '_']).next().unwrap_or(field);
    ID_FIELD_NAMES.iter().any(|n| n.eq_ignore_ascii_case(last))
        || last.len() > 2 && last.ends_with("Id")
}

/// Field names (or their last word) whose values are identities of things that live
/// across requests: connections, file descriptors, sessions, handles, slots.
const ID_FIELD_NAMES: [&str; 8] = [
    "id",
    "conn",
    "connection",
    "fd",
    "session",
    "handle",
    "slot",
    "socket",
];

/// A field value as a failure's candidate object: text and integers, not flags, floats or
/// bytes.
fn candidate_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Debug(s) if !s.is_empty() => Some(s.to_string()),
        Value::I64(_) | Value::U64(_) | Value::I128(_) | Value::U128(_) => Some(v.to_text()),
        _ => None,
    }
}

/// An event of the program's own (not a lock event, not the recorder's).
fn is_program_event(names: &Names<'_>, r: &Record) -> bool {
    if r.kind != RecordKind::Event || names.lock_op(r).is_some() {
        return false;
    }
    names
        .callsite(r.callsite)
        .is_none_or(|c| !RECORDER_TARGETS.contains(&c.target.as_str()))
}

/// The recorder's own events' targets: its notes, panics, locks and tokio tasks.
const RECORDER_TARGETS: [&str; 4] = [
    "flightrec",
    "flightrec::panic",
    flightrec_format::meta::lock::TARGET,
    flightrec_format::meta::tokio_task::TARGET,
];

/// One touch of an object (by the lock rules' definition) and the locks held at it.
#[derive(Debug)]
pub(super) struct Touch {
    pub(super) record: usize,
    pub(super) key: u32,
    /// (lock, the record that took the hold, shared), thread locks only.
    pub(super) holds: Box<[(u32, usize, bool)]>,
    /// The thread held a task's lock (`tokio::Mutex`) too: its lockset is not the
    /// thread's to tell.
    pub(super) task_lock: bool,
}

/// Whether locks `a` and `b` are two instances made at one place (one `Mutex::new` line run
/// twice: two servers' states, one after the other).
fn made_alike(names: &Names<'_>, a: u32, b: u32) -> bool {
    let (Some(x), Some(y)) = (names.callsite(a), names.callsite(b)) else {
        return false;
    };
    a != b && x.name == y.name && x.file == y.file && x.line == y.line
}

/// What the one pass over the records gathers for the object rules.
pub(super) struct Touches<'r> {
    /// Names of the recorded thread locks: a field named like one carries its object.
    lock_names: HashSet<&'r str>,
    /// Per object name (`db=0x7f3a…`), its current life: the key its touches go under, and
    /// the lock it was touched holding (`None` until a touch holds one). A name touched
    /// under another instance of a lock made at the same place (a new server's state at a
    /// reused address) is a new object.
    lives: HashMap<String, (u32, Option<u32>)>,
    pub(super) key_names: Vec<String>,
    /// Id fields (`is_id_field`) touched at least once holding a thread lock.
    locked_id_fields: HashSet<String>,
    /// Per key: the object is an id (`is_id_field`), not an address or a lock's name.
    pub(super) key_is_id: Vec<bool>,
    pub(super) touches: Vec<Touch>,
    /// Per thread, the locks whose first surviving record there is a release: until then
    /// the thread may have held them (the taking was lost).
    uncertain: HashMap<u32, Vec<(u32, usize)>>,
    seen_ops: HashSet<(u32, u32)>,
    /// Events at WARN or above.
    failures: Vec<usize>,
}

impl<'r> Touches<'r> {
    pub(super) fn new(rec: &'r flightrec_format::Recording, names: &Names<'_>) -> Touches<'r> {
        let lock_names = rec
            .callsites
            .values()
            .filter(|c| flightrec_format::meta::lock::is(c) && !is_task_lock(names, c.id))
            .map(|c| c.name.as_str())
            .collect();
        Touches {
            lock_names,
            lives: HashMap::new(),
            key_names: Vec::new(),
            key_is_id: Vec::new(),
            locked_id_fields: HashSet::new(),
            touches: Vec::new(),
            uncertain: HashMap::new(),
            seen_ops: HashSet::new(),
            failures: Vec::new(),
        }
    }

    /// Record `i` (`r`), fed after the lock replay saw it.
    pub(super) fn observe(
        &mut self,
        names: &Names<'_>,
        tracker: &LockTracker,
        i: usize,
        r: &Record,
    ) {
        if r.kind != RecordKind::Event {
            return;
        }
        if let Some((lock, op)) = names.lock_op(r) {
            if self.seen_ops.insert((r.thread, lock)) {
                if let crate::LockOp::Released { .. } = op {
                    self.uncertain.entry(r.thread).or_default().push((lock, i));
                }
            }
            return;
        }
        if !is_program_event(names, r) {
            return;
        }
        let Some(c) = names.callsite(r.callsite) else {
            return;
        };
        if c.level >= Level::Warn && self.failures.len() < MAX_FAILURES {
            self.failures.push(i);
        }
        // The thread's holds at this record, taken once for all its fields.
        let mut task_lock = false;
        let holds: Vec<(u32, usize, bool)> = tracker
            .held_by(r.thread)
            .filter(|&(l, _, _)| {
                let task = is_task_lock(names, l);
                task_lock |= task;
                !task
            })
            .collect();
        for f in &r.fields {
            let Some(field) = c.fields.get(f.index as usize) else {
                continue;
            };
            if field == "message" {
                continue;
            }
            let id = match &f.value {
                Value::Str(s) | Value::Debug(s) if is_address(s) => false,
                _ if self.lock_names.contains(field.as_str()) => false,
                Value::Str(s) | Value::Debug(s) if !s.is_empty() && is_id_field(field) => true,
                Value::I64(_) | Value::U64(_) | Value::I128(_) | Value::U128(_)
                    if is_id_field(field) =>
                {
                    true
                }
                _ => continue,
            };
            // An id counts from its first touch under a thread lock: until its field was
            // ever touched holding one, nothing is kept (ids are logged everywhere).
            if id && holds.is_empty() && !self.locked_id_fields.contains(field.as_str()) {
                continue;
            }
            if id && !holds.is_empty() && !self.locked_id_fields.contains(field.as_str()) {
                self.locked_id_fields.insert(field.clone());
            }
            let name = format!("{field}={}", f.value.to_text());
            if id
                && holds.is_empty()
                && self.lives.get(&name).is_none_or(|(_, lock)| lock.is_none())
            {
                continue;
            }
            let holds = holds.clone();
            let key = self.life_of(names, name, &holds, id);
            self.touches.push(Touch {
                record: i,
                key,
                holds: holds.into_boxed_slice(),
                task_lock,
            });
        }
    }

    /// The key of object `name` touched holding `holds`: its current life's, or a new one's
    /// when the touch holds another instance of the lock its life was touched under.
    fn life_of(
        &mut self,
        names: &Names<'_>,
        name: String,
        holds: &[(u32, usize, bool)],
        id: bool,
    ) -> u32 {
        let held = || holds.iter().map(|&(l, _, _)| l);
        if let Some((key, lock)) = self.lives.get_mut(&name) {
            let reborn = lock.is_some_and(|old| {
                !held().any(|l| l == old) && held().any(|l| made_alike(names, old, l))
            });
            if !reborn {
                if lock.is_none() {
                    *lock = held().next();
                }
                return *key;
            }
        }
        let key = self.key_names.len() as u32;
        self.key_names.push(name.clone());
        self.key_is_id.push(id);
        self.lives.insert(name, (key, held().next()));
        key
    }

    /// The locks thread `thread` may have held at record `i` though no hold says so: its
    /// first record of them is a release that came later.
    pub(super) fn maybe_held(&self, thread: u32, i: usize) -> impl Iterator<Item = u32> + '_ {
        self.uncertain
            .get(&thread)
            .into_iter()
            .flatten()
            .filter(move |&&(_, first_release)| first_release > i)
            .map(|&(lock, _)| lock)
    }

    /// Touch positions per object, each in record order.
    pub(super) fn by_key(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.key_names.len()];
        for (t, touch) in self.touches.iter().enumerate() {
            by[touch.key as usize].push(t);
        }
        by
    }
}

/// A code site's identity across merged processes: callsite name, file and line.
type CodeSite<'r> = (&'r str, Option<&'r str>, Option<u32>);

/// A failure's best object so far: its score, the object, the request's earlier touch and
/// the foreign touches after it.
type Explanation = (
    (bool, bool, std::cmp::Reverse<usize>),
    String,
    usize,
    Vec<usize>,
);

/// The request a record belongs to (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Request {
    Task(usize),
    Entry { thread: u32, span: u64 },
}

/// Who wrote a record: a task, or a thread outside tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Actor {
    Task(usize),
    Thread(u32),
}

impl<'r> Context<'r> {
    fn request(&self, i: usize) -> Option<Request> {
        if let Some(t) = self.tasks.of_record(i) {
            return Some(Request::Task(t));
        }
        let r = &self.rec.records[i];
        r.spans.first().map(|&span| Request::Entry {
            thread: r.thread,
            span,
        })
    }

    pub(super) fn actor(&self, i: usize) -> Actor {
        match self.tasks.of_record(i) {
            Some(t) => Actor::Task(t),
            None => Actor::Thread(self.rec.records[i].thread),
        }
    }

    pub(super) fn actor_label(&self, a: Actor) -> String {
        match a {
            Actor::Task(t) => self.task_label(t),
            Actor::Thread(t) => self.names.thread_label(t),
        }
    }

    fn request_label(&self, q: Request) -> String {
        match q {
            Request::Task(t) => self.task_label(t),
            Request::Entry { thread, span } => format!(
                "{} in `{}`",
                self.names.thread_label(thread),
                self.names.span_name(span)
            ),
        }
    }

    /// Whether record `c` belongs to a request like `q`: one of the same root span (another
    /// order beside a failing order), as opposed to a stranger (the refresher).
    fn is_peer(&self, c: usize, q: Request) -> bool {
        let name = |q: Request| match q {
            Request::Task(t) => self.names.span_name(self.tasks.list[t].span),
            Request::Entry { span, .. } => self.names.span_name(span),
        };
        self.request(c).is_some_and(|other| name(other) == name(q))
    }

    /// A code site's identity across merged processes: name, file and line.
    fn code_site(&self, i: usize) -> CodeSite<'r> {
        let c = self.names.callsite(self.rec.records[i].callsite);
        (
            c.map_or("", |c| c.name.as_str()),
            c.and_then(|c| c.file.as_deref()),
            c.and_then(|c| c.line),
        )
    }

    /// Fills a finding's threads and tasks from its evidence.
    pub(super) fn people(&self, f: &mut Finding) {
        for e in &f.records {
            if !f.threads.contains(&e.thread) {
                f.threads.push(e.thread.clone());
            }
            if let Some(t) = &e.task {
                if !f.tasks.contains(t) {
                    f.tasks.push(t.clone());
                }
            }
        }
    }

    /// Failures explained by another thread's, task's or process's touch of an object the
    /// failing request had touched before.
    pub(super) fn interleavings(&self, touches: &Touches<'_>) -> Vec<Finding> {
        // The failures in a request, with their candidate objects.
        let mut failures: Vec<(usize, Request, Vec<String>)> = Vec::new();
        let mut wanted: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wanted_fields: HashSet<String> = HashSet::new();
        for &i in &touches.failures {
            let Some(q) = self.request(i) else { continue };
            let r = &self.rec.records[i];
            let mut keys = Vec::new();
            for f in &r.fields {
                let field = self.names.field_name(r.callsite, f.index);
                if field == "message" {
                    continue;
                }
                if let Some(text) = candidate_text(&f.value) {
                    let key = format!("{field}={text}");
                    wanted.entry(key.clone()).or_default();
                    wanted_fields.insert(field.into_owned());
                    keys.push(key);
                }
            }
            if !keys.is_empty() {
                failures.push((i, q, keys));
            }
        }
        if failures.is_empty() {
            return Vec::new();
        }
        // Every touch of those objects, in record order.
        for (i, r) in self.rec.records.iter().enumerate() {
            if r.fields.is_empty() || !is_program_event(&self.names, r) {
                continue;
            }
            for f in &r.fields {
                let field = self.names.field_name(r.callsite, f.index);
                if !wanted_fields.contains(field.as_ref()) {
                    continue;
                }
                let Some(text) = candidate_text(&f.value) else {
                    continue;
                };
                if let Some(list) = wanted.get_mut(&format!("{field}={text}")) {
                    list.push(i);
                }
            }
        }
        let mut out = Vec::new();
        let mut told: HashSet<(String, CodeSite<'r>)> = HashSet::new();
        for (failed, q, keys) in failures {
            let me = self.actor(failed);
            // The best object: (touched by code the request did not run, fewest touches).
            let mut best: Option<Explanation> = None;
            for key in keys {
                let carriers = &wanted[&key];
                let Ok(at) = carriers.binary_search(&failed) else {
                    continue;
                };
                let earlier = carriers[..at]
                    .iter()
                    .rev()
                    .take(MAX_LOOK_BACK)
                    .position(|&c| self.request(c) == Some(q));
                let Some(back) = earlier else { continue };
                let first = at - 1 - back;
                let foreign: Vec<usize> = carriers[first + 1..at]
                    .iter()
                    .copied()
                    .filter(|&c| self.actor(c) != me)
                    .collect();
                if foreign.is_empty() {
                    continue;
                }
                let own_sites: HashSet<_> = carriers[first..=at]
                    .iter()
                    .filter(|&&c| self.request(c) == Some(q))
                    .map(|&c| self.code_site(c))
                    .collect();
                let new_code = foreign
                    .iter()
                    .any(|&c| !own_sites.contains(&self.code_site(c)));
                let stranger = foreign.iter().any(|&c| !self.is_peer(c, q));
                let score = (stranger, new_code, std::cmp::Reverse(carriers.len()));
                if best.as_ref().is_none_or(|b| score > b.0) {
                    best = Some((score, key, carriers[first], foreign));
                }
            }
            let Some((_, key, first, foreign)) = best else {
                continue;
            };
            if !told.insert((key.clone(), self.code_site(failed))) {
                continue;
            }
            out.push(self.interleaving(failed, q, &key, first, &foreign));
            if out.len() >= MAX_PER_KIND {
                break;
            }
        }
        out
    }

    fn interleaving(
        &self,
        failed: usize,
        q: Request,
        key: &str,
        first: usize,
        foreign: &[usize],
    ) -> Finding {
        let who = self.request_label(q);
        let mut others: Vec<String> = Vec::new();
        for &c in foreign {
            let l = self.actor_label(self.actor(c));
            if !others.contains(&l) {
                others.push(l);
            }
        }
        let named = match others.len() {
            0..=3 => others.join(", "),
            n => format!("{} and {} more", others[..3].join(", "), n - 3),
        };
        let failure = self.names.title(&self.rec.records[failed]).into_owned();
        let mut f = self.finding(
            Kind::Interleaving,
            Severity::Error,
            format!(
                "{who} failed (\"{failure}\") after {named} touched {key} since its own \
                 earlier record on it"
            ),
        );
        f.object = Some(key.to_string());
        // The foreign touches that tell the story, latest first: those of strangers (not
        // another request like this one: the refresher, not a fellow worker) if any, else
        // those by code the request did not run, else the latest. The rest are counted.
        let own = self.code_site(first);
        let tiers: [&dyn Fn(usize) -> bool; 3] = [
            &|c| !self.is_peer(c, q),
            &|c| self.code_site(c) != own,
            &|_| true,
        ];
        let picked: Vec<usize> = tiers
            .iter()
            .map(|tier| {
                foreign
                    .iter()
                    .rev()
                    .copied()
                    .filter(|&c| tier(c))
                    .take(STORY_TOUCHES.min(MAX_EVIDENCE - 2))
                    .collect::<Vec<usize>>()
            })
            .find(|p| !p.is_empty())
            .unwrap_or_default();
        f.omitted = (foreign.len() - picked.len()) as u64;
        f.records
            .extend(self.evidence(first, format!("touched {key} first")));
        for c in picked {
            f.records
                .extend(self.evidence(c, format!("touched {key} in between")));
        }
        f.records.extend(self.evidence(failed, "failed"));
        f.records.sort_by_key(|e| (e.ts, e.record));
        self.people(&mut f);
        f
    }

    /// Check-then-act split across two holds of one lock, with another thread's hold that
    /// touched the object between them.
    pub(super) fn atomicity(&self, touches: &Touches<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut told: HashSet<(u32, u32)> = HashSet::new();
        for list in touches.by_key() {
            // An id's check-then-act is not told: ids are objects for the lockset only.
            if list
                .first()
                .is_some_and(|&t| touches.key_is_id[touches.touches[t].key as usize])
            {
                continue;
            }
            let mut last: HashMap<Request, usize> = HashMap::new();
            for (n, &t) in list.iter().enumerate() {
                let b = &touches.touches[t];
                let Some(q) = self.request(b.record) else {
                    continue;
                };
                let Some(prev) = last.insert(q, n) else {
                    continue;
                };
                let a = &touches.touches[list[prev]];
                // One operation: the act happens inside the innermost span the check was
                // made in. Two commands under one connection's span are two operations,
                // however long the connection lives.
                if !self.same_operation(a.record, b.record) {
                    continue;
                }
                // One lock, two holds of it.
                let split = a.holds.iter().find_map(|&(lock, h1, _)| {
                    b.holds
                        .iter()
                        .find(|&&(l2, h2, _)| l2 == lock && h2 != h1)
                        .map(|_| lock)
                });
                let Some(lock) = split else { continue };
                if told.contains(&(b.key, lock)) || !self.same_subject(a.record, b.record) {
                    continue;
                }
                let me = self.actor(b.record);
                let between: Vec<usize> = list[prev + 1..n]
                    .iter()
                    .map(|&c| &touches.touches[c])
                    .filter(|c| {
                        self.actor(c.record) != me
                            && c.holds.iter().any(|&(l, _, shared)| l == lock && !shared)
                    })
                    .map(|c| c.record)
                    .collect();
                if between.is_empty() {
                    continue;
                }
                told.insert((b.key, lock));
                out.push(self.atomicity_finding(
                    &touches.key_names[b.key as usize],
                    lock,
                    q,
                    (a.record, b.record),
                    &between,
                ));
                if out.len() >= MAX_PER_KIND {
                    return out;
                }
            }
        }
        out
    }

    /// Whether `act` belongs to the operation `check` was made in: it ran inside the
    /// innermost span `check` ran in (the command, not the connection around commands).
    fn same_operation(&self, check: usize, act: usize) -> bool {
        let (c, a) = (&self.rec.records[check], &self.rec.records[act]);
        match c.spans.last() {
            Some(op) => a.spans.contains(op),
            None => true,
        }
    }

    /// Whether two records of one request are about the same thing: every field (other
    /// than the message) both carry has one value in both.
    fn same_subject(&self, a: usize, b: usize) -> bool {
        let (ra, rb) = (&self.rec.records[a], &self.rec.records[b]);
        ra.fields.iter().all(|fa| {
            let name = self.names.field_name(ra.callsite, fa.index);
            name == "message"
                || rb.fields.iter().all(|fb| {
                    self.names.field_name(rb.callsite, fb.index) != name
                        || fb.value.to_text() == fa.value.to_text()
                })
        })
    }

    fn atomicity_finding(
        &self,
        key: &str,
        lock: u32,
        q: Request,
        (check, act): (usize, usize),
        between: &[usize],
    ) -> Finding {
        let label = self.names.lock_label(lock);
        let who = self.request_label(q);
        let mut others: Vec<String> = Vec::new();
        for &c in between {
            let l = self.actor_label(self.actor(c));
            if !others.contains(&l) {
                others.push(l);
            }
        }
        let mut f = self.finding(
            Kind::Atomicity,
            Severity::Warning,
            format!(
                "{who} checked {key} and acted on it in two separate holds of {label}; {} \
                 took {label} and touched it in between",
                others.join(", ")
            ),
        );
        f.object = Some(key.to_string());
        f.locks.push(label.clone());
        f.records
            .extend(self.evidence(check, format!("checked {key} holding {label}")));
        for &c in between.iter().take(MAX_EVIDENCE - 2) {
            f.records.extend(self.evidence(
                c,
                format!("touched {key} holding {label}, between the two holds"),
            ));
        }
        f.records
            .extend(self.evidence(act, format!("acted on {key} in a later hold of {label}")));
        f.records.sort_by_key(|e| (e.ts, e.record));
        self.people(&mut f);
        f
    }
}
