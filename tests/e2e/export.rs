//! `flightrec export`: the Perfetto trace decoded with Perfetto's own message definitions,
//! and the Chrome JSON checked against the trace-event format's rules, both against what
//! `cat --json` says the dump holds.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use tracing::dispatcher::with_default;

use crate::helpers::*;

const WORKERS: usize = 4;
const INNER: u64 = 50;

/// A dump with nested spans on four threads, a span entered on two threads one after the
/// other, a `follows_from` link, spans that exit out of nesting order, and events with
/// fields.
fn record_workload(dir: &Path) -> PathBuf {
    let rec = recorder(dir, "exporter", 8 << 20);
    let d = dispatch(&rec);
    with_default(&d, || {
        let cause = tracing::info_span!("cause");
        cause.in_scope(|| tracing::info!("caused"));
        let job = tracing::info_span!("job", id = 7u64);
        job.follows_from(&cause);
        // Out of nesting order: `a` exits while `b`, entered inside it, is still entered.
        let a = tracing::info_span!("unnested_a").entered();
        let b = tracing::info_span!("unnested_b").entered();
        tracing::info!("inside both");
        drop(a);
        drop(b);
        on_threads(&d, WORKERS, "x", |t| {
            let _outer = tracing::info_span!("outer", t = t as u64).entered();
            for i in 0..INNER {
                let _inner = tracing::debug_span!("inner", i).entered();
                tracing::info!(t = t as u64, seq = i, "work");
            }
        });
        for name in ["m0", "m1"] {
            let (d, job) = (d.clone(), job.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    with_default(&d, || {
                        let _g = job.enter();
                        tracing::warn!(worker = name, "handled");
                    })
                })
                .unwrap()
                .join()
                .unwrap();
        }
    });
    rec.snapshot().expect("snapshot")
}

pub(crate) fn export(dump: &Path, format: &str, out: &Path) {
    export_with(dump, format, out, &[]);
}

/// `export`, with more options (`--findings`).
pub(crate) fn export_with(dump: &Path, format: &str, out: &Path, more: &[&str]) {
    let mut args = vec![
        "export",
        dump.to_str().unwrap(),
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let o = flightrec(&args);
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A Python with Perfetto's generated protobuf classes (`pip install perfetto protobuf`).
/// `scripts/test.sh` provides one in FLIGHTREC_PYTHON and requires it; a bare `cargo test`
/// without it skips the Perfetto decoding tests and says so.
pub(crate) fn perfetto_python() -> Option<String> {
    let python = std::env::var("FLIGHTREC_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args([
            "-c",
            "from perfetto.protos.perfetto.trace import perfetto_trace_pb2",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    if std::env::var_os("FLIGHTREC_REQUIRE_PERFETTO_PY").is_some() {
        panic!("{python} cannot import perfetto_trace_pb2; run scripts/test.sh");
    }
    not_run("no Python with the perfetto package (scripts/test.sh installs one)");
    None
}

/// The trace as Perfetto's own classes decode it (packets as JSON objects).
pub(crate) fn decode_perfetto(python: &str, trace: &Path) -> Vec<Json> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/support/perfetto_decode.py");
    let o = Command::new(python)
        .arg(script)
        .arg(trace)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "Perfetto's decoder rejected the trace: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["unknown_fields"],
        serde_json::json!([]),
        "fields Perfetto does not define"
    );
    v["trace"]["packet"].as_array().unwrap().clone()
}

pub(crate) fn num(v: &Json) -> u64 {
    // MessageToDict writes 64-bit integers as strings.
    match v {
        Json::String(s) => s.parse().unwrap(),
        v => v.as_u64().unwrap(),
    }
}

/// A decoded Perfetto trace, with interned names resolved.
#[derive(Default, Debug)]
pub(crate) struct Perfetto {
    pub(crate) process: Option<(u64, Json)>,
    /// uuid -> (thread name, tid) for thread tracks.
    pub(crate) threads: HashMap<u64, (String, u64)>,
    /// uuid -> name for other tracks (async tracks), with their parent.
    pub(crate) others: HashMap<u64, (String, u64)>,
    /// Per track: (ts, type, name, annotations, flow ids, terminating flow ids).
    pub(crate) events: HashMap<u64, Vec<PEvent>>,
}

#[derive(Debug, Clone)]
pub(crate) struct PEvent {
    pub(crate) ts: u64,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) args: HashMap<String, Json>,
    flows: Vec<u64>,
    terminating: Vec<u64>,
}

