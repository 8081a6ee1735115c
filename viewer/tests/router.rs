//! Every route of `app()`, through `oneshot`: answers, malformed requests, unknown dumps, a
//! foreign Host header, and path traversal.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use flightrec_viewer::{app, AppState, Limits};
use http_body_util::BodyExt;
use serde_json::Value as Json;
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:4000";

/// A directory holding a hand-built ring file (one thread, two spans, six events), a file
/// that starts like a dump but is not one, and a file that is only named like one.
fn fixture() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app-1.flightrec-ring"),
        flightrec_format::testing::sample_image(3),
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.flightrec"), junk_dump()).unwrap();
    std::fs::write(dir.path().join("notes.flightrec"), b"not a dump").unwrap();
    let router = router_for(dir.path(), Limits::default());
    (dir, router)
}

/// zstd's magic number, then garbage: a dump by its first bytes, unreadable after them.
fn junk_dump() -> Vec<u8> {
    let mut b = flightrec_format::layout::ZSTD_MAGIC.to_vec();
    b.extend_from_slice(b"not a dump at all");
    b
}

fn router_for(dir: &Path, limits: Limits) -> Router {
    let state = AppState::new(vec![dir.to_path_buf()], vec![HOST.into()], limits).unwrap();
    app(Arc::new(state))
}

async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    host: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(h) = host {
        req = req.header(header::HOST, h);
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn get(router: &Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let (s, _, b) = send(router, Method::GET, uri, Some(HOST)).await;
    (s, b)
}

async fn get_json(router: &Router, uri: &str) -> (StatusCode, Json) {
    let (s, b) = get(router, uri).await;
    let j = serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&b)));
    (s, j)
}

/// The id the index gives the file named `name`.
async fn id_of(router: &Router, name: &str) -> u64 {
    let (s, j) = get_json(router, "/api/dumps").await;
    assert_eq!(s, StatusCode::OK);
    j["dumps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["file"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {j}"))["id"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn pages_and_assets_are_served_with_a_strict_content_security_policy() {
    let (_dir, r) = fixture();
    for uri in [
        "/",
        "/assets/style.css",
        "/assets/index.js",
        "/assets/timeline-main.js",
    ] {
        let (s, h, body) = send(&r, Method::GET, uri, Some(HOST)).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!body.is_empty());
    }
    let (_, h, body) = send(&r, Method::GET, "/", Some(HOST)).await;
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(body).unwrap();
    // No inline script anywhere: every <script> has a src.
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=").count()
    );
    // The timeline's ES modules: from its entry point, every module it imports is served,
    // as JavaScript.
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let (_, page) = get(&r, &format!("/dump/{id}")).await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(r#"<script type="module" src="/assets/timeline-main.js">"#),
        "{page}"
    );
    let mut todo = vec!["timeline-main.js".to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let (s, h, body) = send(&r, Method::GET, &format!("/assets/{name}"), Some(HOST)).await;
        assert_eq!(s, StatusCode::OK, "{name}");
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        let js = String::from_utf8(body).unwrap();
        // `import { a } from "./m.js";` and `import "./m.js";` alike.
        for line in js.lines().filter(|l| l.starts_with("import ")) {
            let from = line.split("\"./").nth(1).unwrap();
            todo.push(from.trim_end_matches("\";").to_string());
        }
    }
    assert_eq!(seen.len(), 13, "{seen:?}");
}

#[tokio::test]
async fn the_index_lists_every_recording_and_says_which_cannot_be_read() {
    let (_dir, r) = fixture();
    let (s, j) = get_json(&r, "/api/dumps").await;
    assert_eq!(s, StatusCode::OK);
    let dumps = j["dumps"].as_array().unwrap();
    assert_eq!(dumps.len(), 2);
    let ring = dumps
        .iter()
        .find(|d| d["file"] == "app-1.flightrec-ring")
        .unwrap();
    assert_eq!(ring["service"], "seed");
    assert_eq!(ring["kind"], "ring");
    assert!(ring["size"].as_u64().unwrap() > 0);
    let junk = dumps
        .iter()
        .find(|d| d["file"] == "junk.flightrec")
        .unwrap();
    assert!(
        junk["error"].as_str().unwrap().contains("corrupt"),
        "{junk}"
    );
    // Named like a recording, but not one by its first bytes: not listed at all.
    assert!(dumps.iter().all(|d| d["file"] != "notes.flightrec"));
}

