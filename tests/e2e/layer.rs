//! The layer as tracing users expect it: every value type, the whole span lifecycle with
//! ids unique across tracing's id reuse, composition with other layers and per-layer filters.

use std::collections::HashSet;
use std::num::NonZeroU64;

use flightrec_format::{RecordKind, Value, Wide};
use tracing_subscriber::prelude::*;

use crate::helpers::*;

#[derive(Debug)]
struct Outer(std::io::Error);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn fields_by_name(
    rec: &flightrec_format::Recording,
    r: &flightrec_format::Record,
) -> Vec<(String, Value)> {
    let cs = &rec.callsites[&r.callsite];
    r.fields
        .iter()
        .map(|f| (cs.fields[f.index as usize].clone(), f.value.clone()))
        .collect()
}

#[test]
fn every_value_type_is_recorded_with_its_type() {
    let dir = scratch();
    let rec = recorder(dir.path(), "types", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        let err = Outer(std::io::Error::other("connection reset"));
        tracing::error!(
            i = -42i64,
            u = u64::MAX,
            wide = i128::MIN,
            uwide = u128::MAX,
            f = 2.5f64,
            b = true,
            s = "plain",
            bytes = &b"\x00\xff"[..],
            dbg = ?vec![1, 2],
            disp = %"shown",
            error = &err as &dyn std::error::Error,
            "all the types"
        );
    });
    let r = flightrec_format::open(rec.ring_path()).unwrap();
    let ev = r
        .records
        .iter()
        .find(|x| x.kind == RecordKind::Event)
        .unwrap();
    let got = fields_by_name(&r, ev);
    let want = vec![
        ("message".to_string(), Value::Debug("all the types".into())),
        ("i".into(), Value::I64(-42)),
        ("u".into(), Value::U64(u64::MAX)),
        ("wide".into(), Value::I128(Wide(i128::MIN))),
        ("uwide".into(), Value::U128(Wide(u128::MAX))),
        ("f".into(), Value::F64(2.5)),
        ("b".into(), Value::Bool(true)),
        ("s".into(), Value::Str("plain".into())),
        ("bytes".into(), Value::Bytes(vec![0, 255].into())),
        ("dbg".into(), Value::Debug("[1, 2]".into())),
        ("disp".into(), Value::Debug("shown".into())),
        (
            "error".into(),
            Value::Error("request failed: connection reset".into()),
        ),
    ];
    for w in &want {
        assert!(got.contains(w), "missing {w:?} in {got:?}");
    }
    let cs = &r.callsites[&ev.callsite];
    assert_eq!(cs.level, flightrec_format::Level::Error);
    assert_eq!(cs.file.as_deref(), Some(file!()));
    assert!(cs.line.is_some());
}

#[test]
fn spans_keep_unique_ids_parents_records_and_links() {
    let dir = scratch();
    let rec = recorder(dir.path(), "spans", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        let root = tracing::info_span!("root", late = tracing::field::Empty);
        root.record("late", 5u64);
        let _r = root.enter();
        // tracing reuses the Ids of closed spans; the recording must not.
        for i in 0..1000u64 {
            let s = tracing::debug_span!("child", i);
            s.follows_from(&root);
            let _g = s.enter();
            tracing::trace!("inside");
        }
        let explicit = tracing::info_span!(parent: None, "detached");
        tracing::info!(parent: &explicit, "explicitly parented");
    });
    let r = flightrec_format::open(rec.ring_path()).unwrap();
    let new: Vec<_> = r
        .records
        .iter()
        .filter(|x| x.kind == RecordKind::SpanNew)
        .collect();
    assert_eq!(new.len(), 1002);
    let ids: HashSet<u64> = new.iter().map(|x| x.span).collect();
    assert_eq!(ids.len(), 1002, "span ids reused within the recording");
    let root = new[0].span;
    assert_eq!(new[0].parent().map(NonZeroU64::get), None);
    for child in &new[1..1001] {
        assert_eq!(child.parent().map(NonZeroU64::get), Some(root));
    }
    assert_eq!(
        new[1001].parent().map(NonZeroU64::get),
        None,
        "parent: None is a root"
    );
    let rec_rec = r
        .records
        .iter()
        .find(|x| x.kind == RecordKind::SpanRecord)
        .unwrap();
    assert_eq!(rec_rec.span, root);
    assert_eq!(
        fields_by_name(&r, rec_rec),
        vec![("late".to_string(), Value::U64(5))]
    );
    let follows = r
        .records
        .iter()
        .filter(|x| x.kind == RecordKind::FollowsFrom)
        .count();
    assert_eq!(follows, 1000);
    assert!(r
        .records
        .iter()
        .filter(|x| x.kind == RecordKind::FollowsFrom)
        .all(|x| x.follows().map(NonZeroU64::get) == Some(root)));
    for kind in [RecordKind::Enter, RecordKind::Exit, RecordKind::Close] {
        assert_eq!(
            r.records.iter().filter(|x| x.kind == kind).count(),
            1001 + (kind == RecordKind::Close) as usize
        );
    }
    let inside: Vec<_> = r
        .records
        .iter()
        .filter(|x| x.kind == RecordKind::Event && x.spans.len() == 2)
        .collect();
    assert_eq!(inside.len(), 1000);
    assert!(inside
        .iter()
        .all(|x| x.spans[0] == root && x.parent().map(NonZeroU64::get) == Some(x.spans[1])));
    let explicit = r
        .records
        .iter()
        .rev()
        .find(|x| x.kind == RecordKind::Event)
        .unwrap();
    assert_eq!(explicit.parent().map(NonZeroU64::get), Some(new[1001].span));
}