pub(crate) fn parse_perfetto(packets: &[Json]) -> Perfetto {
    let mut p = Perfetto::default();
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut cats: HashMap<u64, String> = HashMap::new();
    let mut ann: HashMap<u64, String> = HashMap::new();
    assert_eq!(
        packets[0]["sequence_flags"], 1,
        "the first packet clears the sequence's incremental state"
    );
    for pk in packets {
        assert_eq!(pk["trusted_packet_sequence_id"], 1);
        if let Some(i) = pk.get("interned_data") {
            for (key, map) in [
                ("event_names", &mut names),
                ("event_categories", &mut cats),
                ("debug_annotation_names", &mut ann),
            ] {
                for e in i[key].as_array().into_iter().flatten() {
                    let old = map.insert(num(&e["iid"]), e["name"].as_str().unwrap().into());
                    assert!(old.is_none(), "iid interned twice: {e}");
                }
            }
        }
        if let Some(t) = pk.get("track_descriptor") {
            let uuid = num(&t["uuid"]);
            if let Some(pr) = t.get("process") {
                p.process = Some((uuid, pr.clone()));
            } else if let Some(th) = t.get("thread") {
                p.threads.insert(
                    uuid,
                    (th["thread_name"].as_str().unwrap().into(), num(&th["tid"])),
                );
            } else {
                p.others.insert(
                    uuid,
                    (t["name"].as_str().unwrap().into(), num(&t["parent_uuid"])),
                );
            }
        }
        if let Some(e) = pk.get("track_event") {
            assert_eq!(
                pk["sequence_flags"], 2,
                "interned data is used: SEQ_NEEDS_INCREMENTAL_STATE"
            );
            let track = num(&e["track_uuid"]);
            assert!(
                p.threads.contains_key(&track)
                    || p.others.contains_key(&track)
                    || p.process.as_ref().is_some_and(|(u, _)| *u == track),
                "an event on an undeclared track: {pk}"
            );
            let name = match (e.get("name_iid"), e.get("name")) {
                (Some(iid), _) => names
                    .get(&num(iid))
                    .unwrap_or_else(|| panic!("name iid not interned before use: {pk}"))
                    .clone(),
                (None, Some(n)) => n.as_str().unwrap().into(),
                (None, None) => String::new(),
            };
            for c in e["category_iids"].as_array().into_iter().flatten() {
                assert!(cats.contains_key(&num(c)), "category not interned: {pk}");
            }
            let mut args = HashMap::new();
            for a in e["debug_annotations"].as_array().into_iter().flatten() {
                let key = ann
                    .get(&num(&a["name_iid"]))
                    .unwrap_or_else(|| panic!("annotation name not interned: {pk}"))
                    .clone();
                let value = [
                    "uint_value",
                    "int_value",
                    "string_value",
                    "bool_value",
                    "double_value",
                ]
                .iter()
                .find_map(|k| a.get(*k).cloned())
                .unwrap_or(Json::Null);
                args.insert(key, value);
            }
            let ids =
                |k: &str| -> Vec<u64> { e[k].as_array().into_iter().flatten().map(num).collect() };
            p.events.entry(track).or_default().push(PEvent {
                ts: num(&pk["timestamp"]),
                kind: e["type"].as_str().unwrap().into(),
                name,
                args,
                flows: ids("flow_ids"),
                terminating: ids("terminating_flow_ids"),
            });
        }
    }
    p
}