#[tokio::test]
async fn meta_window_records_spans_object_and_search_answer_for_a_dump() {
    let (_dir, r) = fixture();
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let (s, page) = get(&r, &format!("/dump/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(page)
        .unwrap()
        .contains("timeline-main.js"));

    let (s, meta) = get_json(&r, &format!("/api/dumps/{id}/meta")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(meta.get("history").is_none(), "no history, nothing said");
    assert_eq!(meta["lanes"].as_array().unwrap().len(), 1);
    assert_eq!(meta["lanes"][0]["name"], "main");
    assert_eq!(meta["records"], 12);
    let end = meta["end"].as_i64().unwrap();
    // The page takes these from the server rather than repeating them.
    let c = &meta["constants"];
    assert_eq!(
        c["flags"]["starts_before_data"],
        flightrec_viewer::model::STARTS_BEFORE_DATA
    );
    assert_eq!(
        c["flags"]["open_at_end"],
        flightrec_viewer::model::OPEN_AT_END
    );
    let levels: Vec<&str> = c["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]);

    let (s, w) = get_json(
        &r,
        &format!("/api/dumps/{id}/window?start=0&end={end}&width=800"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let lane = &w["lanes"][0];
    assert_eq!(lane["events"].as_array().unwrap().len(), 6);
    assert_eq!(lane["bars"].as_array().unwrap().len(), 2, "{lane}");
    let ev = &lane["events"][0];
    assert_eq!(ev["title"], "hello");

    // Any window a URL can name is answered.
    let (s, _) = get_json(
        &r,
        &format!(
            "/api/dumps/{id}/window?start={}&end={}&width=4294967295",
            i64::MIN,
            i64::MAX
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Filters: nothing is WARN or above; the text filter matches nothing but "hello".
    let (_, w) = get_json(
        &r,
        &format!("/api/dumps/{id}/window?start=0&end={end}&width=800&level=warn"),
    )
    .await;
    assert_eq!(w["lanes"][0]["events"].as_array().unwrap().len(), 0);
    let (_, w) = get_json(
        &r,
        &format!("/api/dumps/{id}/window?start=0&end={end}&width=800&text=nope"),
    )
    .await;
    assert_eq!(w["lanes"][0]["events"].as_array().unwrap().len(), 0);

    let rid = ev["id"].as_u64().unwrap();
    let (s, rec) = get_json(&r, &format!("/api/dumps/{id}/records/{rid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rec["thread"], "main");
    assert_eq!(rec["fields"][1]["name"], "n");
    assert_eq!(rec["fields"][1]["value"], "0");
    assert_eq!(rec["fields"][1]["type"], "u64");
    assert_eq!(rec["spans"][0]["name"], "sp");

    let span = rec["spans"][0]["span"].as_str().unwrap();
    let (s, sp) = get_json(&r, &format!("/api/dumps/{id}/spans/{span}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sp["name"], "sp");
    assert_eq!(sp["entries"].as_array().unwrap().len(), 1);
    assert_eq!(sp["fields"][0]["name"], "k");
    assert_eq!(sp["fields"][0]["value"], "-1");
    assert_eq!(
        sp["stack"][0]["name"], "sp",
        "its stack when entered, itself innermost"
    );

    let (s, o) = get_json(&r, &format!("/api/dumps/{id}/object?field=n&value=0")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(o["total"], 2, "n=0 once per chunk");
    assert_eq!(o["handovers"], 0, "one thread, no hand-over");

    let (s, found) = get_json(&r, &format!("/api/dumps/{id}/search?text=hello")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["total"], 6);
    let ts: Vec<i64> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["t"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "hits in time order");
}

#[tokio::test]
async fn a_recording_with_history_says_what_came_from_disk_and_what_was_left_out() {
    use flightrec_format::layout::{header, put_u64};
    let dir = tempfile::tempdir().unwrap();
    let mut image = flightrec_format::testing::sample_image(3);
    put_u64(&mut image, header::HISTORY_ARCHIVED, 7);
    put_u64(&mut image, header::HISTORY_SKIPPED, 2);
    std::fs::write(dir.path().join("app-1.flightrec-ring"), image).unwrap();
    let r = router_for(dir.path(), Limits::default());
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let (s, meta) = get_json(&r, &format!("/api/dumps/{id}/meta")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        meta["history"],
        serde_json::json!({"attached_chunks": 0, "archived_chunks": 7, "skipped_chunks": 2})
    );
}

#[tokio::test]
async fn malformed_requests_and_unknown_things_get_clear_errors() {
    let (_dir, r) = fixture();
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let junk = id_of(&r, "junk.flightrec").await;
    let cases: Vec<(String, StatusCode)> = vec![
        ("/nope".into(), StatusCode::NOT_FOUND),
        ("/assets/missing.js".into(), StatusCode::NOT_FOUND),
        ("/dump/99".into(), StatusCode::NOT_FOUND),
        ("/dump/x".into(), StatusCode::BAD_REQUEST),
        ("/api/dumps/99/meta".into(), StatusCode::NOT_FOUND),
        ("/api/dumps/-1/meta".into(), StatusCode::BAD_REQUEST),
        (
            format!("/api/dumps/{junk}/meta"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (format!("/api/dumps/{id}/window"), StatusCode::BAD_REQUEST),
        (
            format!("/api/dumps/{id}/window?start=a&end=2&width=3"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/dumps/{id}/window?start=5&end=2&width=3"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/dumps/{id}/window?start=0&end=2&width=3&level=bogus"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/dumps/{id}/records/99999"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/dumps/{id}/records/x"),
            StatusCode::BAD_REQUEST,
        ),
        (format!("/api/dumps/{id}/spans/1"), StatusCode::NOT_FOUND),
        (format!("/api/dumps/{id}/spans/x"), StatusCode::BAD_REQUEST),
        (
            format!("/api/dumps/{id}/object?field=n"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/dumps/{id}/search?text={}", "a".repeat(2000)),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, want) in cases {
        let (s, body) = get(&r, &uri).await;
        assert_eq!(s, want, "{uri}: {}", String::from_utf8_lossy(&body));
        if uri.starts_with("/api/") {
            let j: Json = serde_json::from_slice(&body).unwrap();
            assert!(
                j["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{uri}: {j}"
            );
        }
    }
    let (s, _, _) = send(&r, Method::POST, "/api/dumps", Some(HOST)).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let long = format!("/api/dumps/{id}/search?text={}", "a".repeat(10_000));
    let (s, _) = get(&r, &long).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
}

#[tokio::test]
async fn a_foreign_or_missing_host_header_is_refused_on_every_route() {
    let (_dir, r) = fixture();
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let routes = [
        "/".to_string(),
        format!("/dump/{id}"),
        "/assets/timeline-main.js".into(),
        "/api/dumps".into(),
        format!("/api/dumps/{id}/meta"),
        format!("/api/dumps/{id}/window?start=0&end=10&width=10"),
        format!("/api/dumps/{id}/records/0"),
        format!("/api/dumps/{id}/spans/1024"),
        format!("/api/dumps/{id}/object?field=n&value=0"),
        format!("/api/dumps/{id}/search?text=hello"),
    ];
    for uri in &routes {
        for host in [
            Some("evil.example:4000"),
            Some("127.0.0.1:4001"),
            Some("localhost"),
            None,
        ] {
            let (s, _, body) = send(&r, Method::GET, uri, host).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{uri} with Host {host:?}");
            assert!(String::from_utf8_lossy(&body).contains("Host"));
        }
        let (s, _, _) = send(&r, Method::GET, uri, Some(HOST)).await;
        assert_eq!(s, StatusCode::OK, "{uri} with our own Host");
    }
}

#[tokio::test]
async fn path_traversal_never_reaches_the_file_system() {
    let (dir, r) = fixture();
    std::fs::write(dir.path().join("secret.txt"), b"secret").unwrap();
    for uri in [
        "/assets/../../Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/%2e%2e%2fsecret.txt",
        "/assets/..",
        "/dump/..%2fsecret.txt",
        "/dump/../../etc/passwd",
        "/api/dumps/..%2f..%2fetc%2fpasswd/meta",
        "/api/dumps/%2e%2e/meta",
        "/api/dumps/0/records/..%2f1",
        "/secret.txt",
        "/../secret.txt",
    ] {
        let (s, body) = get(&r, uri).await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST,
            "{uri}: {s}"
        );
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{uri}");
        assert!(
            !String::from_utf8_lossy(&body).contains("[workspace]"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn a_dump_larger_than_the_limit_is_not_opened() {
    let (dir, _) = fixture();
    let r = router_for(
        dir.path(),
        Limits {
            max_file_bytes: 100,
            ..Limits::default()
        },
    );
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let (s, j) = get_json(&r, &format!("/api/dumps/{id}/meta")).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(j["error"]
        .as_str()
        .unwrap()
        .contains("more than the viewer opens"));
}

/// Recordings opened together answer at once with their skeleton (where each thread was
/// busy, read from the chunks), then, when read, with the whole model: the same lanes, now
/// with their records.
#[tokio::test]
async fn recordings_opened_together_answer_first_with_their_skeleton_then_in_full() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a-1.flightrec-ring", "b-2.flightrec-ring"] {
        std::fs::write(
            dir.path().join(name),
            flightrec_format::testing::sample_image(3),
        )
        .unwrap();
    }
    let router = router_for(dir.path(), Limits::default());
    let (a, b) = (
        id_of(&router, "a-1.flightrec-ring").await,
        id_of(&router, "b-2.flightrec-ring").await,
    );
    let ids = format!("{a}+{b}");
    let lanes = |m: &Json| {
        m["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["name"].clone(),
                    l["process"].clone(),
                    l["data_start"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    // On this test's one-thread runtime the full read cannot have run yet.
    let (status, first) = get_json(&router, &format!("/api/dumps/{ids}/meta")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["loading"], true);
    assert_eq!(first["records"], 0);
    assert_eq!(first["processes"].as_array().unwrap().len(), 2);
    let end = first["end"].as_i64().unwrap();
    let (status, w) = get_json(
        &router,
        &format!("/api/dumps/{ids}/window?start=0&end={end}&width=800"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Every lane shows a clump of activity (`[begin, end, row, records]`), and nothing else.
    for lane in w["lanes"].as_array().unwrap() {
        let bars = lane["bars"].as_array().unwrap();
        assert!(!bars.is_empty(), "{lane}");
        assert!(bars.iter().all(|b| b.is_array() && b[3].as_u64() > Some(0)));
        assert!(lane["events"].as_array().unwrap().is_empty());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let full = loop {
        let (status, m) = get_json(&router, &format!("/api/dumps/{ids}/meta")).await;
        assert_eq!(status, StatusCode::OK);
        if m["loading"] == false {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "still loading");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(lanes(&full), lanes(&first));
    assert_eq!(full["origin"], first["origin"]);
    assert_eq!(full["end"], first["end"]);
    assert!(full["records"].as_u64().unwrap() > 0);
    // One of them not a recording: one clear error, for the skeleton as for the whole.
    std::fs::write(dir.path().join("junk.flightrec"), junk_dump()).unwrap();
    let junk = id_of(&router, "junk.flightrec").await;
    for uri in [
        format!("/api/dumps/{a}+{junk}/meta"),
        format!("/api/dumps/{a}+{junk}/window?start=0&end=10&width=10"),
        format!("/api/dumps/{a}+{junk}/tasks"),
    ] {
        let (status, e) = get_json(&router, &uri).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert!(
            e["error"].as_str().unwrap().contains("junk.flightrec"),
            "{e}"
        );
    }
}

/// A single recording big enough answers first with its skeleton and how far its read is,
/// then in full; a small one (the default limit) answers in full at once.
#[tokio::test]
async fn a_big_recording_answers_first_with_its_skeleton_and_its_reads_progress() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a-1.flightrec-ring"),
        flightrec_format::testing::sample_image(3),
    )
    .unwrap();
    let small = router_for(dir.path(), Limits::default());
    let id = id_of(&small, "a-1.flightrec-ring").await;
    let (status, whole) = get_json(&small, &format!("/api/dumps/{id}/meta")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whole["loading"], false, "{whole}");
    assert!(whole.get("progress").is_none(), "{whole}");

    let limits = Limits {
        skeleton_above_bytes: 0,
        ..Limits::default()
    };
    let big = router_for(dir.path(), limits);
    let id = id_of(&big, "a-1.flightrec-ring").await;
    // On this test's one-thread runtime the full read cannot have run yet.
    let (status, first) = get_json(&big, &format!("/api/dumps/{id}/meta")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["loading"], true, "{first}");
    assert_eq!(first["records"], 0);
    assert_eq!(first["progress"]["records_read"], 0, "{first}");
    // Named as the whole model will be: its own service, pid and threads.
    for field in ["service", "pid", "origin", "end"] {
        assert_eq!(first[field], whole[field], "{field}");
    }
    let threads = |m: &Json| {
        m["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["thread"].clone(), l["tid"].clone(), l["name"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(threads(&first), threads(&whole));
    assert_eq!(first["processes"].as_array().map(Vec::len), Some(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let full = loop {
        let (status, m) = get_json(&big, &format!("/api/dumps/{id}/meta")).await;
        assert_eq!(status, StatusCode::OK);
        if m["loading"] == false {
            break m;
        }
        let p = &m["progress"];
        let (read, expected) = (p["records_read"].as_u64(), p["records_expected"].as_u64());
        assert!(read <= expected || expected == Some(0), "{m}");
        assert!(std::time::Instant::now() < deadline, "still loading");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(full.get("progress").is_none(), "{full}");
    assert_eq!(full["records"], whole["records"]);
    assert_eq!(full["origin"], first["origin"]);
    assert_eq!(full["end"], first["end"]);
    assert_eq!(full["lanes"], whole["lanes"]);
}

#[tokio::test]
async fn the_index_reports_a_files_size_as_it_is_when_asked() {
    let (dir, r) = fixture();
    let ring = dir.path().join("app-1.flightrec-ring");
    let size_of = |j: &serde_json::Value| {
        j["dumps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["file"] == "app-1.flightrec-ring")
            .unwrap()["size"]
            .as_u64()
            .unwrap()
    };
    let (_, before) = get_json(&r, "/api/dumps").await;
    let full = std::fs::metadata(&ring).unwrap().len();
    assert_eq!(size_of(&before), full);
    let f = std::fs::OpenOptions::new().write(true).open(&ring).unwrap();
    f.set_len(full / 2).unwrap();
    let (_, after) = get_json(&r, "/api/dumps").await;
    assert_eq!(size_of(&after), full / 2);
}

#[tokio::test]
async fn a_cut_files_lanes_are_marked_cut_and_a_whole_ones_are_not() {
    let (dir, r) = fixture();
    let id = id_of(&r, "app-1.flightrec-ring").await;
    let (_, whole) = get_json(&r, &format!("/api/dumps/{id}/meta")).await;
    assert!(whole["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["cut"] == false));
    let bytes = flightrec_format::testing::sample_image(3);
    std::fs::write(
        dir.path().join("cut.flightrec-ring"),
        &bytes[..bytes.len() - 1024],
    )
    .unwrap();
    let cut = id_of(&r, "cut.flightrec-ring").await;
    let (status, meta) = get_json(&r, &format!("/api/dumps/{cut}/meta")).await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["damaged"], true, "{meta}");
    let lanes = meta["lanes"].as_array().unwrap();
    assert!(
        !lanes.is_empty() && lanes.iter().all(|l| l["cut"] == true),
        "{meta}"
    );
}
