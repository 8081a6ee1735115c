//! Silence on correct programs, as a property: random recordings of threads serving
//! requests, taking locks in one order, touching shared objects only under their lock and
//! checking and acting in one hold, logging per-request data everywhere, must give no
//! finding at all. The same generator with one bug planted must give that bug's finding, so
//! the silence is not the generator's.

use flightrec_format::meta::lock;
use flightrec_format::testing::{
    callsite, numbered_threads, records_image, TestRecord, TestRecordKind, TestValue,
};
use flightrec_format::{Callsite, Level};

use super::{findings, Kind, Thresholds};

/// A small xorshift generator: each case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const REQUEST: u32 = 1;
const RECEIVED: u32 = 2;
const ADDRESS_TOUCH: u32 = 3;
const FAILED: u32 = 5;
const OUTSIDE: u32 = 6;
/// Lock `g` is callsite `LOCKS + g`; a touch of an object by its lock's name is callsite
/// `NAMED_TOUCH + g`.
const LOCKS: u32 = 10;
const NAMED_TOUCH: u32 = 40;

/// A bug to plant in an otherwise correct program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    None,
    /// One touch of a shared object without its lock.
    Unlocked,
    /// One request checks and acts on an object in two holds, another thread's hold of
    /// the lock touching it in between.
    SplitCheck,
    /// One thread takes two locks against the order.
    Inverted,
}

#[derive(Debug, Clone)]
enum Act {
    Begin(u64),
    End(u64),
    Event(u32, Vec<(u8, TestValue)>),
    Take(u32),
    Release(u32),
    /// Waits until the flag `n` is raised (by `Raise(n)` on another thread).
    Await(usize),
    Raise(usize),
}

fn level(id: u32, name: &str, lvl: Level, fields: &[&str]) -> Callsite {
    Callsite {
        level: lvl,
        ..callsite(id, false, name, fields)
    }
}

fn address(o: u64) -> TestValue {
    TestValue::Str(format!("0x7f3a{:08x}", 0x1000 + o * 64))
}

/// A touch of object `o` (guarded by lock `g`): by address, or by its lock's name.
fn touch(o: u64, g: u32, sku: u64) -> Act {
    if o.is_multiple_of(2) {
        Act::Event(
            ADDRESS_TOUCH,
            vec![(0, address(o)), (1, TestValue::U64(sku))],
        )
    } else {
        Act::Event(
            NAMED_TOUCH + g,
            vec![(0, TestValue::Str(format!("item{o}")))],
        )
    }
}

/// The program: each thread's acts, and the lock count.
fn program(rng: &mut Rng, plant: Plant) -> (Vec<Vec<Act>>, u32) {
    let threads = 2 + rng.below(3) as usize;
    let locks = 1 + rng.below(3) as u32;
    let objects = 1 + rng.below(4);
    let guard = |o: u64| (o % locks as u64) as u32;
    let mut span = 0u64;
    let mut acts: Vec<Vec<Act>> = vec![Vec::new(); threads];
    for (t, list) in acts.iter_mut().enumerate() {
        for n in 0..3 + rng.below(6) {
            let request_id = t as u64 * 1000 + n;
            let user = rng.below(4);
            if rng.chance(20) {
                list.push(Act::Event(
                    OUTSIDE,
                    vec![(0, TestValue::U64(user)), (1, TestValue::U64(rng.below(5)))],
                ));
            }
            span += 1;
            list.push(Act::Begin(span));
            list.push(Act::Event(
                RECEIVED,
                vec![
                    (0, TestValue::U64(user)),
                    (1, TestValue::U64(request_id)),
                    (2, TestValue::U64(rng.below(5))),
                ],
            ));
            // Objects this request is done with: each is checked and acted on in one hold.
            let mut used: Vec<u64> = Vec::new();
            for _ in 0..rng.below(4) {
                // One or two objects, their locks taken in the one order.
                let mut picked = vec![rng.below(objects)];
                if rng.chance(30) {
                    picked.push(rng.below(objects));
                }
                picked.sort_unstable();
                picked.dedup();
                picked.retain(|o| !used.contains(o));
                if picked.is_empty() {
                    continue;
                }
                used.extend(&picked);
                let mut held: Vec<u32> = picked.iter().map(|&o| guard(o)).collect();
                held.sort_unstable();
                held.dedup();
                for &g in &held {
                    list.push(Act::Take(g));
                    if rng.chance(30) {
                        list.push(Act::Event(
                            RECEIVED,
                            vec![(0, TestValue::U64(user)), (1, TestValue::U64(request_id))],
                        ));
                    }
                }
                let sku = rng.below(5);
                for &o in &picked {
                    for _ in 0..1 + rng.below(3) {
                        list.push(touch(o, guard(o), sku));
                    }
                }
                for &g in held.iter().rev() {
                    list.push(Act::Release(g));
                }
                // Per-request data between holds, outside any lock.
                list.push(Act::Event(
                    RECEIVED,
                    vec![(0, TestValue::U64(user)), (2, TestValue::U64(sku))],
                ));
            }
            if rng.chance(10) {
                list.push(Act::Event(FAILED, vec![(0, TestValue::U64(request_id))]));
            }
            list.push(Act::End(span));
        }
    }
    plant_bug(plant, &mut acts, &mut span, guard);
    (acts, locks)
}

