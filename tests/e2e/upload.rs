//! `flightrec upload` against a real S3-compatible server (moto's, from PyPI, which
//! `scripts/test.sh` installs), never a mock of our own: keys, metadata, deletion after a
//! confirmed upload only, and one clear line when the bucket is missing or the server down.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// moto's server binary, if this machine has it; required when FLIGHTREC_REQUIRE_S3 is set.
pub(crate) fn moto() -> Option<PathBuf> {
    let path = std::env::var_os("FLIGHTREC_MOTO").map(PathBuf::from);
    match path.filter(|p| p.exists()) {
        Some(p) => Some(p),
        None if std::env::var_os("FLIGHTREC_REQUIRE_S3").is_some() => {
            panic!("no moto_server: scripts/test.sh installs it")
        }
        None => {
            not_run("no moto_server (scripts/test.sh installs it)");
            None
        }
    }
}

pub(crate) struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the server on `port` and waits (generously) until it answers.
pub(crate) fn start(moto: &Path, port: u16) -> Server {
    let child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto_server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child }
}

pub(crate) fn env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret-never-printed".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

/// Runs boto3 (installed with moto) against the server: `script` gets `s3`, a client.
pub(crate) fn boto(port: u16, script: &str) -> String {
    let python = std::env::var("FLIGHTREC_PYTHON").unwrap_or_else(|_| "python3".into());
    let full = format!("import boto3, json\ns3 = boto3.client('s3')\n{script}");
    let o = Command::new(python)
        .arg("-c")
        .arg(full)
        .envs(env(port))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn upload(port: u16, args: &[&str]) -> std::process::Output {
    Command::new(flightrec_bin())
        .arg("upload")
        .args(args)
        .envs(env(port))
        .output()
        .unwrap()
}

/// Three dumps of three services.
fn dumps(dir: &Path) -> Vec<PathBuf> {
    ["checkout", "billing", "search"]
        .iter()
        .map(|service| {
            let rec = recorder(dir, service, 256 << 10);
            tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!(service, "hello"));
            rec.snapshot().unwrap()
        })
        .collect()
}