/// Per track: slices as (name, begin, end, depth), checking that ends match begins,
/// nothing is left open, and no slice ends before it begins.
pub(crate) fn slices(events: &[PEvent]) -> Vec<(String, u64, u64, usize)> {
    let mut open: Vec<(String, u64)> = Vec::new();
    let mut out = Vec::new();
    let mut last = 0;
    for e in events {
        assert!(e.ts >= last, "events out of time order on a track");
        last = e.ts;
        match e.kind.as_str() {
            "TYPE_SLICE_BEGIN" => open.push((e.name.clone(), e.ts)),
            "TYPE_SLICE_END" => {
                let (name, begin) = open.pop().expect("an end without a begin");
                assert!(e.ts >= begin, "negative duration for {name}");
                out.push((name, begin, e.ts, open.len()));
            }
            "TYPE_INSTANT" => {}
            k => panic!("unexpected event type {k}"),
        }
    }
    assert!(open.is_empty(), "slices left open: {open:?}");
    out
}

#[test]
fn the_perfetto_export_decodes_with_perfettos_own_definitions_and_matches_the_dump() {
    let Some(python) = perfetto_python() else {
        return;
    };
    let dir = scratch();
    let dump = record_workload(dir.path());
    let out = dir.path().join("out.pftrace");
    export(&dump, "perfetto", &out);
    let p = parse_perfetto(&decode_perfetto(&python, &out));
    let info = info_json(&dump);
    let records = cat_json(&dump);

    // Tracks: the process, and one per thread with its name and tid.
    let (process_uuid, process) = p.process.clone().expect("a process track");
    assert_eq!(process["pid"], info["pid"]);
    assert_eq!(process["process_name"], "exporter");
    let want: HashSet<(String, u64)> = info["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["tid"].as_u64().unwrap(),
            )
        })
        .collect();
    let got: HashSet<(String, u64)> = p.threads.values().cloned().collect();
    assert_eq!(got, want);
    assert_eq!(p.threads.len(), 1 + WORKERS + 2);
    let track_of = |name: &str| {
        *p.threads
            .iter()
            .find(|(_, (n, _))| n == name)
            .unwrap_or_else(|| panic!("no track for {name}"))
            .0
    };

    // Slices: each worker's outer span holds its INNER inner spans, properly nested.
    for t in 0..WORKERS {
        let s = slices(&p.events[&track_of(&format!("x{t}"))]);
        let outer: Vec<_> = s.iter().filter(|x| x.0 == "outer").collect();
        assert_eq!(outer.len(), 1);
        let inner: Vec<_> = s.iter().filter(|x| x.0 == "inner").collect();
        assert_eq!(inner.len() as u64, INNER);
        for i in &inner {
            assert_eq!(i.3, 1, "inner nests in outer");
            assert!(i.1 >= outer[0].1 && i.2 <= outer[0].2);
        }
    }
    // Every track balances (checked by `slices`), async tracks included.
    for events in p.events.values() {
        slices(events);
    }

    // Instants: one per event and follows_from record, with their fields.
    let instants: Vec<&PEvent> = p
        .events
        .values()
        .flatten()
        .filter(|e| e.kind == "TYPE_INSTANT" && !e.name.starts_with("flightrec trigger"))
        .collect();
    let expected = records
        .iter()
        .filter(|r| r["kind"] == "event" || r["kind"] == "follows_from")
        .count();
    assert_eq!(instants.len(), expected);
    for r in records.iter().filter(|r| r["fields"]["message"] == "work") {
        let ts = r["ts"].as_u64().unwrap();
        let e = p.events[&track_of(r["thread"].as_str().unwrap())]
            .iter()
            .find(|e| e.ts == ts && e.kind == "TYPE_INSTANT")
            .unwrap_or_else(|| panic!("no instant for {r}"));
        assert_eq!(e.name, "work");
        assert_eq!(num(&e.args["seq"]), r["fields"]["seq"].as_u64().unwrap());
        assert_eq!(num(&e.args["t"]), r["fields"]["t"].as_u64().unwrap());
    }

    // The span that exits out of nesting order is on a track of its own.
    let (async_uuid, (_, parent)) = p
        .others
        .iter()
        .find(|(_, (n, _))| n.starts_with("unnested_a"))
        .expect("an async track for the unnested span");
    assert_eq!(*parent, process_uuid);
    assert_eq!(slices(&p.events[async_uuid]).len(), 1);
    let main = slices(&p.events[&track_of(std::thread::current().name().unwrap())]);
    assert!(main.iter().any(|s| s.0 == "unnested_b"));
    assert!(!main.iter().any(|s| s.0 == "unnested_a"));

    // Flows: the job's entries on m0 and m1 are linked; the follows_from link starts at the
    // cause's slice and ends at the follows_from instant.
    let begin = |track: u64, name: &str| -> PEvent {
        p.events[&track]
            .iter()
            .find(|e| e.kind == "TYPE_SLICE_BEGIN" && e.name == name)
            .unwrap_or_else(|| panic!("no {name} slice"))
            .clone()
    };
    let (j0, j1) = (begin(track_of("m0"), "job"), begin(track_of("m1"), "job"));
    assert_eq!(j0.flows.len(), 1, "{j0:?}");
    assert_eq!(j1.terminating, j0.flows, "the hand-over flow ends on m1");
    assert_eq!(num(&j0.args["id"]), 7);
    let main_track = track_of(std::thread::current().name().unwrap());
    let cause = begin(main_track, "cause");
    let link = p.events[&main_track]
        .iter()
        .find(|e| e.name == "job follows cause")
        .expect("a follows_from instant");
    assert_eq!(cause.flows.len(), 1);
    assert_eq!(link.terminating, cause.flows);

    // The trigger, on the process track.
    let trig = p.events[&process_uuid]
        .iter()
        .find(|e| e.name == "flightrec trigger: snapshot")
        .expect("the trigger instant");
    assert_eq!(trig.args["reason"], "snapshot");
}

