//! One lock model: on random recordings of lock events (with waits, takings and releases
//! lost as if overwritten), `info --json`'s lock statistics, holds and waits equal the
//! viewer's lock pages.

use std::collections::BTreeSet;

use flightrec_format::meta::{lock, Callsite, Level, ThreadEntry};
use flightrec_format::testing::{events_image, TestEvent, EVENTS_WALL_NS};
use proptest::prelude::*;
use serde_json::Value as Json;

use crate::helpers::*;

/// One use of a lock by a thread: it may wait, then takes it and lets it go; `end` says
/// where the story stops when it is the thread's last (0: complete, 1: still holding,
/// 2: still waiting); `lost` drops the wait, taking or release record (bits 0, 1, 2).
#[derive(Debug, Clone)]
struct Use {
    thread: usize,
    lock: usize,
    shared: bool,
    wait_ns: u64,
    hold_ns: u64,
    gap_ns: u64,
    end: u8,
    lost: u8,
}

pub(crate) fn lock_callsite(id: u32, rw: bool, named: bool) -> Callsite {
    let kind = if rw { lock::RW_LOCK } else { lock::MUTEX };
    Callsite {
        id,
        is_span: false,
        level: Level::Trace,
        target: lock::TARGET.into(),
        name: if named {
            format!("lock_{id}")
        } else {
            format!("{kind}<u64>")
        },
        file: Some("src/shop.rs".into()),
        line: Some(id),
        module: Some(kind.into()),
        fields: lock::FIELDS.iter().map(|f| f.to_string()).collect(),
    }
}

/// The recording's threads, each with its events; times are apart across threads (a
/// thread's ticks are its index modulo 8) so the order is the same for every reader.
fn recording(locks: &[(bool, bool)], uses: &[Use], threads: usize) -> Vec<u8> {
    let callsites: Vec<Callsite> = locks
        .iter()
        .enumerate()
        .map(|(i, &(rw, named))| lock_callsite(10 + i as u32, rw, named))
        .collect();
    let mut per: Vec<(ThreadEntry, Vec<TestEvent>, u64, bool)> = (0..threads)
        .map(|t| {
            let entry = ThreadEntry {
                index: t as u32,
                tid: 100 + t as u64,
                name: format!("t{t}"),
            };
            (entry, Vec::new(), 8 + t as u64, false)
        })
        .collect();
    for u in uses {
        let (_, events, now, stopped) = &mut per[u.thread];
        if *stopped {
            continue;
        }
        let id = 10 + u.lock as u32;
        let shared = u.shared && locks[u.lock].0;
        let op = |exclusive: u64, shared_op: u64| if shared { shared_op } else { exclusive };
        let mut put = |at: u64, code: u64, ns: u64, bit: u8| {
            if u.lost & bit == 0 {
                events.push(TestEvent {
                    ticks: at,
                    callsite: id,
                    fields: vec![(lock::OP, code), (lock::NS, ns)],
                });
            }
        };
        let round = |ns: u64| ns / 8 * 8;
        let begin = *now + round(u.gap_ns);
        let wait = round(u.wait_ns);
        if wait > 0 {
            put(begin, op(lock::op::WAIT, lock::op::WAIT_SHARED), 0, 1);
        }
        if u.end == 2 && wait > 0 {
            *stopped = true;
            continue;
        }
        let took = begin + wait;
        put(
            took,
            op(lock::op::ACQUIRED, lock::op::ACQUIRED_SHARED),
            wait,
            2,
        );
        if u.end == 1 {
            *stopped = true;
            continue;
        }
        let hold = round(u.hold_ns).max(8);
        put(
            took + hold,
            op(lock::op::RELEASED, lock::op::RELEASED_SHARED),
            hold,
            4,
        );
        *now = took + hold + 8;
    }
    let threads: Vec<(ThreadEntry, Vec<TestEvent>)> =
        per.into_iter().map(|(t, e, _, _)| (t, e)).collect();
    events_image(&callsites, &threads)
}

fn a_use(threads: usize, locks: usize) -> impl Strategy<Value = Use> {
    (
        0..threads,
        0..locks,
        any::<bool>(),
        prop_oneof![Just(0u64), 8u64..50_000],
        8u64..100_000,
        0u64..30_000,
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(4u8), 1 => 0u8..8],
    )
        .prop_map(
            |(thread, lock, shared, wait_ns, hold_ns, gap_ns, end, lost)| Use {
                thread,
                lock,
                shared,
                wait_ns,
                hold_ns,
                gap_ns,
                end,
                lost,
            },
        )
}

