//! One analysis, one answer: on random recordings of requests that take locks (nested in
//! either order, waited for briefly or long, left held or waited for at the end),
//! `info --json`, `check --json` and the viewer's meta give the same findings, the same
//! locks and the same task counts, serialised alike.

use flightrec_format::meta::{lock, Callsite};
use flightrec_format::testing::{
    callsite, numbered_threads, records_image, TestRecord, TestRecordKind, TestValue,
};
use proptest::prelude::*;
use serde_json::Value as Json;

use crate::helpers::*;
use crate::lock_model::lock_callsite;

/// The request span's callsite; locks are 10, 11, 12.
const REQUEST: u32 = 1;

/// One request on a thread: a root span `request{conn}` that takes `locks` nested, the
/// first outermost, each after waiting `wait_ns` (0: free), and lets them go after
/// `hold_ns`. `end` stops the thread's story inside it: 0 never, 1 holding every lock, 2
/// waiting for its last lock.
#[derive(Debug, Clone)]
struct Request {
    thread: usize,
    conn: u64,
    locks: Vec<(usize, u64)>,
    hold_ns: u64,
    gap_ns: u64,
    end: u8,
}

/// The recording: each thread's requests in turn, with times apart across threads (a
/// thread's ticks are its index modulo 8), so every reader sees one order.
fn recording(lock_kinds: &[bool], requests: &[Request], threads: usize) -> Vec<u8> {
    let mut callsites: Vec<Callsite> = lock_kinds
        .iter()
        .enumerate()
        .map(|(i, &rw)| lock_callsite(10 + i as u32, rw, true))
        .collect();
    callsites.push(callsite(REQUEST, true, "request", &["conn"]));
    let mut per: Vec<(Vec<TestRecord>, u64, bool)> = (0..threads)
        .map(|t| (Vec::new(), 8 + t as u64, false))
        .collect();
    let mut next_span = 1u64;
    let round = |ns: u64| ns / 8 * 8;
    for q in requests {
        let (records, now, stopped) = &mut per[q.thread];
        if *stopped {
            continue;
        }
        let mut at = *now + round(q.gap_ns);
        let span = next_span;
        next_span += 1;
        let mut put = |at: u64, callsite: u32, kind: TestRecordKind| {
            records.push(TestRecord {
                ticks: at,
                callsite,
                kind,
            })
        };
        let conn = vec![(0u8, TestValue::U64(q.conn))];
        put(
            at,
            REQUEST,
            TestRecordKind::SpanNew {
                span,
                parent: u64::MAX,
                fields: conn,
            },
        );
        at += 8;
        put(at, REQUEST, TestRecordKind::Enter(span));
        let lock_op = |op: u64, ns: u64| TestRecordKind::Event {
            parent: 0,
            fields: vec![
                (lock::OP, TestValue::U64(op)),
                (lock::NS, TestValue::U64(ns)),
            ],
        };
        for (k, &(l, wait_ns)) in q.locks.iter().enumerate() {
            let id = 10 + l as u32;
            at += 8;
            let wait = round(wait_ns);
            if wait > 0 {
                put(at, id, lock_op(lock::op::WAIT, 0));
                if q.end == 2 && k + 1 == q.locks.len() {
                    *stopped = true;
                    break;
                }
                at += wait;
            }
            put(at, id, lock_op(lock::op::ACQUIRED, wait));
        }
        if *stopped || q.end != 0 {
            *stopped = true;
            continue;
        }
        let hold = round(q.hold_ns).max(8);
        for &(l, _) in q.locks.iter().rev() {
            at += hold;
            put(at, 10 + l as u32, lock_op(lock::op::RELEASED, hold));
        }
        at += 8;
        put(at, REQUEST, TestRecordKind::Exit(span));
        at += 8;
        put(at, REQUEST, TestRecordKind::Close(span));
        *now = at + 8;
    }
    let per_thread = per.into_iter().map(|(records, _, _)| records).collect();
    records_image(&callsites, &numbered_threads(per_thread))
}