#[test]
fn composes_with_fmt_and_per_layer_filters() {
    let dir = scratch();
    let rec = recorder(dir.path(), "filters", 1 << 20);
    let subscriber = tracing_subscriber::registry()
        .with(
            rec.layer()
                .with_filter(tracing_subscriber::EnvFilter::new("info,noisy=off")),
        )
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("filtered out by level");
        tracing::info!(target: "noisy", "filtered out by target");
        tracing::info!("kept");
        let s = tracing::debug_span!("filtered span");
        let _g = s.enter();
        tracing::warn!("kept, outside any recorded span");
    });
    let r = flightrec_format::open(rec.ring_path()).unwrap();
    let msgs: Vec<String> = r
        .records
        .iter()
        .map(|x| match &fields_by_name(&r, x)[0].1 {
            Value::Debug(s) | Value::Str(s) => s.to_string(),
            v => format!("{v:?}"),
        })
        .collect();
    assert_eq!(msgs, ["kept", "kept, outside any recorded span"]);
    assert!(r.records[1].spans.is_empty());
}

#[test]
fn thousands_of_short_lived_threads_fit_in_bounded_memory() {
    let dir = scratch();
    let rec = recorder(dir.path(), "threads", 1 << 20);
    let d = dispatch(&rec);
    for batch in 0..40 {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let d = d.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        tracing::info!(batch, i, "short life")
                    });
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
    // The ring's size never grows: its capacity, and the stack area after it.
    assert_eq!(
        std::fs::metadata(rec.ring_path()).unwrap().len(),
        (1 << 20)
            + flightrec_format::layout::stacks::area_size(tracing_flightrec::DEFAULT_STACK_SLOTS)
    );
    let r = flightrec_format::open(rec.ring_path()).unwrap();
    assert_eq!(r.threads.len(), 2000);
    // Chunks of exited threads are recycled: the newest threads' events are all there.
    let events = r.records.len() as u64;
    let lost: u64 = r.threads.iter().map(|t| t.overwritten + t.dropped).sum();
    let gone = r.threads.iter().filter(|t| t.fully_overwritten).count() as u64;
    assert_eq!(events + lost + gone, 2000);
    assert!(r
        .records
        .iter()
        .any(|x| fields_by_name(&r, x).contains(&("batch".into(), Value::I64(39)))));
}

/// One layer cloned into two subscribers, whose registries both number spans from 1: each
/// subscriber's enters are recorded against its own span.
#[test]
fn a_layer_cloned_into_two_subscribers_keeps_their_spans_apart() {
    let dir = scratch();
    let rec = recorder(dir.path(), "two-subscribers", 1 << 20);
    let layer = rec.layer();
    let first = tracing::Dispatch::new(tracing_subscriber::registry().with(layer.clone()));
    let second = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let a = tracing::dispatcher::with_default(&first, || tracing::info_span!("in_first"));
    let b = tracing::dispatcher::with_default(&second, || tracing::info_span!("in_second"));
    assert_eq!(a.id(), b.id(), "both registries gave out the same id");
    for _ in 0..3 {
        tracing::dispatcher::with_default(&first, || drop(a.enter()));
        tracing::dispatcher::with_default(&second, || drop(b.enter()));
    }
    let r = flightrec_format::open(rec.ring_path()).unwrap();
    let name_of = |span: u64| {
        let cs = r.span_callsites[&span];
        r.callsites[&cs].name.clone()
    };
    let entered: Vec<String> = r
        .records
        .iter()
        .filter(|x| x.kind == RecordKind::Enter)
        .map(|x| name_of(x.span))
        .collect();
    assert_eq!(
        entered,
        ["in_first", "in_second"].repeat(3),
        "enters recorded against the wrong span"
    );
}
