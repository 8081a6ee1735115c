//! Keys that round-trip: a dump uploaded under any prefix (spaces, non-ASCII, `%`, `..`,
//! `?`, `#`) is listed under the key `upload` printed, and opened through `view s3://` it
//! gives the local dump's bytes; or the upload fails with one line. Against moto's server.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;
use crate::upload::{boto, env, free_port, moto, start, upload};

/// Uploads `dump` under `prefix` in a bucket of its own, then lists and opens it.
fn round_trip(port: u16, bucket: &str, prefix: &str, dump: &Path, cache: &Path) {
    boto(port, &format!("s3.create_bucket(Bucket='{bucket}')"));
    let to = format!("s3://{bucket}/{prefix}");
    let o = upload(port, &[dump.to_str().unwrap(), "--to", &to]);
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        // Refused: one line, no panic.
        assert_eq!(err.lines().count(), 1, "{prefix:?}: {err}");
        assert!(!err.contains("panicked"), "{prefix:?}: {err}");
        return;
    }
    let printed = String::from_utf8_lossy(&o.stdout);
    let marker = format!(" to s3://{bucket}/");
    let key = printed
        .lines()
        .find_map(|l| l.split_once(&marker).map(|(_, k)| k.to_string()))
        .unwrap_or_else(|| panic!("{prefix:?}: no key in {printed:?}"));
    let listed = boto(
        port,
        &format!(
            "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='{bucket}').get('Contents', []) if o['Key'].endswith('.flightrec')]))"
        ),
    );
    let keys: Vec<String> = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(
        keys,
        std::slice::from_ref(&key),
        "{prefix:?}: printed {key:?}"
    );

    let server = view(
        port,
        &to,
        &[("XDG_CACHE_HOME", cache.display().to_string())],
    );
    let host = server.host.clone();
    let (status, body) = http_get(&host, "/api/dumps/0/meta");
    drop(server);
    assert!(status.contains(" 200"), "{prefix:?}: {status} {body}");
    let local = std::fs::read(dump).unwrap();
    let cached: Vec<Vec<u8>> = files_under(cache)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        cached.contains(&local),
        "{prefix:?}: the fetched bytes differ"
    );
}

/// `flightrec view URL` against the store on `port`, with `extra` env.
fn view(port: u16, url: &str, extra: &[(&str, String)]) -> Viewer {
    let mut envs: Vec<(&str, String)> = env(port);
    envs.extend(extra.iter().cloned());
    start_viewer(&[url], &envs)
}

