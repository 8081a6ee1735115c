//! The tables (`export --format parquet`, `upload --tables`), read by real engines from
//! PyPI: pyarrow for schemas and rows, DuckDB for the fleet queries of docs/fleet.md. Both are
//! installed by `scripts/test.sh` into its Python.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value as Json;
use tracing_flightrec::sync::Mutex;

use crate::findings::on_thread;
use crate::helpers::*;

/// The test Python, when it has pyarrow and duckdb; required when FLIGHTREC_REQUIRE_ENGINES
/// is set (scripts/test.sh installs them).
pub(crate) fn engines() -> Option<String> {
    let python = std::env::var("FLIGHTREC_PYTHON").ok();
    let ok = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import pyarrow.parquet, duckdb"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match python {
        Some(p) if ok => Some(p),
        _ if std::env::var_os("FLIGHTREC_REQUIRE_ENGINES").is_some() => {
            panic!("no Python with pyarrow and duckdb: scripts/test.sh installs them")
        }
        _ => {
            not_run("no Python with pyarrow and duckdb (scripts/test.sh installs them)");
            None
        }
    }
}

/// Runs `script` with `args` in `python`; its standard output, parsed as JSON.
pub(crate) fn py_json(python: &str, script: &str, args: &[&str], envs: &[(&str, String)]) -> Json {
    let o = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// One service's recording on `host`: a connection span entered three times on
/// `posting` (a task with three polls), events with fields, and two locks taken in one order
/// by `posting` and by `auditor` in the same order, or the opposite one when `inverted`.
pub(crate) fn workload(dir: &Path, service: &str, host: &str, inverted: bool) -> PathBuf {
    let rec = quiet_builder(dir, service, 512 << 10)
        .host(host)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    let ledger = Arc::new(Mutex::named("ledger", 0u64));
    let audit = Arc::new(Mutex::named("audit", 0u64));
    let (l, a) = (ledger.clone(), audit.clone());
    on_thread(&d, "posting", move || {
        let conn = tracing::info_span!("conn", peer = "10.0.0.7");
        for i in 0..3u64 {
            let _poll = conn.enter();
            let _inner = tracing::debug_span!("parse", bytes = 512 + i).entered();
            tracing::info!(order = i, sku = "A-17", "handled");
            let mut l = l.lock().unwrap();
            let mut a = a.lock().unwrap();
            *l += 1;
            *a += 1;
        }
    });
    let (l, a) = (ledger.clone(), audit.clone());
    on_thread(&d, "auditor", move || {
        let (first, second) = if inverted { (&a, &l) } else { (&l, &a) };
        let mut x = first.lock().unwrap();
        let mut y = second.lock().unwrap();
        *x += 1;
        *y += 1;
        tracing::warn!(total = *x, "audited");
    });
    rec.snapshot().unwrap()
}

/// `flightrec export DUMP --format parquet -o OUT`.
fn export_to(dump: &Path, out: &Path) -> std::process::Output {
    flightrec(&[
        "export",
        dump.to_str().unwrap(),
        "--format",
        "parquet",
        "-o",
        out.to_str().unwrap(),
    ])
}

/// `flightrec upload DUMP --to s3://flight/fleet --tables --delete-after-upload` against the
/// store on `port`, its temporary files under `tmp` when given.
pub(crate) fn upload_with_tables(
    port: u16,
    dump: &Path,
    tmp: Option<&Path>,
) -> std::process::Output {
    let mut c = Command::new(flightrec_bin());
    c.args([
        "upload",
        dump.to_str().unwrap(),
        "--to",
        "s3://flight/fleet",
    ])
    .args(["--tables", "--delete-after-upload"])
    .envs(crate::upload::env(port));
    if let Some(tmp) = tmp {
        c.env("TMPDIR", tmp);
    }
    c.output().unwrap()
}

/// A small tmpfs (root only), or why not (which fails the test under
/// FLIGHTREC_REQUIRE_ROOT).
fn small_fs() -> Option<crate::disk::SmallFs> {
    use crate::disk::{is_root, skip, SmallFs};
    if !is_root() {
        skip("needs root to mount a small tmpfs");
        return None;
    }
    let fs = SmallFs::mount("24k");
    if fs.is_none() {
        skip("this environment does not allow mounting a tmpfs");
    }
    fs
}

/// `flightrec export DUMP... --format parquet -o DIR`, which must succeed.
fn export_tables(dumps: &[&Path], dir: &Path) -> String {
    let mut args = vec!["export".to_string()];
    args.extend(dumps.iter().map(|d| d.display().to_string()));
    args.extend(["--format", "parquet", "-o"].map(String::from));
    args.push(dir.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = flightrec(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Each table of a directory as pyarrow reads it: its schema, its row count, and the rows
/// of the small tables (records as lists of values).
const READ_TABLES: &str = r#"
import json, sys, pathlib
import pyarrow as pa, pyarrow.parquet as pq
out = {}
for t in ["recordings", "records", "spans", "tasks", "locks", "findings"]:
    files = sorted(pathlib.Path(sys.argv[1], t).glob("*.parquet"))
    tab = pa.concat_tables([pq.read_table(f) for f in files])
    schema = [[f.name, str(f.type)] for f in tab.schema]
    # Times as ns integers (Python's datetime stops at microseconds).
    for k, f in enumerate(tab.schema):
        if pa.types.is_timestamp(f.type):
            tab = tab.set_column(k, f.name, tab.column(k).cast(pa.int64()))
    rows = tab.to_pylist()
    for r in rows:
        if "fields" in r:
            r["fields"] = dict(r["fields"])
    out[t] = {"files": len(files), "schema": schema, "rows": rows}
print(json.dumps(out))
"#;

#[test]
fn tables_read_by_pyarrow_agree_with_cat_json_and_check() {
    let Some(python) = engines() else {
        return;
    };
    let dir = scratch();
    let dump = workload(dir.path(), "ledger", "web-1", true);
    let out_dir = dir.path().join("tables");
    let said = export_tables(&[&dump], &out_dir);
    assert!(said.contains("-> ") && said.contains(" records"), "{said}");
    // Rows are counted by table: a threaded program's `tasks` table holds its requests, so
    // the line never says "N tasks".
    assert!(said.contains(" rows in tasks"), "{said}");
    for part in said.split([',', '(', ')']) {
        let words: Vec<&str> = part.split_whitespace().collect();
        assert!(
            !(words.len() == 2 && words[0].parse::<u64>().is_ok() && words[1] == "tasks"),
            "{said}"
        );
    }
    let t = py_json(&python, READ_TABLES, &[out_dir.to_str().unwrap()], &[]);

    // records: one row per `cat --json` line, the same values in the same order.
    let cat = cat_json(&dump);
    let rows = t["records"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), cat.len());
    for (k, (row, line)) in rows.iter().zip(&cat).enumerate() {
        assert_eq!(row["seq"], k, "{row}");
        assert_eq!(row["ts"], line["ts"], "{row}");
        for key in [
            "kind", "level", "target", "name", "file", "line", "thread", "tid",
        ] {
            assert_eq!(row[key], line[key], "{key} of {row} / {line}");
        }
        assert_eq!(row["tokio_task"], line["task"], "{row}");
        assert_eq!(row["spans"], line["spans"], "{row}");
        let is_event = line["kind"] == "event";
        let mut fields = line["fields"].as_object().unwrap().clone();
        if is_event {
            let message = fields.remove("message").unwrap_or(Json::Null);
            assert_eq!(row["message"], message, "{row}");
        }
        for (name, value) in &fields {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), String::from);
            assert_eq!(row["fields"][name], text, "{name} of {row}");
        }
        assert_eq!(
            row["fields"].as_object().unwrap().len(),
            fields.len(),
            "{row}"
        );
    }
    // Types engines rely on.
    let schema: Vec<(String, String)> = t["records"]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into()))
        .collect();
    for (name, ty) in [
        ("recording_id", "string"),
        ("ts", "timestamp[ns, tz=UTC]"),
        ("tid", "uint64"),
        ("fields", "map<string, string ts-unordered>"),
        ("spans", "list<element: uint64>"),
    ] {
        assert!(
            schema
                .iter()
                .any(|(n, t)| n == name && t.starts_with(ty.split(' ').next().unwrap())),
            "{name}: {ty} in {schema:?}"
        );
    }

    // spans: the connection's three polls, on `posting`, each with `parse` nested inside.
    let spans = t["spans"]["rows"].as_array().unwrap();
    let polls: Vec<&Json> = spans.iter().filter(|s| s["name"] == "conn").collect();
    assert_eq!(polls.len(), 3, "{spans:?}");
    assert!(polls
        .iter()
        .all(|p| p["kind"] == "poll" && p["depth"] == 0 && p["thread"] == "posting"));
    let parses: Vec<&Json> = spans.iter().filter(|s| s["name"] == "parse").collect();
    assert_eq!(parses.len(), 3);
    for p in &parses {
        assert_eq!(p["depth"], 1);
        assert_eq!(p["parent"], polls[0]["span"]);
        assert_eq!(p["task"], polls[0]["span"]);
    }
    // tasks: the connection, polled three times.
    let tasks = t["tasks"]["rows"].as_array().unwrap();
    let conn = tasks
        .iter()
        .find(|k| k["task"] == polls[0]["span"])
        .unwrap();
    assert_eq!(conn["polls"], 3, "{conn}");
    assert_eq!(conn["is_async"], true);
    // locks: every taking a hold, as the lock statistics count them.
    let info = info_json(&dump);
    let locks = t["locks"]["rows"].as_array().unwrap();
    for label in ["ledger", "audit"] {
        let holds = locks
            .iter()
            .filter(|l| l["kind"] == "hold" && l["label"].as_str().unwrap().contains(label))
            .count();
        assert_eq!(holds, 4, "{label}: {locks:?}");
    }
    // findings: what `check` names, with evidence rows that are records of the table.
    let findings = t["findings"]["rows"].as_array().unwrap();
    assert_eq!(findings.len(), info["findings"].as_array().unwrap().len());
    let inversion = findings.iter().find(|f| f["kind"] == "lock_order").unwrap();
    for e in inversion["evidence"].as_array().unwrap() {
        let seq = e.as_u64().unwrap() as usize;
        assert!(cat[seq]["name"].as_str().is_some(), "{e}");
    }
    // recordings: one row, its counts those of the other tables.
    let r = &t["recordings"]["rows"][0];
    assert_eq!(r["service"], "ledger");
    assert_eq!(r["host"], "web-1");
    assert_eq!(r["pid"], std::process::id());
    assert_eq!(r["trigger"], "snapshot");
    assert_eq!(r["records"], cat.len());
    assert_eq!(r["span_entries"], spans.len());
    assert_eq!(r["findings"], findings.len());
    assert_eq!(r["lock_intervals"], locks.len());
    // Every table names the recording by the same id, the name of the files: the dump's
    // own file name.
    let id = r["recording_id"].as_str().unwrap();
    assert_eq!(id, dump.file_stem().unwrap().to_str().unwrap());
    for table in [
        "recordings",
        "records",
        "spans",
        "tasks",
        "locks",
        "findings",
    ] {
        assert!(
            out_dir.join(table).join(format!("{id}.parquet")).is_file(),
            "{table}"
        );
        for row in t[table]["rows"].as_array().unwrap() {
            assert_eq!(row["recording_id"], id, "{table}");
        }
    }
    // Nothing temporary is left beside them.
    for table in ["records", "spans"] {
        let names: Vec<_> = std::fs::read_dir(out_dir.join(table)).unwrap().collect();
        assert_eq!(names.len(), 1, "{table}: {names:?}");
    }
}

