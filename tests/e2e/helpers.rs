//! Shared helpers: scratch directories on tmpfs, recorders and dispatchers, and running the
//! `flightrec` binary.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;
use tracing::Dispatch;
use tracing_flightrec::Recorder;
use tracing_subscriber::prelude::*;

/// A scratch directory, on tmpfs where there is one (rings are meant to live there).
pub fn scratch() -> tempfile::TempDir {
    let b = tempfile::Builder::new()
        .prefix("flightrec-test-")
        .tempdir_in("/dev/shm");
    b.or_else(|_| tempfile::tempdir())
        .expect("scratch directory")
}

/// A recorder builder without the process-wide triggers (snapshot signal, panic hook, crash
/// and stop handlers, stall watchdog), so tests sharing this process do not set off each
/// other's dumps, and without dump announcements (written to stderr past the harness's
/// capture).
pub fn quiet_builder(dir: &Path, service: &str, capacity: u64) -> tracing_flightrec::Builder {
    Recorder::builder()
        .dir(dir)
        .service(service)
        .capacity(capacity)
        .snapshot_signal(None)
        .panic_hook(false)
        .crash_handler(false)
        .stop_signals(false)
        .stall_threshold(None)
        .announce_dumps(false)
}

/// A recorder from `quiet_builder`.
pub fn recorder(dir: &Path, service: &str, capacity: u64) -> Recorder {
    quiet_builder(dir, service, capacity)
        .build()
        .expect("building a recorder")
}

/// The ring files in `dir`.
pub fn rings_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "flightrec-ring"))
        .collect()
}

/// Re-executes this test binary to run the ignored test `name` as a child process, with
/// `env` set. The child's stdout is piped.
pub fn child(name: &str, env: &[(&str, &Path)]) -> std::process::Child {
    spawn_child(name, env, Stdio::null())
}

/// `child`, with a piped stdin the test can write to.
pub fn child_with_stdin(name: &str, env: &[(&str, &Path)]) -> std::process::Child {
    spawn_child(name, env, Stdio::piped())
}

fn spawn_child(name: &str, env: &[(&str, &Path)], stdin: Stdio) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(stdin)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawning a child")
}

/// Set in a child that runs a test whose threads block forever (a deadlock on purpose): the
/// child process takes them with it when it ends.
pub const IN_CHILD: &str = "FLIGHTREC_TEST_IN_CHILD";

/// Runs the ignored test `name` in a child process (see `IN_CHILD`) and fails with its
/// output when it fails. For tests that leave threads blocked forever: in this process they
/// would take the stack-capture slots and `/proc` entries other tests count.
pub fn run_in_child(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(IN_CHILD, "1")
        .output()
        .expect("spawning a child");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("1 passed"),
        "{name} failed in its child process:\n{said}"
    );
}

/// Whether this process is the child `run_in_child` started.
pub fn in_child() -> bool {
    std::env::var_os(IN_CHILD).is_some()
}

/// Reads the child's stdout until a line ends with `word`.
pub fn wait_for(child: &mut std::process::Child, word: &str) {
    let out = child.stdout.as_mut().unwrap();
    let mut r = std::io::BufReader::new(out);
    let mut line = String::new();
    // The harness prints "test NAME ... " just before, on the same line.
    while !line.trim_end().ends_with(word) {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "child exited before printing {word:?}"
        );
    }
}

/// Dumps (complete `.flightrec` files) in `dir`.
pub fn dumps_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "flightrec"))
        .collect();
    v.sort();
    v
}

/// A dispatcher recording into `rec` only, for threads to share.
pub fn dispatch(rec: &Recorder) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(rec.layer()))
}

/// Runs `f` on `n` named threads (`name_t`) under `dispatch`, all released at once.
pub fn on_threads(
    dispatch: &Dispatch,
    n: usize,
    name: &str,
    f: impl Fn(usize) + Send + Sync + Clone + 'static,
) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|t| {
            let (d, f, b) = (dispatch.clone(), f.clone(), barrier.clone());
            std::thread::Builder::new()
                .name(format!("{name}{t}"))
                .spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        b.wait();
                        f(t);
                        // Nobody exits until everybody is done, so a finished thread's
                        // chunk is not recycled by the others' later writes.
                        b.wait();
                    })
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread panicked");
    }
}

pub fn flightrec_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flightrec"))
}

pub fn flightrec(args: &[&str]) -> Output {
    Command::new(flightrec_bin())
        .args(args)
        .output()
        .expect("running flightrec")
}

