//! The fleet path at scale: a bucket of 10 000 dumps listed a page at a time, and a fleet of
//! real dumps uploaded with `--tables`, read in place by pyarrow's S3 filesystem and queried
//! by DuckDB with the queries of docs/fleet.md.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::helpers::*;
use crate::tables::{engines, py_json, upload_with_tables, workload};
use crate::upload::{boto, env, free_port, moto, start, upload};

/// The fleet server of `support/s3_fleet.py`: moto in a Python process of its own, holding
/// `count` dumps and their summaries, counting the requests it answers.
struct FleetServer {
    child: std::process::Child,
    port: u16,
    /// The 500 newest dump keys, newest first.
    newest: Vec<String>,
}

impl FleetServer {
    fn start(python: &str, count: usize, dump: &Path, extra: &[&str]) -> FleetServer {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/support/s3_fleet.py");
        let mut child = Command::new(python)
            .arg(script)
            .args([port.to_string(), count.to_string()])
            .arg(dump)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let newest = ready["newest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        FleetServer {
            child,
            port,
            newest,
        }
    }

    /// Requests answered so far (the count's own request is not counted).
    fn requests(&self) -> u64 {
        let (_, body) = http_get(&format!("127.0.0.1:{}", self.port), "/__requests");
        body.trim().parse().unwrap()
    }
}

impl Drop for FleetServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `view s3://flight/fleet ARGS`: the time to its URL, the requests it made meanwhile, and
/// the keys its index lists, in its order.
fn list(fleet: &FleetServer, args: &[&str]) -> (Duration, u64, Vec<String>) {
    let cache = scratch();
    let mut envs = env(fleet.port);
    envs.push(("XDG_CACHE_HOME", cache.path().display().to_string()));
    let mut all = vec!["s3://flight/fleet"];
    all.extend_from_slice(args);
    let before = fleet.requests();
    let began = Instant::now();
    let viewer = start_viewer(&all, &envs);
    let took = began.elapsed();
    let requests = fleet.requests() - before;
    let (_, index) = http_get(&viewer.host, "/api/dumps");
    let index: Json = serde_json::from_str(&index).unwrap();
    let keys = index["dumps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap().to_string())
        .collect();
    (took, requests, keys)
}

#[test]
fn the_first_page_of_ten_thousand_dumps_lists_in_requests_that_grow_with_the_page() {
    let (Some(_), Some(python)) = (moto(), engines()) else {
        return;
    };
    let dir = scratch();
    let rec = recorder(dir.path(), "fleet", 256 << 10);
    tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!("one"));
    let fleet = FleetServer::start(&python, 10_000, &rec.snapshot().unwrap(), &[]);

    // The default page: the 200 newest, newest first.
    let (took, requests, keys) = list(&fleet, &[]);
    assert_eq!(keys, fleet.newest[..200], "newest first");
    // A LIST for the services, one for each service's days, one for each service's
    // newest day or two, then one summary per dump shown: the page, not the bucket.
    assert!(
        requests <= 200 + 20,
        "{requests} requests for a page of 200"
    );
    assert!(
        took < Duration::from_secs(3),
        "the first page took {took:?} ({requests} requests)"
    );
    eprintln!("first page of 200 out of 10 000: {took:?}, {requests} requests");

    let (_, small, keys) = list(&fleet, &["--limit", "20"]);
    assert_eq!(keys, fleet.newest[..20]);
    assert!(small <= 20 + 20, "{small} requests for a page of 20");
    assert!(
        requests - small >= 150,
        "{requests} against {small}: grows with the page"
    );

    // Filters narrow by key first: one service, one trigger, in the page's time order.
    let (_, filtered, keys) = list(
        &fleet,
        &[
            "--service",
            "billing",
            "--trigger",
            "panic",
            "--limit",
            "10",
        ],
    );
    let expected: Vec<&String> = fleet
        .newest
        .iter()
        .filter(|k| k.contains("/billing/") && k.ends_with("-panic.flightrec"))
        .take(10)
        .collect();
    assert_eq!(keys.iter().collect::<Vec<_>>(), expected);
    assert!(
        filtered <= 10 + 20,
        "{filtered} requests for 10 filtered dumps"
    );
}