/// Plants `plant` at the end of threads 0 and 1 (which then run after everything else).
fn plant_bug(plant: Plant, acts: &mut [Vec<Act>], span: &mut u64, guard: impl Fn(u64) -> u32) {
    let g = guard(0);
    match plant {
        Plant::None => {}
        Plant::Unlocked => {
            acts[0].extend([Act::Raise(0), Act::Take(g), touch(0, g, 1), Act::Release(g)]);
            acts[1].extend([Act::Await(0), touch(0, g, 1), Act::Raise(1)]);
            acts[0].extend([Act::Await(1), Act::Take(g), touch(0, g, 1), Act::Release(g)]);
        }
        Plant::SplitCheck => {
            *span += 1;
            let s = *span;
            acts[0].extend([
                Act::Begin(s),
                Act::Take(g),
                touch(0, g, 1),
                Act::Release(g),
                Act::Raise(0),
                Act::Await(1),
                Act::Take(g),
                touch(0, g, 1),
                Act::Release(g),
                Act::End(s),
            ]);
            acts[1].extend([
                Act::Await(0),
                Act::Take(g),
                touch(0, g, 2),
                Act::Release(g),
                Act::Raise(1),
            ]);
        }
        Plant::Inverted => {
            let (a, b) = (90, 91);
            acts[0].extend([Act::Take(a), Act::Take(b), Act::Release(b), Act::Release(a)]);
            acts[0].push(Act::Raise(0));
            acts[1].extend([
                Act::Await(0),
                Act::Take(b),
                Act::Take(a),
                Act::Release(a),
                Act::Release(b),
            ]);
        }
    }
}

/// The callsite of lock `g` (the planted inversion's two locks are 90 and 91).
fn lock_id(g: u32) -> u32 {
    LOCKS + g
}