/// Chrome trace-event rules: B/E pairs on the same thread and properly nested, E never
/// before its B, async b/e matched by id, metadata naming every thread.
fn check_chrome(events: &[Json]) -> HashMap<u64, Vec<(String, f64, f64)>> {
    let mut open: HashMap<u64, Vec<(String, f64)>> = HashMap::new();
    let mut async_open: HashMap<String, Vec<f64>> = HashMap::new();
    let mut done: HashMap<u64, Vec<(String, f64, f64)>> = HashMap::new();
    let mut last: HashMap<u64, f64> = HashMap::new();
    for e in events {
        let ph = e["ph"].as_str().unwrap();
        if ph == "M" {
            continue;
        }
        let tid = e["tid"].as_u64().unwrap();
        let ts = e["ts"].as_f64().expect("ts is a number");
        assert!(e["pid"].is_u64());
        let prev = last.entry(tid).or_insert(f64::MIN);
        assert!(ts >= *prev, "time goes back on thread {tid}: {e}");
        *prev = ts;
        match ph {
            "B" => open
                .entry(tid)
                .or_default()
                .push((e["name"].as_str().unwrap().into(), ts)),
            "E" => {
                let (name, begin) = open
                    .get_mut(&tid)
                    .and_then(|v| v.pop())
                    .unwrap_or_else(|| panic!("E without B on thread {tid}: {e}"));
                assert_eq!(e["name"], name.as_str(), "E closes the innermost B");
                assert!(ts >= begin, "negative duration");
                done.entry(tid).or_default().push((name, begin, ts));
            }
            "b" => async_open
                .entry(e["id"].as_str().unwrap().into())
                .or_default()
                .push(ts),
            "e" => {
                let begin = async_open
                    .get_mut(e["id"].as_str().unwrap())
                    .and_then(|v| v.pop())
                    .expect("e without b");
                assert!(ts >= begin);
            }
            "i" | "s" | "t" | "f" => {}
            p => panic!("unexpected phase {p}"),
        }
    }
    for (tid, v) in &open {
        assert!(v.is_empty(), "B without E on thread {tid}: {v:?}");
    }
    for (id, v) in &async_open {
        assert!(v.is_empty(), "b without e for {id}");
    }
    done
}