/// Streams `flightrec cat --json FILE`, handing each parsed line to `f` (a million records
/// do not fit comfortably in memory as JSON values).
pub fn cat_json_each(path: &Path, mut f: impl FnMut(Json)) {
    let mut child = Command::new(flightrec_bin())
        .args(["cat", "--json"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running flightrec cat");
    let out = std::io::BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    for line in out.lines() {
        let line = line.expect("reading cat output");
        f(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}")));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn cat_json(path: &Path) -> Vec<Json> {
    let mut v = Vec::new();
    cat_json_each(path, |j| v.push(j));
    v
}

pub fn info_json(path: &Path) -> Json {
    let out = Command::new(flightrec_bin())
        .args(["info", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Json = serde_json::from_slice(&out.stdout).unwrap();
    silent_on_correct_code(&info);
    info
}

/// How many holds, waits and deadlocks `info --json` (or `check --json`) gives when the
/// data ends.
pub fn open_at_end(info: &Json) -> (usize, usize, usize) {
    let count = |k: &str| info["locks"][k].as_array().map_or(0, Vec::len);
    (count("holds"), count("waits"), count("deadlocks"))
}

/// Tests whose programs have a concurrency bug by design (by test-name prefix): everywhere
/// else a finding of a kind that does not depend on timing is a false alarm.
const BUGS_BY_DESIGN: &[&str] = &[
    "connections::a_read_modify_write_split",
    "connections::two_connections_from_one_peer",
    "ids::a_connection_id_used_without",
    "findings::",
    "tables::",
    "findings_objects::",
    "lock_model::",
    "agreement::",
    "locks::",
    "cli::the_demo",
];

/// Every test that reads a recording's `info --json` checks, in passing, that a correct
/// program gets no finding: none of the kinds that are about structure (not about time,
/// which a loaded machine can stretch).
fn silent_on_correct_code(info: &Json) {
    let test = std::thread::current().name().unwrap_or("").to_string();
    if BUGS_BY_DESIGN.iter().any(|p| test.starts_with(p)) {
        return;
    }
    let structural = [
        "deadlock",
        "interleaving",
        "lock_order",
        "atomicity",
        "inconsistent_locking",
    ];
    let alarms: Vec<&Json> = info["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| structural.iter().any(|k| f["kind"] == *k))
        .collect();
    assert!(
        alarms.is_empty(),
        "{test}: findings on a correct program: {alarms:?}"
    );
}

/// Per-thread entries of `info --json`, by thread name.
pub fn info_threads(info: &Json) -> std::collections::HashMap<String, Json> {
    info["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
        .collect()
}

/// A `flightrec view` server started by a test, killed when dropped.
pub struct Viewer {
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`, as its URL names it.
    pub host: String,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `flightrec view ARGS` with `envs` set and waits for the line with its URL (the
/// lines before it, such as a listing's count, are skipped).
pub fn start_viewer<S: AsRef<std::ffi::OsStr>>(args: &[S], envs: &[(&str, String)]) -> Viewer {
    let mut child = Command::new(flightrec_bin())
        .arg("view")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting flightrec view");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("http://") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "flightrec view ended before printing its URL"
        );
    }
    let host = line[line.find("http://").unwrap() + 7..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    Viewer { child, host }
}

/// `GET path` from a viewer at `host`, as HTTP/1.0 (so the body is not chunked): the
/// status line and the body.
pub fn http_get(host: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or("").to_string();
    let body = answer
        .find("\r\n\r\n")
        .map_or(String::new(), |i| answer[i + 4..].to_string());
    (status, body)
}

/// A dump of one million records: 4 threads × 50 000 requests × 5 records (a span's new,
/// enter, exit and close around an event), in a 256 MiB ring.
pub fn million_record_dump(dir: &Path) -> PathBuf {
    let rec = recorder(dir, "million", 256 << 20);
    on_threads(&dispatch(&rec), 4, "w", |t| {
        for i in 0..50_000u64 {
            let _s = tracing::info_span!("request", id = i).entered();
            tracing::info!(conn = i % 64, t = t as u64, "handled");
        }
    });
    rec.snapshot().unwrap()
}

/// Every file under `dir`, however deep.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Says that the calling test could not run here and why, on stderr and, when
/// `FLIGHTREC_NOT_RUN` names a file (`scripts/test.sh` sets it), as one line appended there
/// (`<test>\t<why>`), so that the script can name at its end what it did not run.
pub fn not_run(why: &str) {
    eprintln!("skipped: {why}");
    if let Some(path) = std::env::var_os("FLIGHTREC_NOT_RUN") {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("?");
        let line = format!("{test}\t{why}\n");
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tokio runtime of two workers, each recording into `d` for the runtime's life.
pub fn recording_runtime(d: &Dispatch) -> tokio::runtime::Runtime {
    let on_workers = d.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&on_workers));
        })
        .build()
        .unwrap()
}

/// Spawns `f` on a thread named `name` recording into `d`.
pub fn spawn_on(
    d: &Dispatch,
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let d = d.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || tracing::dispatcher::with_default(&d, f))
        .unwrap()
}

/// A turn handed from one thread to another, so a program interleaves the same way on
/// every run.
pub fn turn() -> (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>) {
    std::sync::mpsc::channel()
}

/// A dump of `rec` taken once `ready` holds of what it recorded: polled, with a generous
/// deadline.
pub fn dump_when(rec: &Recorder, mut ready: impl FnMut(&Path) -> bool) -> PathBuf {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let dump = rec.snapshot().unwrap();
        if ready(&dump) {
            return dump;
        }
        std::fs::remove_file(&dump).unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the condition never held"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A recorder for a child process whose threads block on purpose: 1 MiB, no snapshot
/// signal, and a stall watchdog at 1 s.
pub fn stall_recorder(dir: impl Into<PathBuf>, service: &str) -> Recorder {
    tracing_flightrec::Recorder::builder()
        .dir(dir.into())
        .service(service)
        .capacity(1 << 20)
        .snapshot_signal(None)
        .stall_threshold(Some(std::time::Duration::from_secs(1)))
        .build()
        .unwrap()
}

/// The stall watchdog's dump in `dir`, waited for at most `within`.
pub fn stall_dump_in(dir: &Path, within: std::time::Duration) -> PathBuf {
    let start = std::time::Instant::now();
    loop {
        if let Some(d) = dumps_in(dir)
            .into_iter()
            .find(|p| p.to_str().unwrap().ends_with("-stall.flightrec"))
        {
            return d;
        }
        assert!(start.elapsed() < within, "no stall dump within {within:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
