//! Perfetto's protobuf trace: a `Trace` is a stream of `TracePacket`s (field 1, length
//! delimited), so packets are encoded one at a time and written as they come.
//!
//! The messages below carry only the fields we write, with the numbers and types of
//! Perfetto's own definitions (protos/perfetto/trace/trace_packet.proto and
//! track_event/*.proto). Perfetto's messages are proto2: repeated scalars are not packed.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::io::Write;
use std::num::NonZeroU64;

use flightrec_format::{FieldValue, Recording, Value};
use prost::Message;

use super::{FlowRole, FlowStep, Instant, Sink, Slice, Track};
use flightrec_analysis::Names;

#[derive(Clone, PartialEq, Message)]
pub struct TracePacket {
    #[prost(uint64, optional, tag = "8")]
    pub timestamp: Option<u64>,
    #[prost(uint32, optional, tag = "10")]
    pub trusted_packet_sequence_id: Option<u32>,
    #[prost(message, optional, tag = "11")]
    pub track_event: Option<TrackEvent>,
    #[prost(message, optional, tag = "12")]
    pub interned_data: Option<InternedData>,
    #[prost(uint32, optional, tag = "13")]
    pub sequence_flags: Option<u32>,
    #[prost(message, optional, tag = "60")]
    pub track_descriptor: Option<TrackDescriptor>,
    #[prost(bool, optional, tag = "87")]
    pub first_packet_on_sequence: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TrackDescriptor {
    #[prost(uint64, optional, tag = "1")]
    pub uuid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "3")]
    pub process: Option<ProcessDescriptor>,
    #[prost(message, optional, tag = "4")]
    pub thread: Option<ThreadDescriptor>,
    #[prost(uint64, optional, tag = "5")]
    pub parent_uuid: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ProcessDescriptor {
    #[prost(int32, optional, tag = "1")]
    pub pid: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub process_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ThreadDescriptor {
    #[prost(int32, optional, tag = "1")]
    pub pid: Option<i32>,
    #[prost(int64, optional, tag = "2")]
    pub tid: Option<i64>,
    #[prost(string, optional, tag = "5")]
    pub thread_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TrackEvent {
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    pub category_iids: Vec<u64>,
    #[prost(message, repeated, tag = "4")]
    pub debug_annotations: Vec<DebugAnnotation>,
    /// `TrackEvent.Type`: see the `TYPE_*` constants.
    #[prost(int32, optional, tag = "9")]
    pub r#type: Option<i32>,
    #[prost(uint64, optional, tag = "10")]
    pub name_iid: Option<u64>,
    #[prost(uint64, optional, tag = "11")]
    pub track_uuid: Option<u64>,
    #[prost(string, optional, tag = "23")]
    pub name: Option<String>,
    #[prost(fixed64, repeated, packed = "false", tag = "47")]
    pub flow_ids: Vec<u64>,
    #[prost(fixed64, repeated, packed = "false", tag = "48")]
    pub terminating_flow_ids: Vec<u64>,
}

pub const TYPE_SLICE_BEGIN: i32 = 1;
pub const TYPE_SLICE_END: i32 = 2;
pub const TYPE_INSTANT: i32 = 3;

/// `TracePacket.SequenceFlags`.
pub const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
pub const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;

/// One of the `value` oneof's fields is set, and the name is interned.
#[derive(Clone, PartialEq, Message)]
pub struct DebugAnnotation {
    #[prost(uint64, optional, tag = "1")]
    pub name_iid: Option<u64>,
    #[prost(bool, optional, tag = "2")]
    pub bool_value: Option<bool>,
    #[prost(uint64, optional, tag = "3")]
    pub uint_value: Option<u64>,
    #[prost(int64, optional, tag = "4")]
    pub int_value: Option<i64>,
    #[prost(double, optional, tag = "5")]
    pub double_value: Option<f64>,
    #[prost(string, optional, tag = "6")]
    pub string_value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct InternedData {
    #[prost(message, repeated, tag = "1")]
    pub event_categories: Vec<InternedName>,
    #[prost(message, repeated, tag = "2")]
    pub event_names: Vec<InternedName>,
    #[prost(message, repeated, tag = "3")]
    pub debug_annotation_names: Vec<InternedName>,
}

/// `EventCategory`, `EventName` and `DebugAnnotationName` share this shape.
#[derive(Clone, PartialEq, Message)]
pub struct InternedName {
    #[prost(uint64, optional, tag = "1")]
    pub iid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
}

/// Where one recording's packets go in a trace that may hold several: its own packet
/// sequence (interning is per sequence) and its own range of track uuids.
#[derive(Debug, Clone)]
pub struct TraceSlot {
    pub sequence: u32,
    /// Added to every track uuid of this recording.
    pub uuid_base: u64,
    /// The process's pid and name in the trace, when they must differ from the recording's
    /// (two recordings with one pid, from two hosts, would otherwise be one process).
    pub pid: Option<i32>,
    pub process_name: Option<String>,
}

impl TraceSlot {
    /// The slot of the `k`th recording of a trace (0 for a trace of one).
    pub fn nth(k: usize) -> TraceSlot {
        TraceSlot {
            sequence: 1 + k as u32,
            uuid_base: (k as u64) << 48,
            pid: None,
            process_name: None,
        }
    }
}

const PROCESS_UUID: u64 = 1;

fn thread_uuid(index: u32) -> u64 {
    0x1_0000 + index as u64
}

/// Interned strings of one kind: iids start at 1 (0 means "not set").
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u64>,
}

impl Interner {
    /// The iid of `s`, adding it to `new` if this is its first use.
    fn intern(&mut self, s: &str, new: &mut Vec<InternedName>) -> u64 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.ids.len() as u64 + 1;
        self.ids.insert(s.to_owned(), id);
        new.push(InternedName {
            iid: Some(id),
            name: Some(s.to_owned()),
        });
        id
    }
}

pub struct PerfettoSink<'r, 'o> {
    rec: &'r Recording,
    names: Names<'r>,
    out: &'o mut dyn Write,
    buf: Vec<u8>,
    categories: Interner,
    event_names: Interner,
    annotation_names: Interner,
    async_tracks: HashMap<(u64, u32), u64>,
    /// Each task's own track, by its span.
    task_tracks: HashMap<u64, u64>,
    started: bool,
    slot: TraceSlot,
}

impl<'r, 'o> PerfettoSink<'r, 'o> {
    pub fn new(rec: &'r Recording, out: &'o mut dyn Write) -> PerfettoSink<'r, 'o> {
        PerfettoSink::in_slot(rec, out, TraceSlot::nth(0))
    }

    /// A sink for one of several recordings written into one trace.
    pub fn in_slot(
        rec: &'r Recording,
        out: &'o mut dyn Write,
        slot: TraceSlot,
    ) -> PerfettoSink<'r, 'o> {
        PerfettoSink {
            rec,
            names: Names::new(rec),
            out,
            buf: Vec::with_capacity(4096),
            categories: Interner::default(),
            event_names: Interner::default(),
            annotation_names: Interner::default(),
            async_tracks: HashMap::new(),
            task_tracks: HashMap::new(),
            started: false,
            slot,
        }
    }

    fn write_packet(&mut self, mut p: TracePacket) -> anyhow::Result<()> {
        if !self.started {
            self.started = true;
            self.write_descriptors()?;
        }
        p.trusted_packet_sequence_id = Some(self.slot.sequence);
        self.emit(&p)
    }

    fn emit(&mut self, p: &TracePacket) -> anyhow::Result<()> {
        self.buf.clear();
        // Trace.packet: field 1, length delimited.
        self.buf.push(0x0a);
        prost::encoding::encode_varint(p.encoded_len() as u64, &mut self.buf);
        p.encode(&mut self.buf)?;
        self.out.write_all(&self.buf)?;
        Ok(())
    }

    /// The process and thread tracks, first on the sequence, which also clears its
    /// interning state.
    fn write_descriptors(&mut self) -> anyhow::Result<()> {
        let pid = self.slot.pid.unwrap_or(self.rec.process.pid as i32);
        let service = self
            .slot
            .process_name
            .clone()
            .unwrap_or_else(|| self.rec.process.service.clone());
        self.emit(&TracePacket {
            trusted_packet_sequence_id: Some(self.slot.sequence),
            sequence_flags: Some(SEQ_INCREMENTAL_STATE_CLEARED),
            first_packet_on_sequence: Some(true),
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(self.slot.uuid_base + PROCESS_UUID),
                name: Some(service.clone()),
                process: Some(ProcessDescriptor {
                    pid: Some(pid),
                    process_name: Some(service),
                }),
                ..TrackDescriptor::default()
            }),
            ..TracePacket::default()
        })?;
        for t in &self.rec.threads {
            let p = TracePacket {
                trusted_packet_sequence_id: Some(self.slot.sequence),
                track_descriptor: Some(TrackDescriptor {
                    uuid: Some(self.slot.uuid_base + thread_uuid(t.index)),
                    name: Some(t.name.clone()),
                    parent_uuid: Some(self.slot.uuid_base + PROCESS_UUID),
                    thread: Some(ThreadDescriptor {
                        pid: Some(pid),
                        tid: Some(t.tid as i64),
                        thread_name: Some(t.name.clone()),
                    }),
                    ..TrackDescriptor::default()
                }),
                ..TracePacket::default()
            };
            self.emit(&p)?;
        }
        Ok(())
    }

    fn track_uuid(&mut self, track: Track, span_callsite: Option<u32>) -> anyhow::Result<u64> {
        Ok(match track {
            Track::Process => self.slot.uuid_base + PROCESS_UUID,
            Track::Thread(t) => self.slot.uuid_base + thread_uuid(t),
            Track::Task { span, .. } => match self.task_tracks.get(&span) {
                Some(&u) => u,
                // Declared by the task's first poll (`task_track`).
                None => anyhow::bail!("internal error: task {span} ends before it begins"),
            },
            Track::Async { span, thread } => {
                if let Some(&u) = self.async_tracks.get(&(span, thread)) {
                    return Ok(u);
                }
                let uuid = self.slot.uuid_base + (1 << 40) + self.async_tracks.len() as u64;
                self.async_tracks.insert((span, thread), uuid);
                let thread_name = self
                    .rec
                    .threads
                    .iter()
                    .find(|t| t.index == thread)
                    .map_or("?", |t| t.name.as_str());
                let name = format!(
                    "{} #{span} ({thread_name})",
                    self.names.callsite_name(span_callsite)
                );
                self.write_packet(TracePacket {
                    track_descriptor: Some(TrackDescriptor {
                        uuid: Some(uuid),
                        name: Some(name),
                        parent_uuid: Some(self.slot.uuid_base + PROCESS_UUID),
                        ..TrackDescriptor::default()
                    }),
                    ..TracePacket::default()
                })?;
                uuid
            }
        })
    }

    fn annotation(&mut self, name: &str, value: &Value, new: &mut InternedData) -> DebugAnnotation {
        let mut a = DebugAnnotation {
            name_iid: Some(
                self.annotation_names
                    .intern(name, &mut new.debug_annotation_names),
            ),
            ..DebugAnnotation::default()
        };
        match value {
            Value::I64(x) => a.int_value = Some(*x),
            Value::U64(x) => a.uint_value = Some(*x),
            Value::I128(x) => match i64::try_from(x.get()) {
                Ok(x) => a.int_value = Some(x),
                Err(_) => a.string_value = Some(x.to_string()),
            },
            Value::U128(x) => match u64::try_from(x.get()) {
                Ok(x) => a.uint_value = Some(x),
                Err(_) => a.string_value = Some(x.to_string()),
            },
            Value::F64(x) => a.double_value = Some(*x),
            Value::Bool(x) => a.bool_value = Some(*x),
            v => a.string_value = Some(v.to_text()),
        }
        a
    }

    fn annotations(
        &mut self,
        callsite: u32,
        fields: impl IntoIterator<Item = impl Borrow<FieldValue>>,
        new: &mut InternedData,
    ) -> Vec<DebugAnnotation> {
        fields
            .into_iter()
            .map(|f| {
                let f = f.borrow();
                let name = self.names.field_name(callsite, f.index);
                self.annotation(&name, &f.value, new)
            })
            .collect()
    }

    fn categories(&mut self, callsite: Option<u32>, new: &mut InternedData) -> Vec<u64> {
        match callsite.and_then(|c| self.names.callsite(c)) {
            Some(cs) => vec![
                self.categories
                    .intern(cs.level.as_str(), &mut new.event_categories),
                self.categories
                    .intern(&cs.target, &mut new.event_categories),
            ],
            None => Vec::new(),
        }
    }

    fn event_packet(&mut self, ts: i64, event: TrackEvent, new: InternedData) -> TracePacket {
        let has_new = !(new.event_categories.is_empty()
            && new.event_names.is_empty()
            && new.debug_annotation_names.is_empty());
        TracePacket {
            timestamp: Some(ts.max(0) as u64),
            track_event: Some(event),
            interned_data: has_new.then_some(new),
            sequence_flags: Some(SEQ_NEEDS_INCREMENTAL_STATE),
            ..TracePacket::default()
        }
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        if !self.started {
            self.started = true;
            self.write_descriptors()?;
        }
        self.out.flush()?;
        Ok(())
    }
}