#[test]
fn the_chrome_export_follows_the_trace_event_rules_with_microsecond_times() {
    let dir = scratch();
    let dump = record_workload(dir.path());
    let out = dir.path().join("out.json");
    export(&dump, "chrome", &out);
    let doc: Json = serde_json::from_slice(&std::fs::read(&out).unwrap()).expect("valid JSON");
    let events = doc["traceEvents"].as_array().unwrap();
    let info = info_json(&dump);
    let tid_names: HashMap<u64, String> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    for t in info["threads"].as_array().unwrap() {
        assert_eq!(
            tid_names.get(&t["tid"].as_u64().unwrap()),
            Some(&t["name"].as_str().unwrap().to_string()),
            "thread_name metadata for {t}"
        );
    }
    let done = check_chrome(events);
    let inner: usize = done.values().flatten().filter(|s| s.0 == "inner").count();
    assert_eq!(inner as u64, WORKERS as u64 * INNER);

    // Microseconds since otherData.origin_unix_ns, exact to the nanosecond.
    let origin = doc["otherData"]["origin_unix_ns"].as_i64().unwrap();
    let records = cat_json(&dump);
    let work: Vec<&Json> = events
        .iter()
        .filter(|e| e["ph"] == "i" && e["name"] == "work")
        .collect();
    assert_eq!(work.len() as u64, WORKERS as u64 * INNER);
    let want: HashSet<(i64, u64)> = records
        .iter()
        .filter(|r| r["fields"]["message"] == "work")
        .map(|r| (r["ts"].as_i64().unwrap(), r["tid"].as_u64().unwrap()))
        .collect();
    for e in work {
        let ns = origin + (e["ts"].as_f64().unwrap() * 1000.0).round() as i64;
        assert!(
            want.contains(&(ns, e["tid"].as_u64().unwrap())),
            "no event at {ns} on {}",
            e["tid"]
        );
    }
    // Flows: each start has its finish.
    let ids = |ph: &str| -> HashSet<u64> {
        events
            .iter()
            .filter(|e| e["ph"] == ph)
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids("s").len(), 2, "the hand-over and the follows_from link");
    assert_eq!(ids("s"), ids("f"));
}

#[test]
fn a_wrapped_ring_exports_its_open_spans_from_the_start_of_the_data() {
    let dir = scratch();
    let rec = recorder(dir.path(), "wrapped", 256 << 10);
    let d = dispatch(&rec);
    let dump = with_default(&d, || {
        let _long = tracing::info_span!("long").entered();
        for i in 0..40_000u64 {
            let _tick = tracing::debug_span!("tick", i).entered();
            tracing::info!(i, "step");
        }
        rec.snapshot().unwrap()
    });
    let info = info_json(&dump);
    assert!(
        info["threads"][0]["overwritten"].as_u64().unwrap() > 0,
        "the ring wrapped"
    );
    let records = cat_json(&dump);
    let first = records[0]["ts"].as_i64().unwrap();

    let out = dir.path().join("w.json");
    export(&dump, "chrome", &out);
    let doc: Json = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let origin = doc["otherData"]["origin_unix_ns"].as_i64().unwrap();
    let done = check_chrome(doc["traceEvents"].as_array().unwrap());
    let long: Vec<_> = done.values().flatten().filter(|s| s.0 == "long").collect();
    assert_eq!(long.len(), 1, "the span whose start was overwritten");
    assert_eq!(
        origin + (long[0].1 * 1000.0).round() as i64,
        first,
        "it starts with the thread's data"
    );

    if let Some(python) = perfetto_python() {
        let out = dir.path().join("w.pftrace");
        export(&dump, "perfetto", &out);
        let p = parse_perfetto(&decode_perfetto(&python, &out));
        let mut all = Vec::new();
        for events in p.events.values() {
            all.extend(slices(events)); // balanced, no negative durations
        }
        let long: Vec<_> = all.iter().filter(|s| s.0 == "long").collect();
        assert_eq!(long.len(), 1);
        assert_eq!(long[0].1 as i64, first);
    }
}

