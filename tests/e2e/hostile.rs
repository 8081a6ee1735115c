//! The fleet path under hostile input, without a store: bad bucket names and endpoint URLs
//! get one line and exit 1 before anything is sent, and credentials in an endpoint are
//! never printed.

use std::process::Command;

use crate::helpers::*;

fn a_dump(dir: &std::path::Path) -> std::path::PathBuf {
    let rec = recorder(dir, "hostile", 256 << 10);
    tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!("x"));
    rec.snapshot().unwrap()
}

/// Runs flightrec with `env` and a fresh AWS setup (no real credentials), and returns
/// (exit code, stderr, stdout).
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = Command::new(flightrec_bin());
    c.args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .env("XDG_CACHE_HOME", std::env::temp_dir());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A fake store on a loopback port: `on_conn` gets each connection it accepts (and a place
/// to keep those it holds open). Returns the port and the count of connections.
fn fake_store(
    on_conn: impl Fn(std::net::TcpStream, &mut Vec<std::net::TcpStream>) + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            on_conn(conn, &mut held);
        }
    });
    (port, accepted)
}

fn assert_one_line(what: &str, (code, err, _): &(Option<i32>, String, String), needle: &str) {
    assert_eq!(*code, Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.contains(needle), "{what}: expected {needle:?} in {err}");
    assert!(!err.contains("s3cr3t"), "{what}: {err}");
}

#[test]
fn bad_bucket_names_and_endpoints_get_one_line_before_anything_is_sent() {
    let dir = scratch();
    let dump = a_dump(dir.path());
    let d = dump.to_str().unwrap();
    assert_one_line(
        "a space in the bucket",
        &run(&["upload", d, "--to", "s3://bu cket/p"], &[]),
        "not a valid bucket name",
    );
    assert_one_line(
        "view of a space in the bucket",
        &run(&["view", "s3://bu cket/x"], &[]),
        "not a valid bucket name",
    );
    assert_one_line(
        "an endpoint that is not a URL",
        &run(
            &["upload", d, "--to", "s3://bucket/p"],
            &[("AWS_ENDPOINT_URL", "not a url")],
        ),
        "AWS_ENDPOINT_URL=not a url: not a usable URL",
    );
    let (code, err, out) = run(
        &["upload", d, "--to", "s3://bucket/p"],
        &[(
            "AWS_ENDPOINT_URL",
            "http://user:pass-with-/@127.0.0.1:45999",
        )],
    );
    assert_one_line(
        "a password with a slash",
        &(code, err.clone(), out.clone()),
        "AWS_ENDPOINT_URL=http://***@127.0.0.1:45999",
    );
    assert!(
        !err.contains("pass-with") && !out.contains("pass-with"),
        "{err}"
    );
}

#[test]
fn a_password_in_the_endpoint_is_never_printed() {
    let dir = scratch();
    let dump = a_dump(dir.path());
    // A port nothing listens on: the store cannot be reached.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://minio:Passw0rd@127.0.0.1:{port}");
    let (code, err, out) = run(
        &["upload", dump.to_str().unwrap(), "--to", "s3://bucket/p"],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach the store at http://***@127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(
        !err.contains("Passw0rd") && !out.contains("Passw0rd"),
        "{err}"
    );
    assert!(dump.exists(), "the dump is kept");
}

#[test]
fn a_store_that_accepts_but_never_answers_fails_in_one_line_after_a_bounded_number_of_tries() {
    let dir = scratch();
    let dump = a_dump(dir.path());
    // A blackhole: it accepts every connection and never says a word.
    let (port, accepted) = fake_store(|conn, held| held.push(conn));
    let started = std::time::Instant::now();
    let (code, err, _) = run(
        &["upload", dump.to_str().unwrap(), "--to", "s3://bucket/p"],
        &[
            ("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}")),
            ("FLIGHTREC_S3_TIMEOUT", "1"),
        ],
    );
    let took = started.elapsed();
    assert_one_line(
        "a blackhole",
        &(code, err.clone(), String::new()),
        &format!("no answer from the store at http://127.0.0.1:{port} within 1 s, 3 tries"),
    );
    // Three tries of a second each, not a minute.
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((3..=9).contains(&n), "{n} connections");
    assert!(dump.exists(), "the dump is kept");
    // Listing it for `view s3://` the same way.
    let (code, err, out) = run(
        &["view", "s3://bucket/p"],
        &[
            ("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}")),
            ("FLIGHTREC_S3_TIMEOUT", "1"),
        ],
    );
    assert_one_line(
        "listing a blackhole",
        &(code, err, out),
        "listing s3://bucket/p: no answer from the store",
    );
}

#[test]
fn the_viewer_drops_a_client_that_never_finishes_its_headers() {
    use std::io::{Read, Write};
    let dir = scratch();
    a_dump(dir.path());
    let server = start_viewer(&[dir.path()], &[]);
    let host = server.host.clone();
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    // A generous deadline for the test; the server's is 10 s.
    conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(conn, "GET /api/dumps HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = conn.read_to_end(&mut rest);
    let took = started.elapsed();
    drop(server);
    assert!(read.is_ok(), "the connection was not closed: {read:?}");
    assert!(
        took >= std::time::Duration::from_secs(5) && took < std::time::Duration::from_secs(60),
        "{took:?}"
    );
    // Nothing was served for half a request (at most an error status).
    let answer = String::from_utf8_lossy(&rest);
    assert!(!answer.contains("\"dumps\""), "{answer}");
}

#[test]
fn a_store_that_resets_every_connection_fails_in_one_line_after_a_bounded_number_of_tries() {
    let dir = scratch();
    let dump = a_dump(dir.path());
    // Closed with the request unread in it: the kernel answers with a reset, not a polite
    // end.
    let (port, accepted) = fake_store(|conn, _| {
        let mut first = [0u8; 1];
        let _ = conn.peek(&mut first);
    });
    let (code, err, _) = run(
        &["upload", dump.to_str().unwrap(), "--to", "s3://bucket/p"],
        &[
            ("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}")),
            ("FLIGHTREC_S3_TIMEOUT", "2"),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("flightrec: uploading "), "{err}");
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=9).contains(&n), "{n} connections");
    assert!(dump.exists(), "the dump is kept");
}