fn flow_ids(flows: &[FlowStep]) -> (Vec<u64>, Vec<u64>) {
    let mut ids = Vec::new();
    let mut terminating = Vec::new();
    for f in flows {
        match f.role {
            FlowRole::Start | FlowRole::Step => ids.push(f.id),
            FlowRole::End => terminating.push(f.id),
        }
    }
    (ids, terminating)
}

impl PerfettoSink<'_, '_> {
    /// A task's track, a child of the process track named after the task, declared at its
    /// first poll.
    fn task_track(&mut self, s: &Slice<'_>) -> anyhow::Result<u64> {
        if let Some(&u) = self.task_tracks.get(&s.span) {
            return Ok(u);
        }
        let uuid = self.slot.uuid_base + (2 << 40) + self.task_tracks.len() as u64;
        self.task_tracks.insert(s.span, uuid);
        let name = flightrec_analysis::tasks::task_name(&self.names, s.callsite, s.fields);
        self.write_packet(TracePacket {
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(uuid),
                name: Some(name),
                parent_uuid: Some(self.slot.uuid_base + PROCESS_UUID),
                ..TrackDescriptor::default()
            }),
            ..TracePacket::default()
        })?;
        Ok(uuid)
    }

    /// A poll on a task's track: named after the worker thread that ran it, so polls are
    /// coloured by worker.
    fn poll(&mut self, s: &Slice<'_>, thread: u32) -> anyhow::Result<()> {
        let track_uuid = self.task_track(s)?;
        let (thread_name, tid) = self.names.thread(thread);
        let mut new = InternedData::default();
        let name_iid = self
            .event_names
            .intern(&format!("{thread_name} [{tid}]"), &mut new.event_names);
        let category_iids = vec![self.categories.intern("poll", &mut new.event_categories)];
        let debug_annotations = vec![
            self.annotation("span_id", &Value::U64(s.span), &mut new),
            self.annotation("tid", &Value::U64(tid), &mut new),
        ];
        let p = self.event_packet(
            s.ts,
            TrackEvent {
                category_iids,
                debug_annotations,
                r#type: Some(TYPE_SLICE_BEGIN),
                name_iid: Some(name_iid),
                track_uuid: Some(track_uuid),
                ..TrackEvent::default()
            },
            new,
        );
        self.write_packet(p)
    }
}