#[test]
fn export_writes_to_stdout_and_refuses_bad_input_without_leaving_a_file() {
    let dir = scratch();
    let dump = record_workload(dir.path());
    let o = flightrec(&[
        "export",
        dump.to_str().unwrap(),
        "--format",
        "chrome",
        "-o",
        "-",
    ]);
    assert!(o.status.success());
    let doc: Json = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert!(doc["traceEvents"].as_array().unwrap().len() > 100);

    let junk = dir.path().join("junk.flightrec");
    std::fs::write(&junk, b"this is not a dump at all, not even close").unwrap();
    for (input, why) in [
        (dir.path().join("missing.flightrec"), "cannot read"),
        (junk, "not a flightrec"),
    ] {
        let out = dir.path().join("never.pftrace");
        let o = flightrec(&[
            "export",
            input.to_str().unwrap(),
            "--format",
            "perfetto",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
    let o = flightrec(&[
        "export",
        dump.to_str().unwrap(),
        "--format",
        "svg",
        "-o",
        "-",
    ]);
    assert!(!o.status.success());
    // A directory that does not exist: an error, and the dump is untouched.
    let before = std::fs::read(&dump).unwrap();
    let o = flightrec(&[
        "export",
        dump.to_str().unwrap(),
        "--format",
        "chrome",
        "-o",
        "/nonexistent-dir/x.json",
    ]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&dump).unwrap(), before);
}

/// The files `pid` has open under `dir` (what `/proc/PID/fd` links to).
fn open_under(pid: u32, dir: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// An export killed while it writes (SIGKILL, as the OOM killer sends) leaves nothing in
/// its output directory that looks like output: no file at all, hidden or not.
#[test]
fn a_killed_export_leaves_no_file_behind() {
    let dir = scratch();
    let rec = recorder(dir.path(), "killed_export", 16 << 20);
    on_threads(&dispatch(&rec), 2, "k", |t| {
        for i in 0..100_000u64 {
            let _s = tracing::info_span!("step", t = t as u64).entered();
            tracing::info!(i, "work");
        }
    });
    let dump = rec.snapshot().unwrap();
    for format in ["parquet", "perfetto", "chrome"] {
        let out = dir.path().join(format!("out-{format}"));
        std::fs::create_dir_all(&out).unwrap();
        let target = if format == "parquet" {
            out.clone()
        } else {
            out.join("trace")
        };
        let mut export = Command::new(flightrec_bin())
            .args(["export", "--format", format, "-o"])
            .arg(&target)
            .arg(&dump)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed once it has a file open for its output; a run that finished first is
        // not this test's case, and is tried again.
        let mut killed = false;
        while export.try_wait().unwrap().is_none() {
            if open_under(export.id(), &out) > 0 {
                export.kill().unwrap();
                killed = true;
                break;
            }
            std::thread::yield_now();
        }
        export.wait().unwrap();
        if !killed {
            not_run(&format!(
                "the {format} export finished before it could be killed"
            ));
            continue;
        }
        let files: Vec<PathBuf> = walk(&out);
        assert!(files.is_empty(), "{format}: a killed export left {files:?}");
    }
}

/// Every file under `dir`, in its subdirectories too.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}
