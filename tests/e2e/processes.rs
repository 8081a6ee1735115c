//! Several processes on one timeline: two "servers" take job files from one spool directory
//! with a check-then-delete race, each recording its own dump. `cat A B` merges them in time
//! order naming each record's process, and both exports give each recording a process of its
//! own (the Perfetto trace decoded with Perfetto's own classes).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::*;

const SPOOL: &str = "FLIGHTREC_SPOOL_DIR";
const DUMPS: &str = "FLIGHTREC_SPOOL_DUMPS";
const JOBS: u64 = 300;

/// One spool server: for each job file, check that it is there, work on it, delete it.
/// Another server doing the same may take the file between the check and the delete.
#[test]
#[ignore = "child process of the spool test"]
fn spool_server_child() {
    let (Ok(spool), Ok(dumps)) = (std::env::var(SPOOL), std::env::var(DUMPS)) else {
        return;
    };
    let rec = tracing_flightrec::Recorder::builder()
        .dir(&dumps)
        .service("spool-server")
        .capacity(4 << 20)
        .snapshot_signal(None)
        .stall_threshold(None)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    // Recorded before the start, so that each server's recording holds a record even when
    // the other, started first on a loaded machine, takes every job.
    tracing::dispatcher::with_default(&d, || tracing::info!("ready"));
    println!("ready");
    // Both servers start together: the parent releases them by writing a file.
    let go = Path::new(&spool).join("go");
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    tracing::dispatcher::with_default(&d, || {
        for n in 0..JOBS {
            let path = Path::new(&spool).join(format!("job-{n}"));
            if !path.exists() {
                continue;
            }
            let _s = tracing::info_span!("job", job = n).entered();
            tracing::info!(job = n, "picked");
            std::thread::sleep(Duration::from_micros(50));
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(job = n, "done"),
                Err(_) => tracing::warn!(job = n, "job vanished: another server took it"),
            }
        }
    });
    let dump = rec.snapshot().unwrap();
    println!("dump {}", dump.display());
}

/// Runs two spool servers over one spool; returns their dumps.
fn two_servers(dir: &Path) -> Vec<PathBuf> {
    let spool = dir.join("spool");
    let dumps = dir.join("dumps");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::create_dir_all(&dumps).unwrap();
    for n in 0..JOBS {
        std::fs::write(spool.join(format!("job-{n}")), b"work").unwrap();
    }
    let mut servers: Vec<_> = (0..2)
        .map(|_| {
            child(
                "processes::spool_server_child",
                &[(SPOOL, &spool), (DUMPS, &dumps)],
            )
        })
        .collect();
    for s in &mut servers {
        wait_for(s, "ready");
    }
    std::fs::write(spool.join("go"), b"").unwrap();
    for s in &mut servers {
        assert!(s.wait().unwrap().success());
    }
    let found = dumps_in(&dumps);
    assert_eq!(found.len(), 2, "{found:?}");
    found
}