fn scenario() -> impl Strategy<Value = (Vec<(bool, bool)>, Vec<Use>, usize)> {
    (2usize..=4, 1usize..=3).prop_flat_map(|(threads, locks)| {
        (
            proptest::collection::vec((any::<bool>(), any::<bool>()), locks),
            proptest::collection::vec(a_use(threads, locks), 1..40),
            Just(threads),
        )
    })
}

/// (thread name, since in ns since the Unix epoch, shared) of `info`'s holds or waits of
/// `lock`.
fn info_parties(list: &Json, lock: u64) -> BTreeSet<(String, i64, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|h| h["lock"] == lock)
        .map(|h| {
            (
                h["thread"]["name"].as_str().unwrap().to_owned(),
                h["since"].as_i64().unwrap(),
                h["shared"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn viewer_parties(
    list: &[flightrec_viewer::contract::LockParty],
    origin: i64,
) -> BTreeSet<(String, i64, bool)> {
    list.iter()
        .map(|p| (p.thread.clone(), p.since + origin, p.shared))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn info_and_the_viewer_read_locks_alike((locks, uses, threads) in scenario()) {
        let dir = scratch();
        let path = dir.path().join("locks.ring");
        std::fs::write(&path, recording(&locks, &uses, threads)).unwrap();
        let info = info_json(&path);
        let rec = flightrec_format::open(&path).unwrap();
        prop_assert!(rec.records.iter().all(|r| r.ts >= EVENTS_WALL_NS as i64));
        let model = flightrec_viewer::Model::new(rec);
        let listed = info["locks"]["locks"].as_array().unwrap();
        prop_assert_eq!(listed.len(), locks.len());
        for l in listed {
            let id = l["id"].as_u64().unwrap();
            let page = model.lock(id as u32).expect("the viewer knows every lock info lists");
            prop_assert_eq!(l["acquisitions"].as_u64(), Some(page.row.stats.acquisitions), "{}", l);
            prop_assert_eq!(l["contended"].as_u64(), Some(page.row.stats.contended), "{}", l);
            prop_assert_eq!(l["total_wait_ns"].as_u64(), Some(page.row.stats.total_wait_ns), "{}", l);
            prop_assert_eq!(l["max_wait_ns"].as_u64(), Some(page.row.stats.max_wait_ns), "{}", l);
            prop_assert_eq!(l["total_hold_ns"].as_u64(), Some(page.row.stats.total_hold_ns), "{}", l);
            prop_assert_eq!(l["max_hold_ns"].as_u64(), Some(page.row.stats.max_hold_ns), "{}", l);
            prop_assert_eq!(
                info_parties(&info["locks"]["holds"], id),
                viewer_parties(&page.holders, model.origin)
            );
            prop_assert_eq!(
                info_parties(&info["locks"]["waits"], id),
                viewer_parties(&page.waiters, model.origin)
            );
        }
    }
}

/// The generator makes what the property needs: lost waits whose taking survived (the
/// writer's measure stands in), holds and waits open at the end, and contention.
#[test]
fn the_generator_reaches_lost_waits_and_open_ends() {
    let uses = vec![
        Use {
            thread: 0,
            lock: 0,
            shared: false,
            wait_ns: 800,
            hold_ns: 1600,
            gap_ns: 0,
            end: 0,
            lost: 1,
        },
        Use {
            thread: 1,
            lock: 0,
            shared: false,
            wait_ns: 0,
            hold_ns: 800,
            gap_ns: 0,
            end: 1,
            lost: 0,
        },
        Use {
            thread: 0,
            lock: 0,
            shared: false,
            wait_ns: 400,
            hold_ns: 80,
            gap_ns: 0,
            end: 2,
            lost: 0,
        },
    ];
    let dir = scratch();
    let path = dir.path().join("locks.ring");
    std::fs::write(&path, recording(&[(false, true)], &uses, 2)).unwrap();
    let info = info_json(&path);
    let l = &info["locks"]["locks"][0];
    // Two takings; the first waited 800 ns, known only from its taking record.
    assert_eq!(l["acquisitions"], 2, "{info}");
    assert_eq!(l["contended"], 1, "{info}");
    assert_eq!(l["total_wait_ns"], 800, "{info}");
    let (holds, waits, _) = open_at_end(&info);
    assert_eq!((holds, waits), (1, 1), "{info}");
    let model = flightrec_viewer::Model::new(flightrec_format::open(&path).unwrap());
    let page = model.lock(10).unwrap();
    assert_eq!(page.row.stats.contended, 1);
    // The lost wait is drawn all the same, from the writer's measure.
    assert_eq!(page.longest_waits.len(), 1);
    assert_eq!(page.longest_waits[0].ns, 800);
}