/// Runs the program on a random schedule (a thread blocked on a lock waits, recording its
/// wait) into a ring image.
fn record(rng: &mut Rng, acts: Vec<Vec<Act>>, locks: u32) -> Vec<u8> {
    let threads = acts.len();
    let mut callsites = vec![
        callsite(REQUEST, true, "request", &["request_id"]),
        level(
            RECEIVED,
            "received",
            Level::Info,
            &["user", "request_id", "sku"],
        ),
        level(ADDRESS_TOUCH, "cache", Level::Debug, &["cache", "sku"]),
        level(FAILED, "failed", Level::Warn, &["request_id"]),
        level(OUTSIDE, "idle", Level::Info, &["user", "sku"]),
    ];
    let lock_ids: Vec<u32> = (0..locks)
        .map(|g| LOCKS + g)
        .chain([LOCKS + 90, LOCKS + 91])
        .collect();
    for &id in &lock_ids {
        callsites.push(Callsite {
            target: lock::TARGET.into(),
            level: Level::Trace,
            module: Some(lock::MUTEX.into()),
            fields: lock::FIELDS.iter().map(|f| f.to_string()).collect(),
            ..callsite(id, false, &format!("lock_{id}"), &[])
        });
        let name = format!("lock_{id}");
        callsites.push(level(
            NAMED_TOUCH + id - LOCKS,
            "named",
            Level::Info,
            &[name.as_str()],
        ));
    }
    let mut out: Vec<Vec<TestRecord>> = vec![Vec::new(); threads];
    let mut next = vec![0usize; threads];
    let mut owner: std::collections::HashMap<u32, (usize, u64)> = Default::default();
    let mut waiting: Vec<Option<u64>> = vec![None; threads];
    let mut raised = [false; 4];
    let mut now = 10u64;
    let op = |code: u64, ns: u64| TestRecordKind::Event {
        parent: 0,
        fields: vec![
            (lock::OP, TestValue::U64(code)),
            (lock::NS, TestValue::U64(ns)),
        ],
    };
    loop {
        let ready: Vec<usize> = (0..threads)
            .filter(|&t| match acts[t].get(next[t]) {
                None => false,
                Some(Act::Await(f)) => raised[*f],
                _ => true,
            })
            .collect();
        if ready.is_empty() {
            assert!(
                (0..threads).all(|t| next[t] == acts[t].len()),
                "the program cannot finish"
            );
            break;
        }
        let t = ready[rng.below(ready.len() as u64) as usize];
        now += 1 + rng.below(40);
        let at = |callsite, kind| TestRecord {
            ticks: now,
            callsite,
            kind,
        };
        let mut done = true;
        match &acts[t][next[t]] {
            Act::Begin(s) => {
                let new = TestRecordKind::SpanNew {
                    span: *s,
                    parent: u64::MAX,
                    fields: vec![(0, TestValue::U64(*s))],
                };
                out[t].push(at(REQUEST, new));
                out[t].push(at(REQUEST, TestRecordKind::Enter(*s)));
            }
            Act::End(s) => {
                out[t].push(at(REQUEST, TestRecordKind::Exit(*s)));
                out[t].push(at(REQUEST, TestRecordKind::Close(*s)));
            }
            Act::Event(c, fields) => out[t].push(at(
                *c,
                TestRecordKind::Event {
                    parent: 0,
                    fields: fields.clone(),
                },
            )),
            Act::Take(g) => {
                let id = lock_id(*g);
                match owner.get(&id) {
                    Some(_) => {
                        if waiting[t].is_none() {
                            out[t].push(at(id, op(lock::op::WAIT, 0)));
                            waiting[t] = Some(now);
                        }
                        done = false;
                    }
                    None => {
                        let waited = waiting[t].take().map_or(0, |since| now - since);
                        out[t].push(at(id, op(lock::op::ACQUIRED, waited)));
                        owner.insert(id, (t, now));
                    }
                }
            }
            Act::Release(g) => {
                let id = lock_id(*g);
                let (_, since) = owner.remove(&id).expect("released what it holds");
                out[t].push(at(id, op(lock::op::RELEASED, now - since)));
            }
            Act::Await(_) => {}
            Act::Raise(f) => raised[*f] = true,
        }
        if done {
            next[t] += 1;
        }
    }
    records_image(&callsites, &numbered_threads(out))
}

/// The kinds found in case `seed`, and whether its recording had contention (a thread
/// waited for a lock) and a failure.
fn case(seed: u64, plant: Plant) -> (Vec<Kind>, bool, bool) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (acts, locks) = program(&mut rng, plant);
    let img = record(&mut rng, acts, locks);
    let rec = flightrec_format::decode(&img).unwrap();
    assert!(!rec.damage.is_damaged(), "seed {seed}: {:?}", rec.damage);
    let contended = crate::Analysis::of(&rec, &Thresholds::default())
        .locks
        .stats
        .values()
        .any(|s| s.contended > 0);
    let failed = rec.records.iter().any(|r| r.callsite == FAILED);
    let kinds = findings(&rec, &Thresholds::default())
        .into_iter()
        .map(|f| f.kind)
        .collect();
    (kinds, contended, failed)
}

fn kinds_of(seed: u64, plant: Plant) -> Vec<Kind> {
    case(seed, plant).0
}

#[test]
fn a_thousand_random_correct_programs_give_no_finding() {
    let (mut contended, mut failed) = (0, 0);
    for seed in 0..1000 {
        let (found, c, f) = case(seed, Plant::None);
        assert!(found.is_empty(), "seed {seed}: {found:?}");
        contended += c as u32;
        failed += f as u32;
    }
    // The programs race for real: many cases saw threads wait for locks, and many had
    // failures for the interleaving rule to explain (or, here, not).
    assert!(contended > 300 && failed > 300, "{contended} {failed}");
}

#[test]
fn the_same_programs_with_a_bug_planted_give_its_finding() {
    for seed in 0..100 {
        let unlocked = kinds_of(seed, Plant::Unlocked);
        assert!(
            unlocked.contains(&Kind::InconsistentLocking),
            "seed {seed}: {unlocked:?}"
        );
        let split = kinds_of(seed, Plant::SplitCheck);
        assert!(split.contains(&Kind::Atomicity), "seed {seed}: {split:?}");
        assert_eq!(
            kinds_of(seed, Plant::Inverted),
            vec![Kind::LockOrder],
            "seed {seed}"
        );
    }
}