#[test]
fn any_prefix_uploads_lists_and_opens_as_the_same_bytes_or_fails_in_one_line() {
    let Some(moto) = moto() else {
        return;
    };
    let dir = scratch();
    let rec = recorder(dir.path(), "keys", 256 << 10);
    tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!("hello"));
    let dump = rec.snapshot().unwrap();
    let port = free_port();
    let _server = start(&moto, port);
    let prefixes: Vec<String> = [
        "plain",
        "pre fix/ünï/💥",
        "a%2Fb?x=1#frag",
        "../../etc",
        "a//b/./c/",
        "100%",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (i, prefix) in prefixes.iter().enumerate() {
        let cache = scratch();
        round_trip(port, &format!("keys-{i}"), prefix, &dump, cache.path());
    }
    // And any prefix, from characters that trouble URLs, keys and file names: a property,
    // shrunk to its smallest failing prefix if it fails.
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    let buckets = std::sync::atomic::AtomicUsize::new(100);
    runner
        .run(&"[ab /%.?#&+=~\\\\\"'<>ü💥\t:*]{1,12}", |prefix| {
            let n = buckets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let cache = scratch();
            round_trip(port, &format!("keys-{n}"), &prefix, &dump, cache.path());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_merge_larger_than_the_cache_says_so_in_one_line_and_each_part_still_opens() {
    let Some(moto) = moto() else {
        return;
    };
    let dir = scratch();
    let dumps: Vec<std::path::PathBuf> = ["one", "two"]
        .iter()
        .map(|service| {
            let rec = recorder(dir.path(), service, 256 << 10);
            tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!(service, "hi"));
            rec.snapshot().unwrap()
        })
        .collect();
    let sizes: Vec<u64> = dumps
        .iter()
        .map(|d| std::fs::metadata(d).unwrap().len())
        .collect();
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='merge')");
    let names: Vec<&str> = dumps.iter().map(|d| d.to_str().unwrap()).collect();
    let mut args = names.clone();
    args.extend(["--to", "s3://merge/m"]);
    assert!(upload(port, &args).status.success());

    // Room for either, not for both.
    let budget = sizes.iter().max().unwrap() + sizes.iter().min().unwrap() / 2;
    let cache = scratch();
    let viewer = view(
        port,
        "s3://merge/m",
        &[
            ("FLIGHTREC_CACHE_BYTES", budget.to_string()),
            ("XDG_CACHE_HOME", cache.path().display().to_string()),
        ],
    );
    let host = viewer.host.clone();
    let (merged, body) = http_get(&host, "/api/dumps/0+1/meta");
    let (first, _) = http_get(&host, "/api/dumps/0/meta");
    let (second, _) = http_get(&host, "/api/dumps/1/meta");
    drop(viewer);
    assert!(merged.contains(" 413"), "{merged} {body}");
    assert!(body.contains("more than the cache"), "{body}");
    assert!(
        first.contains(" 200") && second.contains(" 200"),
        "{first} {second}"
    );

    // Room for both: the merge opens, its parts fetched and kept while it is read.
    let cache = scratch();
    let viewer = view(
        port,
        "s3://merge/m",
        &[
            ("FLIGHTREC_CACHE_BYTES", (sizes[0] + sizes[1]).to_string()),
            ("XDG_CACHE_HOME", cache.path().display().to_string()),
        ],
    );
    let host = viewer.host.clone();
    let (merged, body) = http_get(&host, "/api/dumps/0+1/meta");
    drop(viewer);
    assert!(merged.contains(" 200"), "{merged} {body}");
}

#[test]
fn view_of_a_missing_bucket_says_so_in_our_words() {
    let Some(moto) = moto() else {
        return;
    };
    let port = free_port();
    let _server = start(&moto, port);
    let out = Command::new(flightrec_bin())
        .args(["view", "s3://nosuchbucket/x"])
        .envs(env(port))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bucket nosuchbucket not found at http://127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn two_keys_that_flatten_alike_open_as_their_own_dumps() {
    let Some(moto) = moto() else {
        return;
    };
    let dir = scratch();
    let port = free_port();
    let _server = start(&moto, port);
    boto(port, "s3.create_bucket(Bucket='twins')");
    // Two dumps of two services, put by another tool under keys that differ only in `/`
    // against `%`.
    let keys = ["c/fleet%probe%x.flightrec", "c/fleet/probe/x.flightrec"];
    for (key, service) in keys.iter().zip(["alpha", "beta"]) {
        let rec = recorder(dir.path(), service, 256 << 10);
        tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!(service, "hi"));
        let dump = rec.snapshot().unwrap();
        boto(
            port,
            &format!(
                "s3.put_object(Bucket='twins', Key='{key}', Body=open('{}', 'rb').read(), \
                 Metadata={{'service': '{service}'}})",
                dump.display()
            ),
        );
    }
    let cache = scratch();
    let viewer = view(
        port,
        "s3://twins/c",
        &[("XDG_CACHE_HOME", cache.path().display().to_string())],
    );
    let host = viewer.host.clone();
    let (_, index) = http_get(&host, "/api/dumps");
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let mut opened = Vec::new();
    for row in index["dumps"].as_array().unwrap() {
        let (status, meta) = http_get(&host, &format!("/api/dumps/{}/meta", row["id"]));
        assert!(status.contains(" 200"), "{status} {meta}");
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
        opened.push((
            row["file"].as_str().unwrap().to_string(),
            meta["service"].as_str().unwrap_or("").to_string(),
        ));
    }
    drop(viewer);
    opened.sort();
    assert_eq!(
        opened,
        [
            (keys[0].to_string(), "alpha".to_string()),
            (keys[1].to_string(), "beta".to_string()),
        ]
    );
}