impl Sink for PerfettoSink<'_, '_> {
    fn begin(&mut self, s: &Slice<'_>) -> anyhow::Result<()> {
        if let Track::Task { thread, .. } = s.track {
            return self.poll(s, thread);
        }
        let track_uuid = self.track_uuid(s.track, s.callsite)?;
        let mut new = InternedData::default();
        let name_iid = self
            .event_names
            .intern(self.names.callsite_name(s.callsite), &mut new.event_names);
        let category_iids = self.categories(s.callsite, &mut new);
        let mut debug_annotations = match s.callsite {
            Some(cs) => self.annotations(cs, s.fields, &mut new),
            None => Vec::new(),
        };
        debug_annotations.push(self.annotation("span_id", &Value::U64(s.span), &mut new));
        let (flow_ids, terminating_flow_ids) = flow_ids(s.flows);
        let p = self.event_packet(
            s.ts,
            TrackEvent {
                category_iids,
                debug_annotations,
                r#type: Some(TYPE_SLICE_BEGIN),
                name_iid: Some(name_iid),
                track_uuid: Some(track_uuid),
                flow_ids,
                terminating_flow_ids,
                ..TrackEvent::default()
            },
            new,
        );
        self.write_packet(p)
    }

    fn end(&mut self, ts: i64, track: Track, _span: u64) -> anyhow::Result<()> {
        let track_uuid = self.track_uuid(track, None)?;
        let p = self.event_packet(
            ts,
            TrackEvent {
                r#type: Some(TYPE_SLICE_END),
                track_uuid: Some(track_uuid),
                ..TrackEvent::default()
            },
            InternedData::default(),
        );
        self.write_packet(p)
    }