#[test]
fn two_processes_merge_into_one_timeline_in_cat_and_both_exports() {
    let dir = scratch();
    let dumps = two_servers(dir.path());
    let (a, b) = (dumps[0].to_str().unwrap(), dumps[1].to_str().unwrap());
    // cat A B: every record of both, in time order, each naming its process.
    let out = flightrec(&["cat", "--json", a, b]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let single = |p: &str| {
        String::from_utf8_lossy(&flightrec(&["cat", "--json", p]).stdout)
            .lines()
            .count()
    };
    assert_eq!(lines.len(), single(a) + single(b));
    assert!(lines
        .windows(2)
        .all(|w| w[0]["ts"].as_i64() <= w[1]["ts"].as_i64()));
    let pids: HashSet<u64> = lines
        .iter()
        .map(|l| l["process"]["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    // The race, seen across processes: jobs picked by both servers.
    let mut pickers: HashMap<u64, HashSet<u64>> = HashMap::new();
    for l in &lines {
        if l["fields"]["message"] == "picked" {
            pickers
                .entry(l["fields"]["job"].as_u64().unwrap())
                .or_default()
                .insert(l["process"]["pid"].as_u64().unwrap());
        }
    }
    assert_eq!(pickers.len() as u64, JOBS, "every job picked by someone");
    // Text: each line starts with its process.
    let text = flightrec(&["cat", a, b]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines().all(|l| l.starts_with("spool-server[")),
        "{text}"
    );

    // Perfetto: two processes, each with its thread, decoded with Perfetto's classes.
    if let Some(python) = crate::export::perfetto_python() {
        let out = dir.path().join("both.perfetto-trace");
        let o = flightrec(&[
            "export",
            a,
            b,
            "--format",
            "perfetto",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let packets = crate::export::decode_perfetto(&python, &out);
        let mut processes: HashMap<u64, i64> = HashMap::new();
        let mut threads: Vec<(u64, i64)> = Vec::new();
        for p in &packets {
            if let Some(t) = p.get("track_descriptor") {
                if let Some(pr) = t.get("process") {
                    processes.insert(crate::export::num(&t["uuid"]), pr["pid"].as_i64().unwrap());
                }
                if let Some(th) = t.get("thread") {
                    threads.push((
                        crate::export::num(&t["parent_uuid"]),
                        th["pid"].as_i64().unwrap(),
                    ));
                }
            }
        }
        assert_eq!(processes.len(), 2, "{processes:?}");
        let trace_pids: HashSet<i64> = processes.values().copied().collect();
        assert_eq!(
            trace_pids,
            pids.iter().map(|&p| p as i64).collect::<HashSet<_>>()
        );
        // Every thread track belongs to one of the two processes, with that process's pid.
        assert!(!threads.is_empty());
        for (parent, pid) in &threads {
            assert_eq!(processes.get(parent), Some(pid));
        }
        // Each recording on a sequence of its own.
        let sequences: HashSet<u64> = packets
            .iter()
            .map(|p| p["trusted_packet_sequence_id"].as_u64().unwrap())
            .collect();
        assert_eq!(sequences.len(), 2);
    }

    // Chrome: two processes, named, and the events of both.
    let out = dir.path().join("both.json");
    let o = flightrec(&[
        "export",
        a,
        b,
        "--format",
        "chrome",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let names: Vec<(u64, String)> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| {
            (
                e["pid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(names.len(), 2);
    for (pid, name) in &names {
        assert_eq!(name, &format!("spool-server[{pid}]"));
    }
    assert_eq!(v["otherData"]["processes"].as_array().unwrap().len(), 2);
    // Bad input among several: one clear line, no file.
    let missing = dir.path().join("missing.flightrec");
    let bad = dir.path().join("bad.json");
    let o = flightrec(&[
        "export",
        a,
        missing.to_str().unwrap(),
        "--format",
        "chrome",
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing.flightrec"), "{err}");
    assert!(!bad.exists());
}

/// The merged view in a browser: both processes' threads on one timeline, and a job picked
/// by both servers followed across them, the step from one process to the other marked as a
/// hand-over. Runs the servers until the race shows (nearly always the first run).
#[test]
fn the_merged_view_follows_a_job_across_two_processes() {
    if !crate::viewer::browser_available() {
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (dir, dumps, job) = loop {
        let dir = scratch();
        let dumps = two_servers(dir.path());
        // A job both picked: its "picked" records come from both processes.
        let mut pickers: HashMap<u64, HashSet<u64>> = HashMap::new();
        for d in &dumps {
            cat_json_each(d, |j| {
                if j["fields"]["message"] == "picked" {
                    let pid = flightrec_format::open(d).unwrap().process.pid as u64;
                    pickers
                        .entry(j["fields"]["job"].as_u64().unwrap())
                        .or_default()
                        .insert(pid);
                }
            });
        }
        if let Some((&job, _)) = pickers.iter().find(|(_, p)| p.len() == 2) {
            break (dir, dumps, job);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "in two minutes of runs, no job was picked by both servers"
        );
    };
    let _keep = dir;
    let paths = format!("{},{}", dumps[0].display(), dumps[1].display());
    let out = crate::viewer::drive(
        "merged",
        Path::new(&paths),
        serde_json::json!({"query": format!("?field=job&value={job}")}),
    );
    let processes = out["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2);
    // Lanes grouped by process: every lane of process 0, then every lane of process 1.
    let lanes = out["lanesMeta"].as_array().unwrap();
    let order: Vec<u64> = lanes
        .iter()
        .map(|l| l["process"].as_u64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert_eq!(*order.first().unwrap(), 0);
    assert_eq!(*order.last().unwrap(), 1);
    for l in lanes {
        let p = &processes[l["process"].as_u64().unwrap() as usize];
        assert!(
            l["name"]
                .as_str()
                .unwrap()
                .starts_with(p["label"].as_str().unwrap()),
            "{l}"
        );
    }
    // The job's records come from both processes, and the step between them is marked.
    let records = out["objectRecords"].as_array().unwrap();
    let labels: HashSet<String> = records
        .iter()
        .map(|r| {
            r["thread"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(labels.len(), 2, "{records:?}");
    assert!(records.iter().any(|r| r["handover"] == true
        && r["from"].as_str().unwrap().split(' ').next()
            != r["thread"].as_str().unwrap().split(' ').next()));
    assert_eq!(out["highlighted"].as_array().unwrap().len(), records.len());
    // The first process folds into one row: its lanes are neither drawn nor labelled but
    // for the fold's row, which names it; unfolded, everything is back.
    let of_first: Vec<usize> = lanes
        .iter()
        .enumerate()
        .filter(|(_, l)| l["process"] == 0)
        .map(|(i, _)| i)
        .collect();
    let folded = &out["folded"];
    let heights: Vec<u64> = folded["heights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap())
        .collect();
    assert!(
        heights[of_first[0]] > 0 && of_first[1..].iter().all(|&i| heights[i] == 0),
        "{heights:?}"
    );
    assert!(folded["drawnLanes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| !of_first.contains(&(l.as_u64().unwrap() as usize))));
    let labels = folded["labels"].as_array().unwrap();
    assert_eq!(labels.len(), lanes.len() - of_first.len() + 1, "{labels:?}");
    assert!(labels[0].as_str().unwrap().starts_with("▸ "), "{labels:?}");
    let unfolded = &out["unfolded"];
    assert_eq!(unfolded["labels"].as_array().unwrap().len(), lanes.len());
    assert!(unfolded["heights"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h.as_u64().unwrap() > 0));
    // Each process's clock source is shown, and one shifted by a measured offset moves its
    // lanes, and only its lanes, by exactly that much.
    let rows = out["processRows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.as_str().unwrap().contains("(clock TSC")
            || r.as_str().unwrap().contains("(clock CLOCK_MONOTONIC")));
    assert!(
        out["shiftedUrl"].as_str().unwrap().contains("@2500000"),
        "{}",
        out["shiftedUrl"]
    );
    let absolute = |v: &serde_json::Value| -> Vec<(u64, i128)> {
        let origin: i128 = v["origin"].as_str().unwrap().parse().unwrap();
        v["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["process"].as_u64().unwrap(),
                    origin + l["data_start"].as_f64().unwrap() as i128,
                )
            })
            .collect()
    };
    let (before, after) = (absolute(&out["beforeShift"]), absolute(&out["afterShift"]));
    assert_eq!(before.len(), after.len());
    for ((p, b), (q, a)) in before.iter().zip(&after) {
        assert_eq!(p, q);
        let expected = if *p == 1 { 2_500_000 } else { 0 };
        assert!(
            (a - b - expected).abs() <= 1,
            "process {p}: moved {} ns",
            a - b
        );
    }
    assert!(out["processRowsAfter"][1]
        .as_str()
        .unwrap()
        .contains("shifted 2.500 ms"));
    // The index page opens the two together too.
    assert_eq!(out["indexPicks"], 2);
    assert!(out["togetherUrl"].as_str().unwrap().contains("/dump/"));
    assert_eq!(out["togetherLanes"].as_u64().unwrap(), lanes.len() as u64);
}
