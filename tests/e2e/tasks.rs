//! Async services: requests as `.instrument`ed futures on a tokio multi-thread runtime, with
//! state shared between them. Every record is attributed to its request, every poll is found
//! on the worker that ran it, and `cat --json` says the same.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use flightrec_analysis::tasks::{task_of, Tasks};
use flightrec_analysis::Analysis;
use flightrec_format::{RecordKind, Value};
use tracing::Instrument;

use crate::helpers::*;

const REQUESTS: u64 = 40;
const STEPS: u64 = 5;

/// Runs the requests on a fresh runtime and recorder; returns the dump and the directory
/// holding it.
fn run_requests() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = scratch();
    let rec = recorder(dir.path(), "tokio", 8 << 20);
    let d = dispatch(&rec);
    let on_workers = d.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .thread_name("worker")
        .enable_all()
        // Events inside the futures go to the thread's default subscriber.
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_workers)))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&d, || {
        rt.block_on(async {
            let shared = Arc::new(tokio::sync::Mutex::new(0u64));
            let handles: Vec<_> = (0..REQUESTS)
                .map(|id| {
                    let shared = shared.clone();
                    tokio::spawn(
                        async move {
                            tracing::info!(id, "start");
                            for step in 0..STEPS {
                                tokio::task::yield_now().await;
                                let mut total = shared.lock().await;
                                *total += 1;
                                tracing::info!(id, step, "step");
                                drop(total);
                                // Work that keeps this worker busy, so the others take
                                // the ready requests.
                                std::thread::sleep(Duration::from_micros(100));
                                tokio::time::sleep(Duration::from_micros(200)).await;
                            }
                            tracing::info!(id, "done");
                        }
                        .instrument(tracing::info_span!("request", id)),
                    )
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        })
    });
    drop(rt);
    let dump = rec.snapshot().unwrap();
    (dir, dump)
}

/// A recording of the requests in which the runtime polled them on several workers (which
/// workers run what is its choice: nearly always the first run), every recording checked.
fn requests_on_several_workers() -> (tempfile::TempDir, std::path::PathBuf) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (dir, dump) = run_requests();
        if check_requests(&dump) >= 2 {
            return (dir, dump);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "in a minute of runs, the runtime never used two workers"
        );
    }
}

#[test]
fn requests_on_a_tokio_runtime_are_attributed_and_their_polls_found() {
    requests_on_several_workers();
}