    fn instant(&mut self, i: &Instant<'_>) -> anyhow::Result<()> {
        let track_uuid = self.track_uuid(i.track, None)?;
        let mut new = InternedData::default();
        let mut event = TrackEvent {
            r#type: Some(TYPE_INSTANT),
            track_uuid: Some(track_uuid),
            ..TrackEvent::default()
        };
        match i.record {
            None if i.finding.is_some() => {
                let f = i.finding.expect("checked");
                event.name = Some(super::finding_title(f));
                event.debug_annotations = vec![
                    self.annotation("kind", &Value::Str(f.kind.slug().into()), &mut new),
                    self.annotation("severity", &Value::Str(f.severity.slug().into()), &mut new),
                    self.annotation(
                        "records",
                        &Value::Str(
                            f.records
                                .iter()
                                .map(|e| e.record.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                                .into(),
                        ),
                        &mut new,
                    ),
                ];
                if let Some(o) = &f.object {
                    event.debug_annotations.push(self.annotation(
                        "object",
                        &Value::Str(o.as_str().into()),
                        &mut new,
                    ));
                }
            }
            Some(r) => {
                event.name = Some(self.names.title(r).into_owned());
                event.category_iids = self.categories(Some(r.callsite), &mut new);
                event.debug_annotations = self.annotations(r.callsite, &r.fields, &mut new);
                if let Some(cs) = self.names.callsite(r.callsite) {
                    if let (Some(file), Some(line)) = (&cs.file, cs.line) {
                        let at = Value::Str(format!("{file}:{line}").into());
                        event
                            .debug_annotations
                            .push(self.annotation("source", &at, &mut new));
                    }
                }
                if let Some(f) = r.follows().map(NonZeroU64::get) {
                    event.debug_annotations.push(self.annotation(
                        "span_id",
                        &Value::U64(r.span),
                        &mut new,
                    ));
                    event.debug_annotations.push(self.annotation(
                        "follows",
                        &Value::U64(f),
                        &mut new,
                    ));
                }
            }
            None => {
                // The trigger.
                let t = &self.rec.trigger;
                event.name = Some(super::trigger_title(self.rec));
                event.debug_annotations = vec![
                    self.annotation("reason", &Value::Str(t.reason.slug().into()), &mut new),
                    self.annotation("message", &Value::Str(t.message.as_str().into()), &mut new),
                    self.annotation("tid", &Value::U64(t.tid), &mut new),
                    self.annotation("signal", &Value::U64(t.signal as u64), &mut new),
                ];
            }
        }
        (event.flow_ids, event.terminating_flow_ids) = flow_ids(i.flows);
        let p = self.event_packet(i.ts, event, new);
        self.write_packet(p)
    }
}