fn a_request(threads: usize, locks: usize) -> impl Strategy<Value = Request> {
    let wait = prop_oneof![4 => Just(0u64), 3 => 8u64..50_000, 1 => Just(150_000_000u64)];
    (
        0..threads,
        0u64..4,
        proptest::collection::vec((0..locks, wait), 1..=2),
        8u64..100_000,
        prop_oneof![6 => 0u64..30_000, 1 => Just(1_500_000_000u64)],
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(thread, conn, mut locks, hold_ns, gap_ns, end)| {
            // A thread never asks for a lock it holds here (that is a finding of its own,
            // tested elsewhere).
            locks.dedup_by_key(|(l, _)| *l);
            Request {
                thread,
                conn,
                locks,
                hold_ns,
                gap_ns,
                end,
            }
        })
}

fn scenario() -> impl Strategy<Value = (Vec<bool>, Vec<Request>, usize)> {
    (2usize..=4, 2usize..=3).prop_flat_map(|(threads, locks)| {
        (
            proptest::collection::vec(any::<bool>(), locks),
            proptest::collection::vec(a_request(threads, locks), 1..30),
            Just(threads),
        )
    })
}

/// `flightrec ARGS PATH`'s JSON, whatever its exit status (`check` exits 1 on findings).
fn json_of(args: &[&str], path: &std::path::Path) -> Json {
    let out = std::process::Command::new(flightrec_bin())
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The three readers' findings, locks and task counts for the recording at `path`, the
/// viewer's with what only the page needs taken out.
fn three_answers(path: &std::path::Path) -> [Json; 3] {
    let info = json_of(&["info", "--json"], path);
    let check = json_of(&["check", "--json"], path);
    let check = &check["recordings"][0];
    let rec = flightrec_format::open(path).unwrap();
    let mut meta = serde_json::to_value(flightrec_viewer::Model::new(rec).meta()).unwrap();
    for f in meta["findings"].as_array_mut().unwrap() {
        let f = f.as_object_mut().unwrap();
        for page_only in ["view", "from", "to", "marks"] {
            assert!(
                f.remove(page_only).is_some(),
                "the viewer's finding has {page_only}"
            );
        }
    }
    meta["tasks"].as_object_mut().unwrap().remove("count");
    let pick = |j: &Json| {
        serde_json::json!({
            "findings": j["findings"], "locks": j["locks"], "tasks": j["tasks"],
        })
    };
    [pick(&info), pick(check), pick(&meta)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn info_check_and_the_viewer_give_one_analysis((locks, requests, threads) in scenario()) {
        let dir = scratch();
        let path = dir.path().join("requests.flightrec-ring");
        std::fs::write(&path, recording(&locks, &requests, threads)).unwrap();
        let [info, check, meta] = three_answers(&path);
        prop_assert!(info["findings"].is_array() && info["locks"]["locks"].is_array());
        prop_assert_eq!(&info, &check);
        prop_assert_eq!(&info, &meta);
    }
}

/// The generator reaches what the property is about: findings of several kinds (a
/// deadlock, which takes in the inversion before it, a long wait, stuck threads), holds and
/// waits open at the end, and tasks left open.
#[test]
fn the_generator_reaches_findings_and_open_ends() {
    let q = |thread, locks: Vec<(usize, u64)>, gap_ns, end| Request {
        thread,
        conn: thread as u64,
        locks,
        hold_ns: 800,
        gap_ns,
        end,
    };
    let requests = vec![
        // t0 takes 0 then 1, having waited long for 1; t1 takes 1 then 0.
        q(0, vec![(0, 0), (1, 150_000_000)], 0, 0),
        q(1, vec![(1, 0), (0, 0)], 0, 0),
        // Then each holds one and waits for the other, a second and a half before t2's
        // last record.
        q(0, vec![(0, 0), (1, 800)], 0, 2),
        q(1, vec![(1, 0), (0, 800)], 0, 2),
        q(2, vec![(2, 0)], 1_500_000_000, 0),
    ];
    let dir = scratch();
    let path = dir.path().join("requests.flightrec-ring");
    std::fs::write(&path, recording(&[false, false, false], &requests, 3)).unwrap();
    let [info, check, meta] = three_answers(&path);
    assert_eq!(info, check);
    assert_eq!(info, meta);
    let kinds: Vec<&str> = info["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for k in ["deadlock", "lock_wait", "stuck"] {
        assert!(kinds.contains(&k), "no {k} among {kinds:?}");
    }
    assert_eq!(open_at_end(&info), (2, 2, 1), "{info}");
    assert_eq!(info["tasks"]["total"], 5, "{info}");
    assert_eq!(info["tasks"]["open"], 2, "{info}");
}