#[test]
fn dumps_upload_with_keys_and_metadata_and_failures_lose_nothing() {
    let Some(moto) = moto() else {
        return;
    };
    let dir = scratch();
    let files = dumps(dir.path());
    let port = free_port();
    let server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();

    // A missing bucket: one line, non-zero, nothing deleted, no credential shown.
    let mut args = names.clone();
    args.extend(["--to", "s3://no-such-bucket/x", "--delete-after-upload"]);
    let o = upload(port, &args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bucket no-such-bucket not found"), "{err}");
    assert!(!err.contains("secret-never-printed"));
    assert!(files.iter().all(|f| f.exists()));

    // Uploaded, listed with the header's fields as metadata, then deleted locally.
    let mut args = names.clone();
    args.extend(["--to", "s3://flight/fleet", "--delete-after-upload"]);
    let o = upload(port, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    assert!(files.iter().all(|f| !f.exists()), "deleted after upload");
    let listing = boto(
        port,
        "out = []\n\
         keys = [o['Key'] for o in s3.list_objects_v2(Bucket='flight')['Contents']]\n\
         for k in keys:\n\
         \x20   if not k.endswith('.flightrec'):\n\
         \x20       continue\n\
         \x20   h = s3.head_object(Bucket='flight', Key=k)\n\
         \x20   s = s3.get_object(Bucket='flight', Key=k[:-len('.flightrec')] + '.summary.json')\n\
         \x20   out.append({'key': k, 'size': h['ContentLength'], 'meta': h['Metadata'],\n\
         \x20               'summary': json.loads(s['Body'].read())})\n\
         print(json.dumps(out))",
    );
    let objects: Vec<serde_json::Value> = serde_json::from_str(listing.trim()).unwrap();
    assert_eq!(objects.len(), 3);
    let host = hostname();
    for o in &objects {
        let key = o["key"].as_str().unwrap();
        let meta = &o["meta"];
        let service = meta["service"].as_str().unwrap();
        // <prefix>/<service>/<yyyy-mm-dd>/<host>-<pid>-<time>-<reason>.flightrec
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        assert_eq!((parts[0], parts[1]), ("fleet", service));
        assert_eq!(parts[2].len(), 10, "{key}");
        assert!(
            parts[3].starts_with(&format!("{host}-{}-", std::process::id())),
            "{key}"
        );
        assert!(parts[3].ends_with("-snapshot.flightrec"), "{key}");
        assert_eq!(meta["pid"], std::process::id().to_string());
        assert_eq!(meta["trigger"], "snapshot");
        assert_eq!(meta["size"], o["size"].as_u64().unwrap().to_string());
        // Its summary, beside it, says the same exactly.
        let summary = &o["summary"];
        assert_eq!(summary["service"], service);
        assert_eq!(summary["pid"], std::process::id());
        assert_eq!(summary["trigger"], "snapshot");
        assert_eq!(summary["size"], o["size"]);
        assert_eq!(summary["tables"], false);
    }

    // The server stops: a clear line, the dump kept; back up, the same command succeeds.
    let again = dumps(&dir.path().join("again"));
    drop(server);
    let target = again[0].to_str().unwrap();
    let o = upload(
        port,
        &[target, "--to", "s3://flight/fleet", "--delete-after-upload"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach the store"), "{err}");
    assert!(again[0].exists(), "a failed upload keeps its dump");
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let o = upload(
        port,
        &[target, "--to", "s3://flight/fleet", "--delete-after-upload"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!again[0].exists());
}

fn hostname() -> String {
    let o = Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn watch(port: u16, dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(flightrec_bin())
        .args([
            "watch",
            dir.to_str().unwrap(),
            "--once",
            "--upload",
            "s3://flight/w",
        ])
        .args(extra)
        .envs(env(port))
        .output()
        .unwrap()
}

/// `watch --upload` sends each dump once (remembered across runs), keeps what it could not
/// send and sends it at the next scan, deleting only what was confirmed when asked.
#[test]
fn watch_uploads_each_dump_once_and_sends_the_rest_when_the_store_is_back() {
    let Some(moto) = moto() else {
        return;
    };
    let dir = scratch();
    let first = dumps(dir.path());
    let port = free_port();
    let server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let o = watch(port, dir.path(), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    assert!(
        first.iter().all(|f| f.exists()),
        "kept without --delete-after-upload"
    );
    // Again: nothing new to send.
    let o = watch(port, dir.path(), &[]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 0);

    // A new dump while the store is down: one line, a failure, the dump kept.
    let rec = recorder(dir.path(), "late", 256 << 10);
    let late = rec.snapshot().unwrap();
    drop(rec);
    drop(server);
    let o = watch(port, dir.path(), &["--delete-after-upload"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot reach the store"), "{err}");
    assert!(late.exists());
    // Back: only the new one goes, with its tables, and is deleted once confirmed.
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let o = watch(port, dir.path(), &["--delete-after-upload", "--tables"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sent = String::from_utf8_lossy(&o.stdout);
    assert_eq!(sent.lines().count(), 1, "{sent}");
    assert!(sent.contains(late.file_name().unwrap().to_str().unwrap()));
    assert!(!late.exists());
    assert!(first.iter().all(|f| f.exists()));
    let tables = boto(
        port,
        "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='flight', Prefix='w/tables/')['Contents']]))",
    );
    let tables: Vec<String> = serde_json::from_str(tables.trim()).unwrap();
    assert_eq!(tables.len(), 6, "{tables:?}");
    assert!(
        tables.iter().all(|t| t.contains("/service=late/")),
        "{tables:?}"
    );
}

/// An uploader killed (SIGKILL) at random moments, 20 times, in the middle of sending
/// dumps: no object under a final key is partial (each listed object is byte for byte its
/// dump), and no local dump is lost (each is either still here or was deleted only after its
/// object was complete).
#[test]
fn an_uploader_killed_mid_upload_leaves_no_partial_object_and_loses_no_dump() {
    use rand::Rng;
    let Some(moto) = moto() else {
        return;
    };
    let runs: usize = std::env::var("FLIGHTREC_UPLOAD_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = scratch();
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    // Dumps big enough that an upload takes a while: incompressible field values.
    let mut originals: std::collections::HashMap<String, Vec<u8>> = Default::default();
    let mut rng = rand::thread_rng();
    for k in 0..6 {
        let rec = recorder(dir.path(), &format!("big{k}"), 8 << 20);
        tracing::dispatcher::with_default(&dispatch(&rec), || {
            for _ in 0..20_000 {
                let noise: u64 = rng.gen();
                tracing::info!(noise, other = noise.rotate_left(17), "noise");
            }
        });
        let dump = rec.snapshot().unwrap();
        originals.insert(
            dump.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read(&dump).unwrap(),
        );
    }
    // Each run sends every dump still here to a prefix of its own; the last runs delete
    // what they sent.
    let mut killed_mid_way = 0;
    for run in 0..runs {
        let pending: Vec<PathBuf> = dumps_in(dir.path());
        if pending.is_empty() {
            break;
        }
        let delete = run >= runs * 3 / 4;
        let mut c = Command::new(flightrec_bin())
            .arg("upload")
            .args(&pending)
            .args(["--to", &format!("s3://flight/run{run}")])
            .args(delete.then_some("--delete-after-upload"))
            .envs(env(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..40_000)));
        if c.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    eprintln!("{killed_mid_way} of {runs} uploaders killed before they finished");
    let listing = boto(
        port,
        "import hashlib\n\
         out = []\n\
         for o in s3.list_objects_v2(Bucket='flight').get('Contents', []):\n\
         \x20   body = s3.get_object(Bucket='flight', Key=o['Key'])['Body'].read()\n\
         \x20   if o['Key'].endswith('.summary.json'):\n\
         \x20       json.loads(body)  # whole, or absent\n\
         \x20       continue\n\
         \x20   out.append({'key': o['Key'], 'sha': hashlib.sha256(body).hexdigest(), 'size': len(body)})\n\
         print(json.dumps(out))",
    );
    let objects: Vec<serde_json::Value> = serde_json::from_str(listing.trim()).unwrap();
    let sha = |b: &[u8]| {
        use std::fmt::Write as _;
        let o = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin.take().unwrap().write_all(b)?;
                c.wait_with_output()
            })
            .unwrap();
        let mut s = String::new();
        let _ = write!(s, "{}", String::from_utf8_lossy(&o.stdout));
        s.split_whitespace().next().unwrap().to_string()
    };
    let known: std::collections::HashSet<String> = originals.values().map(|b| sha(b)).collect();
    for o in &objects {
        assert!(
            known.contains(o["sha"].as_str().unwrap()),
            "a partial or foreign object: {o}"
        );
    }
    // Every dump is still here, or its object is complete in the bucket.
    let here: std::collections::HashSet<String> = dumps_in(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let uploaded: std::collections::HashSet<String> = objects
        .iter()
        .map(|o| o["sha"].as_str().unwrap().to_string())
        .collect();
    for (name, bytes) in &originals {
        assert!(
            here.contains(name) || uploaded.contains(&sha(bytes)),
            "{name} lost: neither kept nor uploaded"
        );
    }
}

/// `view s3://bucket/prefix`: the index lists the uploaded dumps from their metadata (none
/// fetched), filters by host and time, and opens three at once merged, fetching only then.
#[test]
fn a_bucket_is_browsed_filtered_and_three_dumps_open_merged() {
    let Some(moto) = moto() else {
        return;
    };
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let files = dumps(dir.path());
    // One more, of a service the filters leave out by time.
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    let mut args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    args.extend(["--to", "s3://flight/fleet"]);
    assert!(upload(port, &args).status.success());
    std::thread::sleep(Duration::from_millis(1100));
    let since = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let rec = recorder(&dir.path().join("later"), "later", 256 << 10);
    let later = rec.snapshot().unwrap();
    drop(rec);
    assert!(upload(
        port,
        &[later.to_str().unwrap(), "--to", "s3://flight/fleet"]
    )
    .status
    .success());

    let cache = dir.path().join("cache");
    let mut env: serde_json::Map<String, serde_json::Value> = env(port)
        .into_iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
        .collect();
    env.insert(
        "FLIGHTREC_CACHE_DIR".into(),
        serde_json::Value::String(cache.display().to_string()),
    );
    // Filtered by host, and to what came before `later`.
    let out = crate::viewer::drive(
        "bucket",
        Path::new("s3://flight/fleet"),
        serde_json::json!({
            "env": env,
            "cacheDir": cache.display().to_string(),
            "viewArgs": ["--host", hostname(), "--until", since],
        }),
    );
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let services: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r[2].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        services,
        ["checkout", "billing", "search"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert!(rows
        .iter()
        .all(|r| r[3] == hostname() && r[5] == "snapshot"));
    assert_eq!(out["cachedBeforeOpen"], 0, "listing fetched nothing");
    assert_eq!(out["processes"].as_array().unwrap().len(), 3);
    assert_eq!(out["cachedAfterOpen"], 3, "opening fetched the three");
}

/// A fleet: three simulated hosts (recorders with `.host(..)`), 100 dumps between them, each
/// host's directory shipped by its own `watch --upload` at the same time. Every dump is in
/// the store once, under its host's key, with the right metadata and byte for byte.
#[test]
fn three_hosts_ship_a_hundred_dumps_with_watch_upload() {
    let Some(moto) = moto() else {
        return;
    };
    let dir = scratch();
    let hosts = ["web-1", "web-2", "batch-7"];
    // (host, dump name) -> bytes: the hosts' services share this process's pid, so their
    // dumps can share names too (in their own directories).
    let mut local: std::collections::HashMap<(String, String), Vec<u8>> = Default::default();
    for (h, host) in hosts.iter().enumerate() {
        let hdir = dir.path().join(host);
        let rec = tracing_flightrec::Recorder::builder()
            .dir(&hdir)
            .service(if h == 2 { "batch" } else { "web" })
            .host(*host)
            .keep_dumps(100)
            .capacity(256 << 10)
            .stack_slots(0)
            .snapshot_signal(None)
            .stall_threshold(None)
            .panic_hook(false)
            .build()
            .unwrap();
        let d = dispatch(&rec);
        let count = if h == 2 { 34 } else { 33 };
        for i in 0..count {
            tracing::dispatcher::with_default(&d, || tracing::info!(i, host, "work"));
            let dump = rec.snapshot().unwrap();
            let name = dump.file_name().unwrap().to_string_lossy().into_owned();
            local.insert((host.to_string(), name), std::fs::read(&dump).unwrap());
        }
    }
    assert_eq!(local.len(), 100);
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='flight')");
    // One uploader per host, all at once.
    let watchers: Vec<_> = hosts
        .iter()
        .map(|host| {
            Command::new(flightrec_bin())
                .args(["watch", dir.path().join(host).to_str().unwrap()])
                .args(["--once", "--upload", "s3://flight/fleet"])
                .envs(env(port))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut sent = 0;
    for w in watchers {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        sent += String::from_utf8_lossy(&o.stdout).lines().count();
    }
    assert_eq!(sent, 100);
    let listing = boto(
        port,
        "out = []\n\
         pages = s3.get_paginator('list_objects_v2').paginate(Bucket='flight')\n\
         for page in pages:\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       if not o['Key'].endswith('.flightrec'):\n\
         \x20           continue\n\
         \x20       g = s3.get_object(Bucket='flight', Key=o['Key'])\n\
         \x20       body = g['Body'].read()\n\
         \x20       out.append({'key': o['Key'], 'meta': g['Metadata'], 'body': body.hex()})\n\
         print(json.dumps(out))",
    );
    let objects: Vec<serde_json::Value> = serde_json::from_str(listing.trim()).unwrap();
    assert_eq!(objects.len(), 100, "every dump once");
    let mut seen = std::collections::HashSet::new();
    for o in &objects {
        let key = o["key"].as_str().unwrap();
        let meta = &o["meta"];
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        let host = meta["host"].as_str().unwrap();
        assert!(hosts.contains(&host), "{key}: {meta}");
        assert!(parts[3].starts_with(&format!("{host}-")), "{key}");
        assert_eq!(parts[1], meta["service"].as_str().unwrap());
        assert_eq!(meta["trigger"], "snapshot");
        let hex = o["body"].as_str().unwrap().as_bytes();
        let body: Vec<u8> = hex
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect();
        assert_eq!(meta["size"], body.len().to_string());
        // Byte for byte one of the local dumps, of that host.
        let (local_host, name) = local
            .iter()
            .find(|(_, bytes)| **bytes == body)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("{key} is no local dump (partial?)"));
        assert_eq!(local_host, host, "{key}");
        let rec = flightrec_format::open(&dir.path().join(host).join(&name)).unwrap();
        assert!(seen.insert((local_host, name)), "{key} uploaded twice");
        assert_eq!(rec.process.host, host);
        assert_eq!(meta["pid"], rec.process.pid.to_string());
    }
    assert_eq!(seen.len(), 100);
}
