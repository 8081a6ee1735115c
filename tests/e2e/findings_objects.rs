//! Findings about objects, e2e: `interleaving`, `atomicity` and `inconsistent_locking`, each
//! on a real multi-threaded program with the bug and on its correct twin, and silence on
//! per-request data logged everywhere. Threads take turns through channels, so each
//! program's interleaving is the same on every run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use tracing::{info, info_span, warn};
use tracing_flightrec::sync::Mutex;

use crate::findings::{check, findings_of};
use crate::helpers::*;

/// All findings' kinds, for "nothing but ..." assertions.
pub(crate) fn kinds(dump: &Path) -> Vec<String> {
    info_json(dump)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

fn roles(f: &Json) -> Vec<(String, String)> {
    f["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["thread"].as_str().unwrap().to_string(),
                e["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Two job servers' threads pick up jobs from one queue. The first picks up `142.job` and
/// later finds it gone; in between, the second picks up `142.job` too (`stolen`) or
/// another job.
fn job_servers(dir: &Path, stolen: bool) -> PathBuf {
    let rec = recorder(dir, "jobs", 4 << 20);
    job_servers_into(&dispatch(&rec), stolen);
    rec.snapshot().unwrap()
}

fn job_servers_into(d: &tracing::Dispatch, stolen: bool) {
    let (picked_tx, picked_rx) = turn();
    let (done_tx, done_rx) = turn();
    let a = spawn_on(d, "server-a", move || {
        let _s = info_span!("job", n = 1).entered();
        info!(job = "142.job", "picked up");
        picked_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        warn!(job = "142.job", "job vanished from the spool before it ran");
    });
    let b = spawn_on(d, "server-b", move || {
        picked_rx.recv().unwrap();
        let _s = info_span!("job", n = 2).entered();
        let job = if stolen { "142.job" } else { "143.job" };
        info!(job, "picked up");
        info!(job, "ran and removed from the spool");
        done_tx.send(()).unwrap();
    });
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn a_failure_after_another_thread_touched_its_object_is_an_interleaving() {
    let dir = scratch();
    let dump = job_servers(dir.path(), true);
    let found = findings_of(&dump, "interleaving");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["object"], "job=142.job");
    // Named by request, each on its own server's thread.
    let title = f["title"].as_str().unwrap();
    assert!(
        title.starts_with("job n=1 failed") && title.contains("after job n=2 touched"),
        "{title}"
    );
    assert_eq!(f["threads"], serde_json::json!(["server-a", "server-b"]));
    // The story: the request's earlier touch, the other server's touches, the failure.
    assert_eq!(
        roles(f),
        vec![
            ("server-a".into(), "touched job=142.job first".into()),
            ("server-b".into(), "touched job=142.job in between".into()),
            ("server-b".into(), "touched job=142.job in between".into()),
            ("server-a".into(), "failed".into()),
        ]
    );
    let records = cat_json(&dump);
    for e in f["records"].as_array().unwrap() {
        let r = &records[e["record"].as_u64().unwrap() as usize];
        assert_eq!(r["ts"], e["ts"], "{e} is not record {r}");
    }
    let (code, text) = check(&["--kind", "interleaving", dump.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("error interleaving:"), "{text}");
}

#[test]
fn a_failure_no_other_thread_explains_is_no_interleaving() {
    let dir = scratch();
    let dump = job_servers(dir.path(), false);
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

/// A worker checks that a price is cached and then reads it, inside one `order` request;
/// a refresher clears and refills the cache. `split`: the check and the read are two
/// holds of the cache's lock and the refresher's clear comes between them (the bug);
/// else one hold covers both and the refresher runs after.
fn check_then_act(dir: &Path, split: bool) -> PathBuf {
    let rec = recorder(dir, "shop", 4 << 20);
    let d = dispatch(&rec);
    let cache = Arc::new(Mutex::named("cache", vec![0u64; 8]));
    let addr = format!("{:p}", Arc::as_ptr(&cache));
    let (checked_tx, checked_rx) = turn();
    let (cleared_tx, cleared_rx) = turn();
    let (c, a) = (cache.clone(), addr.clone());
    let worker = spawn_on(&d, "worker", move || {
        let _s = info_span!("order", order = 7).entered();
        if split {
            {
                let g = c.lock().unwrap();
                info!(cache = %a, sku = 3, price = g[3], "cache hit");
            }
            checked_tx.send(()).unwrap();
            cleared_rx.recv().unwrap();
            let g = c.lock().unwrap();
            info!(cache = %a, sku = 3, price = g[3], "priced");
        } else {
            let g = c.lock().unwrap();
            info!(cache = %a, sku = 3, price = g[3], "cache hit");
            info!(cache = %a, sku = 3, price = g[3], "priced");
            drop(g);
            checked_tx.send(()).unwrap();
        }
    });
    let (c, a) = (cache.clone(), addr.clone());
    let refresher = spawn_on(&d, "refresher", move || {
        checked_rx.recv().unwrap();
        let _s = info_span!("refresh").entered();
        let mut g = c.lock().unwrap();
        info!(cache = %a, removed = g.len(), "cache cleared for refresh");
        g.iter_mut().for_each(|p| *p = 0);
        drop(g);
        let _ = cleared_tx.send(());
    });
    worker.join().unwrap();
    refresher.join().unwrap();
    rec.snapshot().unwrap()
}

#[test]
fn a_check_and_an_act_in_two_holds_with_a_clear_between_is_an_atomicity_finding() {
    let dir = scratch();
    let dump = check_then_act(dir.path(), true);
    let found = findings_of(&dump, "atomicity");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["severity"], "warning");
    assert!(f["object"].as_str().unwrap().starts_with("cache=0x"), "{f}");
    assert_eq!(f["locks"][0], "`cache`");
    let roles = roles(f);
    assert_eq!(roles.len(), 3, "{f}");
    assert_eq!(roles[0].0, "worker");
    assert!(roles[0].1.starts_with("checked cache="), "{f}");
    assert_eq!(roles[1].0, "refresher");
    assert!(roles[1].1.contains("between the two holds"), "{f}");
    assert_eq!(roles[2].0, "worker");
    assert!(roles[2].1.starts_with("acted on cache="), "{f}");
    // Every touch held the cache's lock: nothing inconsistent about the locking.
    assert_eq!(kinds(&dump), vec!["atomicity".to_string()]);
}

#[test]
fn a_check_and_an_act_in_one_hold_is_no_finding() {
    let dir = scratch();
    let dump = check_then_act(dir.path(), false);
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

/// A ledger guarded by a lock named `ledger`: the poster touches it holding the lock, the
/// reader (between two postings) without it, or holding it when `consistent`.
fn ledger(dir: &Path, consistent: bool) -> PathBuf {
    let rec = recorder(dir, "bank", 4 << 20);
    let d = dispatch(&rec);
    let lock = Arc::new(Mutex::named("ledger", 0u64));
    let (posted_tx, posted_rx) = turn();
    let (read_tx, read_rx) = turn();
    let l = lock.clone();
    let poster = spawn_on(&d, "poster", move || {
        for n in 0..2u64 {
            let _s = info_span!("post", n).entered();
            let mut g = l.lock().unwrap();
            *g += 10;
            info!(ledger = "main", balance = *g, "posted");
            drop(g);
            if n == 0 {
                posted_tx.send(()).unwrap();
                read_rx.recv().unwrap();
            }
        }
    });
    let l = lock.clone();
    let reader = spawn_on(&d, "reader", move || {
        posted_rx.recv().unwrap();
        let _s = info_span!("statement").entered();
        if consistent {
            let g = l.lock().unwrap();
            info!(ledger = "main", balance = *g, "read the balance");
        } else {
            info!(ledger = "main", "read the balance");
        }
        read_tx.send(()).unwrap();
    });
    poster.join().unwrap();
    reader.join().unwrap();
    rec.snapshot().unwrap()
}

#[test]
fn an_object_touched_with_and_without_its_lock_is_inconsistent_locking() {
    let dir = scratch();
    let dump = ledger(dir.path(), false);
    let found = findings_of(&dump, "inconsistent_locking");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["object"], "ledger=main");
    assert_eq!(f["locks"][0], "`ledger`");
    let roles = roles(f);
    assert_eq!(roles.len(), 2, "{f}");
    assert!(roles.contains(&(
        "poster".into(),
        "touched ledger=main holding `ledger`".into()
    )));
    assert!(roles.contains(&(
        "reader".into(),
        "touched ledger=main holding no lock".into()
    )));
    assert_eq!(kinds(&dump), vec!["inconsistent_locking".to_string()]);
}

#[test]
fn an_object_always_touched_under_its_lock_is_no_finding() {
    let dir = scratch();
    let dump = ledger(dir.path(), true);
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

/// Per-request data everywhere: four threads serve requests of a few users, logging
/// `user`, `request_id` and `sku` inside and outside an unrelated critical section
/// (a metrics lock), in two holds per request, with other threads' holds between.
#[test]
fn per_request_data_logged_inside_and_outside_critical_sections_is_no_object() {
    let dir = scratch();
    let rec = recorder(dir.path(), "api", 8 << 20);
    let d = dispatch(&rec);
    let metrics = Arc::new(Mutex::named("metrics", 0u64));
    on_threads(&d, 4, "api-", move |t| {
        for n in 0..200u64 {
            let request_id = t as u64 * 1000 + n;
            let user = n % 5;
            let sku = (n * 7 + t as u64) % 11;
            let _s = info_span!("request", request_id).entered();
            info!(user, request_id, sku, "request received");
            {
                let mut m = metrics.lock().unwrap();
                *m += 1;
                info!(user, request_id, sku, count = *m, "counted");
            }
            info!(user, sku, "looked up");
            {
                let m = metrics.lock().unwrap();
                info!(user, request_id, sku, count = *m, "counted again");
            }
            info!(user, request_id, "answered");
        }
    });
    let dump = rec.snapshot().unwrap();
    assert_eq!(kinds(&dump), Vec::<String>::new());
    let (code, text) = check(&[dump.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

/// The job servers as two processes (two recordings): the race shows only when they are
/// checked as one.
#[test]
fn two_processes_racing_for_one_job_are_an_interleaving_once_merged() {
    let dir = scratch();
    let rec_a = recorder(&dir.path().join("a"), "server-a", 4 << 20);
    let rec_b = recorder(&dir.path().join("b"), "server-b", 4 << 20);
    let (da, db) = (dispatch(&rec_a), dispatch(&rec_b));
    let (picked_tx, picked_rx) = turn();
    let (done_tx, done_rx) = turn();
    let a = spawn_on(&da, "spool", move || {
        let _s = info_span!("job").entered();
        info!(job = "142.job", "picked up");
        picked_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        warn!(job = "142.job", "job vanished from the spool before it ran");
    });
    let b = spawn_on(&db, "spool", move || {
        picked_rx.recv().unwrap();
        let _s = info_span!("job").entered();
        info!(job = "142.job", "picked up");
        done_tx.send(()).unwrap();
    });
    a.join().unwrap();
    b.join().unwrap();
    let (dump_a, dump_b) = (rec_a.snapshot().unwrap(), rec_b.snapshot().unwrap());
    let (a, b) = (dump_a.to_str().unwrap(), dump_b.to_str().unwrap());
    // Apart, each process's recording is a correct program.
    assert_eq!(check(&[a]).0, 0);
    assert_eq!(check(&[b]).0, 0);
    let (code, text) = check(&["--merge", a, b]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("error interleaving:"), "{text}");
    assert!(text.contains("job=142.job"), "{text}");
    let pid = std::process::id();
    assert!(
        text.contains(&format!("server-a[{pid}] spool"))
            && text.contains(&format!("server-b[{pid}] spool")),
        "the evidence names both processes' threads: {text}"
    );
}

/// The viewer's findings list, in a browser: a thread finding (the job servers'
/// interleaving) and a task finding (a request that blocks its worker); clicking each shows
/// its evidence: the lanes it reads on, a view holding its records, its object followed,
/// its records marked and its last record selected.
#[test]
fn the_viewer_lists_the_findings_and_a_click_shows_each_ones_evidence() {
    use tracing::Instrument;
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "findings", 8 << 20);
    let d = dispatch(&rec);
    job_servers_into(&d, true);
    let rt = recording_runtime(&d);
    let _main = tracing::dispatcher::set_default(&d);
    rt.block_on(async {
        tokio::spawn(
            async {
                info!("checking the lot");
                tokio::task::yield_now().await;
                std::thread::sleep(std::time::Duration::from_millis(30));
                info!("ticket sold");
            }
            .instrument(info_span!("request", id = 1)),
        )
        .await
        .unwrap();
    });
    drop(rt);
    let dump = rec.snapshot().unwrap();
    let r = crate::viewer::drive("findings", &dump, serde_json::json!({}));
    // The 30 ms poll blocks its worker on any machine; a loaded one may stretch a short
    // poll past the threshold too, which is one more blocking poll, nothing else.
    let rows = r["rows"].as_array().unwrap();
    assert!(rows.len() >= 2, "{r}");
    assert_eq!(r["button"], format!("findings ({})", rows.len()), "{r}");
    assert!(
        rows[0].as_str().unwrap().starts_with("errorinterleaving"),
        "{r}"
    );
    for row in &rows[1..] {
        assert!(
            row.as_str().unwrap().starts_with("warningblocking_poll"),
            "{r}"
        );
    }
    let picked = r["picked"].as_array().unwrap();
    assert_eq!(picked.len(), rows.len());
    for (i, p) in picked.iter().enumerate() {
        let f = &p["finding"];
        assert_eq!(p["on"], i.to_string(), "{p}");
        assert_eq!(p["mode"], f["view"], "{p}");
        let ids: Vec<u64> = f["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["record"].as_u64().unwrap())
            .collect();
        assert_eq!(p["marked"], serde_json::json!(ids), "{p}");
        assert_eq!(p["selected"]["id"], *ids.last().unwrap(), "{p}");
        let (start, end) = (
            p["view"]["start"].as_f64().unwrap(),
            p["view"]["end"].as_f64().unwrap(),
        );
        for e in f["marks"].as_array().unwrap() {
            let t = e["t"].as_f64().unwrap();
            assert!(
                start <= t && t <= end,
                "record at {t} outside the view {start}..{end}: {p}"
            );
        }
        let object = &p["object"];
        let shown = (!object.is_null()).then(|| {
            format!(
                "{}={}",
                object["field"].as_str().unwrap(),
                object["value"].as_str().unwrap()
            )
        });
        assert_eq!(shown.as_deref(), f["object"].as_str(), "{p}");
    }
    assert_eq!(picked[0]["mode"], "threads");
    assert_eq!(
        picked[0]["object"],
        serde_json::json!({"field": "job", "value": "142.job"})
    );
    assert_eq!(picked[1]["mode"], "tasks");
    assert!(picked[1]["object"].is_null());
}

/// `export --findings` puts each finding on its process's track, at its last evidence, in
/// both formats; without the flag the export streams and carries none.
#[test]
fn exports_carry_the_findings_as_instants_on_the_process_track_when_asked() {
    let dir = scratch();
    let dump = job_servers(dir.path(), true);
    let failure_ts = {
        let f = &findings_of(&dump, "interleaving")[0];
        let last = f["records"].as_array().unwrap().last().unwrap();
        last["ts"].as_i64().unwrap()
    };
    let export = |format: &str, with: bool| {
        let out = dir.path().join(format!("{format}-{with}"));
        let more: &[&str] = if with { &["--findings"] } else { &[] };
        crate::export::export_with(&dump, format, &out, more);
        out
    };
    // Chrome: a process-scoped instant, in µs from the trace's origin.
    let chrome = |with: bool| -> Vec<Json> {
        let v: Json =
            serde_json::from_slice(&std::fs::read(export("chrome", with)).unwrap()).unwrap();
        v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("error interleaving: "))
            })
            .cloned()
            .collect()
    };
    let found = chrome(true);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0]["ph"].as_str(), found[0]["s"].as_str()),
        (Some("i"), Some("p"))
    );
    assert_eq!(found[0]["args"]["object"], "job=142.job");
    assert!(chrome(false).is_empty());
    // Perfetto, read by Perfetto's own classes: an instant on the process track.
    let Some(python) = crate::export::perfetto_python() else {
        return;
    };
    let p = crate::export::parse_perfetto(&crate::export::decode_perfetto(
        &python,
        &export("perfetto", true),
    ));
    let (process, _) = p.process.clone().expect("a process track");
    let on_process: Vec<_> = p.events.get(&process).into_iter().flatten().collect();
    let finding = on_process
        .iter()
        .find(|e| e.name.starts_with("error interleaving: "))
        .unwrap_or_else(|| panic!("no finding on the process track: {on_process:?}"));
    assert_eq!(finding.kind, "TYPE_INSTANT");
    assert_eq!(finding.ts as i64, failure_ts);
    assert_eq!(finding.args["kind"], "interleaving");
    assert_eq!(finding.args["object"], "job=142.job");
    let without = crate::export::parse_perfetto(&crate::export::decode_perfetto(
        &python,
        &export("perfetto", false),
    ));
    assert!(without
        .events
        .values()
        .flatten()
        .all(|e| !e.name.contains("interleaving")));
}

/// Among many touches between a request's check and its failure, the one by a stranger
/// (the refresher) is told, however many fellow requests (other orders, running the same
/// code) touched the object after it.
#[test]
fn an_interleaving_tells_the_strangers_touch_before_fellow_requests_many_touches() {
    let dir = scratch();
    let rec = recorder(dir.path(), "shop", 4 << 20);
    let d = dispatch(&rec);
    let (checked_tx, checked_rx) = turn();
    let (cleared_tx, cleared_rx) = turn();
    let (busy_tx, busy_rx) = turn();
    let victim = spawn_on(&d, "worker-1", move || {
        let _s = info_span!("order", order = 1).entered();
        info!(cache = "0x5555aaaa", sku = 3, "cache hit");
        checked_tx.send(()).unwrap();
        busy_rx.recv().unwrap();
        warn!(cache = "0x5555aaaa", sku = 3, "price vanished");
    });
    let refresher = spawn_on(&d, "refresher", move || {
        checked_rx.recv().unwrap();
        let _s = info_span!("refresh").entered();
        info!(cache = "0x5555aaaa", "cache cleared");
        cleared_tx.send(()).unwrap();
    });
    let fellow = spawn_on(&d, "worker-3", move || {
        cleared_rx.recv().unwrap();
        for order in 2..30u64 {
            let _s = info_span!("order", order).entered();
            info!(cache = "0x5555aaaa", sku = order, "cache miss");
        }
        busy_tx.send(()).unwrap();
    });
    for t in [victim, refresher, fellow] {
        t.join().unwrap();
    }
    let dump = rec.snapshot().unwrap();
    let found = findings_of(&dump, "interleaving");
    assert_eq!(found.len(), 1, "{found:?}");
    let roles = roles(&found[0]);
    assert!(
        roles.contains(&(
            "refresher".into(),
            "touched cache=0x5555aaaa in between".into()
        )),
        "{roles:?}"
    );
    assert_eq!(roles.first().unwrap().1, "touched cache=0x5555aaaa first");
    assert_eq!(roles.last().unwrap().1, "failed");
    // The story only: the first touch, the stranger's, the failure; the fellow workers'
    // 28 cache misses are a count.
    assert_eq!(roles.len(), 3, "{roles:?}");
    assert_eq!(found[0]["omitted_records"], 28, "{}", found[0]);
}

/// A task finding's evidence lanes are shown when it is picked, however many later records
/// carry its object: here 6 000 later touches of the lot by 300 later requests, more than
/// the object list holds (its newest 5 000), all after the finding.
#[test]
fn picking_a_task_finding_shows_its_evidence_lanes_whatever_the_objects_later_records() {
    use tracing::Instrument;
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "tickets", 16 << 20);
    let d = dispatch(&rec);
    let rt = recording_runtime(&d);
    let _main = tracing::dispatcher::set_default(&d);
    rt.block_on(async {
        // Request 1 checks the lot, request 2 sells its last ticket in between, request 1
        // fails: an interleaving between two tasks, in this order on every run.
        let (checked_tx, checked_rx) = tokio::sync::oneshot::channel::<()>();
        let (sold_tx, sold_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(
            async move {
                info!(lot = "L1", "ticket available");
                checked_tx.send(()).unwrap();
                sold_rx.await.unwrap();
                warn!(lot = "L1", "ticket gone between the check and the sale");
            }
            .instrument(info_span!("request", id = 1)),
        );
        let second = tokio::spawn(
            async move {
                checked_rx.await.unwrap();
                info!(lot = "L1", "ticket sold");
                sold_tx.send(()).unwrap();
            }
            .instrument(info_span!("request", id = 2)),
        );
        first.await.unwrap();
        second.await.unwrap();
        for id in 3..303u64 {
            tokio::spawn(
                async move {
                    for _ in 0..20 {
                        info!(lot = "L1", "seats looked at");
                    }
                }
                .instrument(info_span!("request", id)),
            )
            .await
            .unwrap();
        }
    });
    drop(rt);
    let dump = rec.snapshot().unwrap();
    let found = findings_of(&dump, "interleaving");
    assert_eq!(found.len(), 1, "{found:?}");
    let r = crate::viewer::drive("findings", &dump, serde_json::json!({}));
    let picked = r["picked"].as_array().unwrap();
    let p = picked
        .iter()
        .find(|p| p["finding"]["kind"] == "interleaving")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(p["mode"], "tasks", "{p}");
    let visible: Vec<&Json> = p["visibleTasks"].as_array().unwrap().iter().collect();
    for e in p["finding"]["marks"].as_array().unwrap() {
        assert!(
            visible.contains(&&e["task"]),
            "evidence task {} not among the lanes on screen {visible:?}",
            e["task"]
        );
    }
}