/// The task view in a real browser: proposed for this dump, one lane per request, each
/// poll drawn on its lane with the worker that ran it and the waits between polls, the
/// selection kept across the switch both ways.
#[test]
fn the_task_view_shows_each_request_with_its_polls_on_their_workers() {
    if !crate::viewer::browser_available() {
        return;
    }
    let (_dir, dump) = requests_on_several_workers();
    let r = flightrec_format::open(&dump).unwrap();
    let tasks = tasks_of(&r);
    let out = crate::viewer::drive(
        "tasks",
        &dump,
        serde_json::json!({
            "clickTitle": "step", "field": "id",
            "zoomOn": [0, 17, 39], "scrollTo": [0.5, 0.95, 0.0],
        }),
    );
    assert_eq!(out["proposed"], true, "{}", out["proposalText"]);
    assert_eq!(out["taskCount"], REQUESTS);
    // The selection survives the switch, and the switch back.
    assert!(!out["highlightedBefore"].as_array().unwrap().is_empty());
    assert_eq!(out["highlightedAfter"], out["highlightedBefore"]);
    assert_eq!(out["selectedAfter"], out["selectedBefore"]);
    assert_eq!(out["highlightedBack"], out["highlightedBefore"]);
    assert_eq!(out["modeBack"], "threads");
    // The object's records are placed on tasks.
    assert!(out["objectDrawnOn"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["task"].is_u64()));
    let origin: i64 = out["origin"].as_str().unwrap().parse().unwrap();
    let lane_thread: Vec<u64> = out["metaLanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["thread"].as_u64().unwrap())
        .collect();
    for seen in out["zoomed"].as_array().unwrap() {
        let task = &tasks.list[seen["task"].as_u64().unwrap() as usize];
        let label = seen["label"].as_str().unwrap();
        assert!(label.starts_with("request id="), "{label}");
        // Every poll of the task is drawn, on the worker that ran it.
        let drawn: Vec<(i64, i64, u64)> = seen["polls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let worker = p["worker"].as_u64().unwrap() as usize;
                (
                    p["b"].as_i64().unwrap() + origin,
                    p["e"].as_i64().unwrap() + origin,
                    lane_thread[worker],
                )
            })
            .collect();
        let expected: Vec<(i64, i64, u64)> = task
            .polls
            .iter()
            .map(|p| (p.begin, p.end, p.thread as u64))
            .collect();
        // Polls narrower than a pixel are drawn merged, as a busy stretch of the poll row.
        let clumps: Vec<(i64, i64)> = seen["clumps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["row"] == 0)
            .map(|c| {
                (
                    c["b"].as_i64().unwrap() + origin,
                    c["e"].as_i64().unwrap() + origin,
                )
            })
            .collect();
        for p in &expected {
            assert!(
                drawn.contains(p) || clumps.iter().any(|&(b, e)| b <= p.0 && p.1 <= e),
                "{label}: poll {p:?} not drawn"
            );
        }
        assert!(drawn.iter().all(|p| expected.contains(p)), "{label}");
        assert!(!drawn.is_empty(), "{label}: no poll wide enough to draw");
        // Its life, drawn as waiting, holds every poll: the gaps between them are waits.
        let life = &seen["life"];
        let (lb, le) = (
            life["b"].as_i64().unwrap() + origin,
            life["e"].as_i64().unwrap() + origin,
        );
        assert!(
            expected.iter().all(|&(b, e, _)| lb <= b && e <= le),
            "{label}"
        );
        assert!(expected.len() as u64 > STEPS);
    }
    // Only lanes on screen have labels; scrolling moves them.
    let in_dom = out["labelsInDom"].as_u64().unwrap();
    assert!(
        in_dom > 0 && in_dom < REQUESTS,
        "{in_dom} labels for {REQUESTS} lanes"
    );
    eprintln!(
        "task view: switch {} ms, scrolls {} ms (frames {} ms)",
        out["switchMs"], out["scrollMs"], out["scrollFrameMs"]
    );
}

/// Checks one recording of the requests; returns how many workers ran their polls.
fn check_requests(dump: &std::path::Path) -> usize {
    let r = flightrec_format::open(dump).unwrap();
    let field = |rec: &flightrec_format::Record, name: &str| {
        let cs = &r.callsites[&rec.callsite];
        rec.fields
            .iter()
            .find(|f| cs.fields[f.index as usize] == name)
            .map(|f| match f.value {
                Value::U64(v) => v,
                Value::I64(v) => v as u64,
                ref v => panic!("{v:?}"),
            })
    };
    // Each request's span, from its creation record.
    let span_of: HashMap<u64, u64> = r
        .records
        .iter()
        .filter(|x| x.kind == RecordKind::SpanNew)
        .filter_map(|x| Some((field(x, "id")?, x.span)))
        .collect();
    assert_eq!(span_of.len(), REQUESTS as usize);
    let found = tasks_of(&r);
    assert!(found.hop_threads() || found.list.iter().all(|t| t.workers().len() == 1));
    let thread_name = |index: u32| {
        r.threads
            .iter()
            .find(|t| t.index == index)
            .map(|t| t.name.clone())
            .unwrap()
    };
    let mut workers_used = HashSet::new();
    for id in 0..REQUESTS {
        let span = span_of[&id];
        let task = found
            .get(span)
            .unwrap_or_else(|| panic!("request {id} has no task"));
        assert!(
            task.created().is_some() && task.closed().is_some(),
            "request {id}"
        );
        assert_eq!(task.tokio, None);
        // Its records: exactly its own events, start, every step, done.
        let events: Vec<&flightrec_format::Record> = records_of(&found, task)
            .into_iter()
            .map(|i| &r.records[i])
            .filter(|x| x.kind == RecordKind::Event)
            .collect();
        assert_eq!(events.len() as u64, STEPS + 2, "request {id}");
        assert!(events.iter().all(|e| field(e, "id") == Some(id)));
        // Every event lies inside one of its polls, on the thread that polled it, and
        // every poll ran on a runtime worker.
        for e in &events {
            assert!(
                task.polls
                    .iter()
                    .any(|p| p.thread == e.thread && p.begin <= e.ts && e.ts <= p.end),
                "request {id}: an event outside its polls"
            );
        }
        assert!(
            task.polls.len() as u64 > STEPS,
            "request {id}: {:?}",
            task.polls
        );
        for p in &task.polls {
            let name = thread_name(p.thread);
            assert_eq!(name, "worker");
            workers_used.insert(p.thread);
        }
    }
    // No event of a request is attributed elsewhere.
    for x in r.records.iter().filter(|x| x.kind == RecordKind::Event) {
        let id = field(x, "id").unwrap();
        assert_eq!(task_of(x), Some(span_of[&id]));
    }
    // `cat --json` says the same: each event's outermost span is its request's.
    let mut checked = 0;
    cat_json_each(dump, |j| {
        if j["kind"] == "event" {
            let id = j["fields"]["id"].as_u64().unwrap();
            assert_eq!(j["spans"][0].as_u64(), Some(span_of[&id]));
            // No runtime hooks: no tokio task id.
            assert!(j["task"].is_null());
            checked += 1;
        }
    });
    assert_eq!(checked, REQUESTS * (STEPS + 2));
    workers_used.len()
}

/// The Perfetto export, decoded with Perfetto's own definitions, gives each request a track
/// of its own (a child of the process track, named after the request) holding its polls,
/// each named after the worker that ran it; the Chrome export does the same with async
/// events.
#[test]
fn each_request_gets_a_track_of_its_polls_in_both_exports() {
    let (dir, dump) = run_requests();
    let r = flightrec_format::open(&dump).unwrap();
    let names = flightrec_analysis::Names::new(&r);
    let tasks = tasks_of(&r);
    // What the reading layer says each request's track must hold.
    let mut expected: HashMap<String, Vec<(String, u64, u64)>> = HashMap::new();
    for t in tasks.list.iter().filter(|t| t.is_async) {
        let polls = t
            .polls
            .iter()
            .filter(|p| p.outermost)
            .map(|p| {
                let (name, tid) = names.thread(p.thread);
                (format!("{name} [{tid}]"), p.begin as u64, p.end as u64)
            })
            .collect();
        expected.insert(flightrec_analysis::tasks::label(&names, t), polls);
    }
    assert_eq!(expected.len(), REQUESTS as usize, "{:?}", expected.keys());
    if let Some(python) = crate::export::perfetto_python() {
        let out = dir.path().join("tasks.perfetto-trace");
        crate::export::export(&dump, "perfetto", &out);
        let p = crate::export::parse_perfetto(&crate::export::decode_perfetto(&python, &out));
        let process = p.process.as_ref().unwrap().0;
        let mut seen = 0;
        for (uuid, (name, parent)) in &p.others {
            let Some(want) = expected.get(name) else {
                continue;
            };
            assert_eq!(*parent, process, "{name}: not a child of the process track");
            let got: Vec<(String, u64, u64)> = crate::export::slices(&p.events[uuid])
                .into_iter()
                .map(|(n, b, e, depth)| {
                    assert_eq!(depth, 0, "{name}: polls overlap");
                    (n, b, e)
                })
                .collect();
            assert_eq!(&got, want, "{name}");
            seen += 1;
        }
        assert_eq!(seen, REQUESTS as usize, "tracks: {:?}", p.others);
    }
    // Chrome: per request, async begin/end pairs with one id, named after the request.
    let out = dir.path().join("tasks.json");
    crate::export::export(&dump, "chrome", &out);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let mut per_id: HashMap<String, (String, usize, usize)> = HashMap::new();
    for e in v["traceEvents"].as_array().unwrap() {
        if e["cat"] != "task" {
            continue;
        }
        let id = e["id"].as_str().unwrap().to_string();
        let entry = per_id
            .entry(id)
            .or_insert((e["name"].as_str().unwrap().into(), 0, 0));
        assert_eq!(entry.0, e["name"].as_str().unwrap());
        match e["ph"].as_str().unwrap() {
            "b" => entry.1 += 1,
            "e" => entry.2 += 1,
            ph => panic!("unexpected phase {ph}"),
        }
    }
    assert_eq!(per_id.len(), REQUESTS as usize);
    for (name, begins, ends) in per_id.values() {
        assert_eq!(begins, ends, "{name}");
        assert_eq!(*begins, expected[name].len(), "{name}");
    }
}

/// Ten thousand tasks in one dump: the task view opens and scrolls without stalls, drawing
/// and labelling only the lanes on screen. Times go to target/test-artifacts.
#[test]
fn ten_thousand_tasks_open_and_scroll_in_the_task_view() {
    const TASKS: u64 = 10_000;
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "many-tasks", 64 << 20);
    let d = dispatch(&rec);
    let on_workers = d.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_workers)))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&d, || {
        rt.block_on(async {
            let handles: Vec<_> = (0..TASKS)
                .map(|id| {
                    tokio::spawn(
                        async move {
                            tokio::task::yield_now().await;
                            tracing::info!(id, "work");
                            tokio::task::yield_now().await;
                        }
                        .instrument(tracing::info_span!("job", id)),
                    )
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        })
    });
    drop(rt);
    let dump = rec.snapshot().unwrap();
    let r = flightrec_format::open(&dump).unwrap();
    assert_eq!(r.threads.iter().map(|t| t.overwritten).sum::<u64>(), 0);
    let out = crate::viewer::drive(
        "tasks",
        &dump,
        serde_json::json!({"scrollTo": [0.25, 0.5, 0.75, 0.999, 0.0]}),
    );
    assert_eq!(out["taskCount"], TASKS);
    let labels = out["labelsInDomAfterScroll"].as_u64().unwrap();
    assert!(labels > 0 && labels < 100, "{labels} label elements");
    // Each scroll is redrawn from what the page holds, at once; the lanes' contents follow
    // when the server answers.
    let frames: Vec<f64> = out["scrollFrameMs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(!frames.is_empty());
    assert!(
        frames.iter().all(|&ms| ms < 250.0),
        "a scroll redraw stalled: {frames:?}"
    );
    let scrolls: Vec<u64> = out["scrollMs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(scrolls.iter().all(|&ms| ms < 10_000), "{scrolls:?}");
    let report = serde_json::json!({
        "tasks": TASKS, "records": r.records.len(),
        "task_view_first_render_ms": out["switchMs"], "scroll_settled_ms": scrolls,
        "scroll_frame_ms": frames, "thread_view_first_render_ms": out["firstRenderMs"],
    });
    std::fs::create_dir_all(crate::viewer::artifacts()).unwrap();
    std::fs::write(
        crate::viewer::artifacts().join("task-view-scale.json"),
        report.to_string(),
    )
    .unwrap();
    eprintln!("task view at scale: {report}");
}

/// `flightrec demo --async`: the race between two requests bites, the panic dumps, and the
/// viewer opens in the task view on the two requests that interleaved on the lot, with the
/// lot selected.
#[test]
fn the_async_demo_bites_and_opens_the_task_view_on_the_two_interleaved_requests() {
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let out = crate::viewer::drive("asyncdemo", dir.path(), serde_json::json!({}));
    // The header counts the requests: as tasks when one of them was polled on several
    // workers, which is the scheduler's choice (two requests interleave on one worker just
    // as well, and the race can bite before any has moved).
    let header = out["header"].as_str().unwrap();
    assert!(
        header.contains(" tasks") || header.contains(" requests"),
        "{header}"
    );
    let title = out["objectTitle"].as_str().unwrap();
    assert!(title.starts_with("lot = e"), "{title}");
    let records = out["objectRecords"].as_array().unwrap();
    let failure = records
        .iter()
        .position(|r| {
            r["title"]
                .as_str()
                .unwrap()
                .starts_with("ticket gone between the check and the sale")
        })
        .expect("the failed sale is among the lot's records");
    // The hand-over into the failing request: who took the ticket it had checked.
    let k = (1..=failure)
        .rev()
        .find(|&k| records[k]["handover"] == true)
        .expect("the lot passed between requests before the failure");
    let (culprit, victim) = (&records[k - 1]["task"], &records[k]["task"]);
    assert_ne!(culprit, victim);
    assert_eq!(victim, &records[failure]["task"]);
    let visible = out["visibleTasks"].as_array().unwrap();
    let label_of = |task: &Json| {
        visible
            .iter()
            .find(|v| &v["task"] == task)
            .map(|v| v["label"].as_str().unwrap().to_string())
    };
    let (a, b) = (label_of(culprit), label_of(victim));
    assert!(
        a.as_deref().is_some_and(|l| l.starts_with("request id="))
            && b.as_deref().is_some_and(|l| l.starts_with("request id=")),
        "both requests on screen: {a:?} {b:?} among {:?}",
        visible.iter().map(|v| &v["label"]).collect::<Vec<_>>()
    );
    // The view holds the interleaving: the culprit's step and the failure.
    let (start, end) = (
        out["view"]["start"].as_f64().unwrap(),
        out["view"]["end"].as_f64().unwrap(),
    );
    for r in [&records[k - 1], &records[failure]] {
        let t = r["t"].as_f64().unwrap();
        assert!(start <= t && t <= end, "{t} outside [{start}, {end}]");
    }
}

/// Odd lives, each shown as it happened, in the reading layer and in the viewer's task and
/// thread lanes: a future dropped in the middle of its life, a panic inside a poll, a span
/// entered on one thread and closed on another, a task that has not ended when the dump is
/// taken, and a span whose registry slot is reused after it closes.
#[test]
fn odd_lives_are_shown_as_they_happened() {
    use std::future::Future;
    use std::task::{Context, Waker};

    let dir = scratch();
    let rec = recorder(dir.path(), "odd-lives", 8 << 20);
    let d = dispatch(&rec);
    let on_workers = d.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("worker")
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_workers)))
        .build()
        .unwrap();
    let (reused_ids, never_ends) = tracing::dispatcher::with_default(&d, || {
        // 1. Dropped mid-life: polled once (pending), then dropped.
        let mut dropped = Box::pin(
            async {
                tracing::info!(life = "dropped", "first poll");
                std::future::pending::<()>().await;
                tracing::info!(life = "dropped", "never");
            }
            .instrument(tracing::info_span!("life", kind = "dropped")),
        );
        let mut cx = Context::from_waker(Waker::noop());
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
        drop(dropped);

        // 2. A panic inside its second poll.
        let panicked = rt.block_on(
            rt.spawn(
                async {
                    tracing::info!(life = "panicked", "first poll");
                    tokio::task::yield_now().await;
                    tracing::info!(life = "panicked", "about to panic");
                    panic!("inside a poll");
                }
                .instrument(tracing::info_span!("life", kind = "panicked")),
            ),
        );
        assert!(panicked.unwrap_err().is_panic());

        // 3. Entered on one thread, then on another, and closed there.
        let moved = tracing::info_span!("life", kind = "moved");
        moved.in_scope(|| tracing::info!(life = "moved", "on main"));
        let d2 = tracing::dispatcher::get_default(|d| d.clone());
        std::thread::Builder::new()
            .name("closer".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d2, || {
                    moved.in_scope(|| tracing::info!(life = "moved", "on closer"));
                    drop(moved);
                })
            })
            .unwrap()
            .join()
            .unwrap();

        // 5. A span closed, and its registry slot given to the next one.
        let first = tracing::info_span!("life", kind = "first");
        let first_id = first.id().unwrap();
        first.in_scope(|| tracing::info!(life = "first", "in the first"));
        drop(first);
        let second = tracing::info_span!("life", kind = "second");
        let second_id = second.id().unwrap();
        second.in_scope(|| tracing::info!(life = "second", "in the second"));
        drop(second);

        // 4. Never ends: polled, still pending when the dump is taken.
        let (tx, rx) = std::sync::mpsc::channel();
        let never = rt.spawn(
            async move {
                tracing::info!(life = "open", "polled");
                let _ = tx.send(());
                std::future::pending::<()>().await;
            }
            .instrument(tracing::info_span!("life", kind = "open")),
        );
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
        ((first_id, second_id), never)
    });
    // The pending task's poll ends when its worker goes back to the runtime: wait for that
    // in the dump itself, not for a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let r = loop {
        let dump = rec.snapshot().unwrap();
        let r = flightrec_format::open(&dump).unwrap();
        let open_exited = r.records.iter().any(|x| {
            x.kind == RecordKind::Exit
                && r.span_callsites.contains_key(&x.span)
                && r.records.iter().any(|n| {
                    n.kind == RecordKind::SpanNew
                        && n.span == x.span
                        && n.fields
                            .iter()
                            .any(|f| f.value == Value::Str("open".into()))
                })
        });
        if open_exited || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    never_ends.abort();
    drop(rt);

    let names = flightrec_analysis::Names::new(&r);
    let tasks = tasks_of(&r);
    let kind_of = |t: &flightrec_analysis::Task| {
        t.fields(&r.records)
            .iter()
            .find(|f| names.field_name(names.span_callsite(t.span).unwrap(), f.index) == "kind")
            .map(|f| f.value.to_text())
            .unwrap_or_default()
    };
    let task = |kind: &str| {
        tasks
            .list
            .iter()
            .find(|t| kind_of(t) == kind)
            .unwrap_or_else(|| panic!("no task {kind}"))
    };
    let events = |t: &flightrec_analysis::Task| {
        records_of(&tasks, t)
            .into_iter()
            .filter(|&i| r.records[i].kind == RecordKind::Event)
            .count()
    };
    // Each event of a task lies in one of its polls, and the task ends after its last poll.
    let well_formed = |t: &flightrec_analysis::Task| {
        for i in records_of(&tasks, t) {
            let x = &r.records[i];
            if x.kind == RecordKind::Event {
                assert!(
                    t.polls
                        .iter()
                        .any(|p| p.thread == x.thread && p.begin <= x.ts && x.ts <= p.end),
                    "an event outside the polls of {}",
                    kind_of(t)
                );
            }
        }
        if let Some(closed) = t.closed() {
            assert!(t.polls.iter().all(|p| p.end <= closed && !p.open_at_end));
        }
    };
    for t in &tasks.list {
        well_formed(t);
    }
    // 1. Polled once; dropped (tracing enters the span to drop the future inside it: a
    // second, short entry); closed at the drop, its one event in the first poll.
    let dropped = task("dropped");
    assert_eq!(dropped.polls.len(), 2, "{:?}", dropped.polls);
    assert!(dropped.closed().is_some());
    assert_eq!(events(dropped), 1);
    // 2. Polled twice, the second ended by the unwinding, then dropped; closed.
    let panicked = task("panicked");
    assert!(panicked.polls.len() >= 2, "{:?}", panicked.polls);
    assert!(panicked.closed().is_some());
    assert_eq!(events(panicked), 2);
    let event_polls: HashSet<i64> = records_of(&tasks, panicked)
        .into_iter()
        .map(|i| &r.records[i])
        .filter(|x| x.kind == RecordKind::Event)
        .map(|x| {
            panicked
                .polls
                .iter()
                .find(|p| p.begin <= x.ts && x.ts <= p.end)
                .unwrap()
                .begin
        })
        .collect();
    assert_eq!(event_polls.len(), 2, "its two events in two polls");
    // 3. Polled on two threads, closed on the second.
    let moved = task("moved");
    assert_eq!(moved.workers().len(), 2);
    assert!(moved.is_async);
    let close = r
        .records
        .iter()
        .find(|x| x.kind == RecordKind::Close && x.span == moved.span)
        .unwrap();
    assert_eq!(names.thread(close.thread).0, "closer");
    assert_eq!(events(moved), 2);
    // 4. Not closed; its life runs to the end of the data.
    let open = task("open");
    assert_eq!(open.closed(), None);
    assert_eq!(open.polls.len(), 1);
    assert_eq!(events(open), 1);
    // 5. Two spans, two tasks, each with its own event, whatever the registry's ids.
    let (first, second) = (task("first"), task("second"));
    assert_ne!(first.span, second.span);
    assert_eq!((events(first), events(second)), (1, 1));
    let slot = |id: &tracing::Id| id.into_u64() & ((1 << 38) - 1);
    assert_eq!(
        slot(&reused_ids.0),
        slot(&reused_ids.1),
        "the registry reused the slot"
    );

    // The viewer shows the same: a lane per life, closed or open as recorded.
    let model = flightrec_viewer::model::Model::new(r.clone());
    let lane = |kind: &str| {
        let t = task(kind);
        let pos = tasks.position(t.span).unwrap();
        &model.task_lanes[pos]
    };
    assert!(!lane("dropped").open && lane("dropped").polls == 2);
    assert!(!lane("panicked").open && lane("panicked").polls == panicked.polls.len());
    assert_eq!(lane("moved").workers.len(), 2);
    assert!(lane("open").open);
    assert_eq!(
        lane("open").end,
        model.end,
        "an open task lasts to the end of the data"
    );
    assert!(lane("first").end <= lane("second").start);
}

/// The reading layer's tasks of `r`.
fn tasks_of(r: &flightrec_format::Recording) -> Tasks {
    Analysis::of(r, &Default::default()).tasks
}

/// The positions of `t`'s records among the recording's, as `tasks` has them.
fn records_of(tasks: &Tasks, t: &flightrec_analysis::Task) -> Vec<usize> {
    tasks.records_of(tasks.position(t.span).unwrap()).collect()
}