/// Hosts and services of the test fleet, and which of them invert the lock order.
const HOSTS: [&str; 3] = ["web-1", "web-2", "db-1"];
const SERVICES: [&str; 3] = ["checkout", "billing", "search"];
const FLEET: usize = 105;

fn inverted(service: &str, host: &str) -> bool {
    host == "db-1" || (host == "web-2" && service == "billing")
}

/// docs/fleet.md's queries (the ```sql blocks of its fleet-tables section), reading from
/// `tables` instead of `s3://flight/fleet/tables`.
fn readme_queries(tables: &Path) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/fleet.md"))
            .unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Fleet tables"))
        .expect("docs/fleet.md has a Fleet tables section");
    let queries: Vec<String> = section
        .split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim().to_string())
        .map(|q| q.replace("s3://flight/fleet/tables", tables.to_str().unwrap()))
        .collect();
    assert_eq!(queries.len(), 3, "three queries in docs/fleet.md");
    queries
}

const DUCKDB: &str = r#"
import duckdb, json, sys
out = []
for q in json.loads(sys.argv[1]):
    out.append([list(map(lambda v: v if isinstance(v, (int, float, str)) or v is None else str(v), row)) for row in duckdb.sql(q).fetchall()])
print(json.dumps(out))
"#;

const PYARROW_S3: &str = r#"
import json, sys
import pyarrow.dataset as ds, pyarrow.fs as pafs
port, local = sys.argv[1], sys.argv[2]
s3 = pafs.S3FileSystem(endpoint_override="127.0.0.1:" + port, scheme="http",
                       access_key="testing", secret_key="secret-never-printed", region="us-east-1")
recordings = ds.dataset("flight/fleet/tables/recordings", filesystem=s3, format="parquet",
                        partitioning="hive").to_table()
records = ds.dataset("flight/fleet/tables/records", filesystem=s3, format="parquet",
                     partitioning="hive").count_rows()
pafs.copy_files("flight/fleet/tables", local, source_filesystem=s3)
print(json.dumps({
    "columns": recordings.schema.names,
    "rows": recordings.select(["recording_id", "service", "host", "date", "records"]).to_pylist(),
    "records": records,
}, default=str))
"#;