#[test]
fn tables_that_do_not_fit_fail_in_one_line_and_leave_nothing_half_written() {
    let Some(fs) = small_fs() else {
        return;
    };
    let dir = scratch();
    let dump = workload(dir.path(), "ledger", "web-1", false);
    let out = fs.path().join("tables");
    let o = export_to(&dump, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        files_under(&out),
        Vec::<PathBuf>::new(),
        "nothing half-written"
    );
    assert!(dump.is_file(), "the dump is untouched");

    // The same export, given room, writes every table.
    let roomy = dir.path().join("tables");
    let o = export_to(&dump, &roomy);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files_under(&roomy).len(), 6);

    // Not a directory: one line.
    let o = export_to(&dump, &dump);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a directory") && err.lines().count() == 1,
        "{err}"
    );
    // Standard output cannot hold a directory: one line, and no directory named `-`.
    let o = export_to(&dump, Path::new("-"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not -o -") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!Path::new("-").exists());
}

#[test]
fn an_upload_whose_tables_cannot_be_made_keeps_the_dump_uploaded_and_local() {
    use crate::upload::{boto, free_port, moto, start};
    let Some(moto) = moto() else {
        return;
    };
    let Some(fs) = small_fs() else {
        return;
    };
    let dir = scratch();
    let dump = workload(dir.path(), "ledger", "web-1", false);
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let o = upload_with_tables(port, &dump, Some(fs.path()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("to s3://flight/fleet/ledger/") && err.contains("but not its tables"),
        "{err}"
    );
    assert!(dump.is_file(), "kept locally: its tables are not shipped");
    let listed = boto(
        port,
        "keys = [o['Key'] for o in s3.list_objects_v2(Bucket='flight').get('Contents', [])]\n\
         s = [json.loads(s3.get_object(Bucket='flight', Key=k)['Body'].read()) for k in keys if k.endswith('.summary.json')]\n\
         print(json.dumps({'keys': keys, 'summaries': s}))",
    );
    let listed: Json = serde_json::from_str(listed.trim()).unwrap();
    let keys: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys.len(),
        2,
        "the dump and its summary, no table: {keys:?}"
    );
    assert!(keys.iter().all(|k| !k.contains("/tables/")), "{keys:?}");
    assert_eq!(listed["summaries"][0]["tables"], false);
    assert_eq!(
        files_under(fs.path()),
        Vec::<PathBuf>::new(),
        "no temporary left"
    );

    // With room, the same command ships the tables and then deletes the dump.
    let o = upload_with_tables(port, &dump, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dump.exists());
    let tables = boto(
        port,
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='flight')['Contents'] if '/tables/' in o['Key'])))",
    );
    let tables: Vec<String> = serde_json::from_str(tables.trim()).unwrap();
    assert_eq!(tables.len(), 6, "{tables:?}");
    for t in &tables {
        assert!(
            t.starts_with("fleet/tables/") && t.contains("/service=ledger/date="),
            "{t}"
        );
    }
}