#[test]
fn a_fleet_uploaded_with_tables_answers_the_readmes_queries_in_duckdb() {
    let (Some(moto), Some(python)) = (moto(), engines()) else {
        return;
    };
    let dir = scratch();
    let mut dumps: Vec<PathBuf> = Vec::new();
    let mut inversions: BTreeMap<&str, u64> = BTreeMap::new();
    let mut service_of: HashMap<PathBuf, &str> = HashMap::new();
    for k in 0..FLEET {
        let (service, host) = (SERVICES[k % 3], HOSTS[(k / 3) % 3]);
        let d = workload(
            &dir.path().join(k.to_string()),
            service,
            host,
            inverted(service, host),
        );
        if inverted(service, host) {
            *inversions.entry(host).or_default() += 1;
        }
        service_of.insert(d.clone(), service);
        dumps.push(d);
    }
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let mut args: Vec<&str> = dumps.iter().map(|d| d.to_str().unwrap()).collect();
    args.extend(["--to", "s3://flight/fleet", "--tables"]);
    let o = upload(port, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Dumps per service and day, from the keys the upload printed.
    let mut per_day: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut names = std::collections::BTreeSet::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let key = line.split(" to s3://flight/").nth(1).unwrap();
        let parts: Vec<&str> = key.split('/').collect();
        names.insert(parts[3].trim_end_matches(".flightrec").to_string());
        *per_day
            .entry((parts[1].to_string(), parts[2].to_string()))
            .or_default() += 1;
    }
    assert_eq!(per_day.values().sum::<u64>(), FLEET as u64);

    // The summaries carry the findings' kinds: `view --finding` lists the inverted dumps.
    let cache = scratch();
    let mut envs = env(port);
    envs.push(("XDG_CACHE_HOME", cache.path().display().to_string()));
    let viewer = start_viewer(&["s3://flight/fleet", "--finding", "lock_order"], &envs);
    let (_, index) = http_get(&viewer.host, "/api/dumps");
    drop(viewer);
    let index: Json = serde_json::from_str(&index).unwrap();
    let listed = index["dumps"].as_array().unwrap();
    assert_eq!(listed.len() as u64, inversions.values().sum::<u64>());
    for d in listed {
        let key = d["file"].as_str().unwrap();
        let service = key.split('/').nth(1).unwrap();
        let host = HOSTS
            .iter()
            .find(|h| key.contains(&format!("/{h}-")))
            .unwrap();
        assert!(inverted(service, host), "{key}");
    }

    // pyarrow reads the tables in place, the Hive partitions as columns.
    let local = dir.path().join("tables");
    let t = py_json(
        &python,
        PYARROW_S3,
        &[&port.to_string(), local.to_str().unwrap()],
        &[],
    );
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), FLEET);
    for col in ["recording_id", "service", "host", "date"] {
        assert!(
            t["columns"].as_array().unwrap().iter().any(|c| c == col),
            "{col}"
        );
    }
    // Each recording's id is its dump's name in the bucket.
    let ids: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| r["recording_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, names);
    let records: u64 = rows.iter().map(|r| r["records"].as_u64().unwrap()).sum();
    assert_eq!(
        t["records"], records,
        "the records tables hold what the recordings count"
    );

    // docs/fleet.md's three queries, answered by DuckDB, against what the fleet was made of.
    let queries = readme_queries(&local);
    let q = serde_json::to_string(&queries).unwrap();
    let answers = py_json(&python, DUCKDB, &[&q], &[]);
    eprintln!("docs/fleet.md's queries answered: {answers}");
    let by_trigger: Vec<(String, String, String, u64)> = answers[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap().to_string();
            (s(0), s(1), s(2), r[3].as_u64().unwrap())
        })
        .collect();
    let expected: Vec<(String, String, String, u64)> = per_day
        .iter()
        .map(|((s, d), n)| (s.clone(), d.clone(), "snapshot".to_string(), *n))
        .collect();
    assert_eq!(
        by_trigger, expected,
        "dumps per trigger per service per day"
    );
    let by_host: Vec<(String, u64)> = answers[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
        .collect();
    let expected: Vec<(String, u64)> = inversions
        .iter()
        .map(|(h, n)| (h.to_string(), *n))
        .collect();
    assert_eq!(by_host, expected, "lock-order inversions by host");

    // p99 poll time per service, against the polls `cat --json` shows (an enter and its
    // exit), at DuckDB's rank for quantile_disc: round((n - 1) * 0.99).
    let mut polls: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for d in &dumps {
        let mut entered = HashMap::new();
        cat_json_each(d, |r| {
            if r["name"] != "conn" {
                return;
            }
            let span = r["span"].as_u64().unwrap();
            match r["kind"].as_str().unwrap() {
                "enter" => {
                    entered.insert(span, r["ts"].as_i64().unwrap());
                }
                "exit" => {
                    let begin = entered.remove(&span).unwrap();
                    polls
                        .entry(service_of[d])
                        .or_default()
                        .push(r["ts"].as_i64().unwrap() - begin);
                }
                _ => {}
            }
        });
    }
    let p99: Vec<Json> = answers[2].as_array().unwrap().clone();
    assert_eq!(p99.len(), 3);
    for row in &p99 {
        let service = row[0].as_str().unwrap();
        let mut d = polls[service].clone();
        d.sort_unstable();
        assert_eq!(
            row[2].as_u64().unwrap() as usize,
            d.len(),
            "{service}: polls"
        );
        let rank = ((d.len() - 1) as f64 * 0.99 + 0.5).floor() as usize;
        let want_us = d[rank] as f64 / 1e3;
        let got_us = row[1].as_f64().unwrap();
        assert!(
            (got_us - want_us).abs() <= 0.05 + 1e-9,
            "{service}: p99 {got_us} µs, want {want_us}"
        );
    }
}

#[test]
fn tables_the_store_refuses_leave_the_dump_uploaded_and_kept_in_one_line() {
    let (Some(_), Some(python)) = (moto(), engines()) else {
        return;
    };
    let dir = scratch();
    let dump = workload(dir.path(), "ledger", "web-1", false);
    let fleet = FleetServer::start(&python, 0, &dump, &["--refuse-tables"]);
    let o = upload_with_tables(fleet.port, &dump, None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("but not its tables") && err.contains("access denied"),
        "{err}"
    );
    assert!(dump.is_file(), "kept: not everything asked for was shipped");
    // The dump and its summary are there, and listed.
    let (_, _, keys) = list(&fleet, &[]);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("fleet/ledger/"), "{keys:?}");
}
