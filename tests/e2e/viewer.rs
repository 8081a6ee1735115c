//! The viewer in a real browser: headless Debian chromium driven by playwright-core
//! (`tests/browser/timeline.mjs`) against `flightrec view`, on dumps recorded here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use tracing::dispatcher::with_default;

use crate::helpers::*;

/// Screenshots and timings land here (CI keeps them as artifacts).
pub(crate) fn artifacts() -> PathBuf {
    repo().join("target/test-artifacts")
}

/// Whether node, playwright-core (npm, in tests/browser) and chromium are here. Required
/// when FLIGHTREC_REQUIRE_BROWSER is set (`scripts/test.sh` installs them and sets it);
/// otherwise a missing browser skips the test, saying so.
pub(crate) fn browser_available() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ok = Path::new(&chromium).exists()
        && repo()
            .join("tests/browser/node_modules/playwright-core")
            .exists()
        && Command::new("node").arg("--version").output().is_ok();
    if !ok {
        if std::env::var_os("FLIGHTREC_REQUIRE_BROWSER").is_some() {
            panic!("no browser: scripts/test.sh installs chromium and playwright-core");
        }
        not_run("no chromium or playwright-core (scripts/test.sh installs them as root)");
    }
    ok
}

/// Runs the browser script and returns what it saw; fails on any page error.
pub(crate) fn drive(mode: &str, dump: &Path, opts: Json) -> Json {
    let out = Command::new("node")
        .arg(repo().join("tests/browser/timeline.mjs"))
        .arg(mode)
        .arg(flightrec_bin())
        .arg(dump)
        .arg(artifacts())
        .arg(opts.to_string())
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "browser script said no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        r.get("failure").is_none(),
        "in the browser: {}",
        r["failure"]
    );
    assert_eq!(r["errors"], serde_json::json!([]), "page errors");
    assert_eq!(r["cspViolations"], serde_json::json!([]), "CSP violations");
    assert_eq!(r["dialogs"], serde_json::json!([]), "dialogs opened");
    assert!(Path::new(r["screenshot"].as_str().unwrap()).exists());
    r
}

#[test]
fn the_timeline_shows_one_lane_per_thread_and_follows_an_object_across_threads() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "interleave", 8 << 20);
    on_threads(&dispatch(&rec), 4, "worker-", |t| {
        for i in 0..40u64 {
            let _req = tracing::info_span!("request", n = i).entered();
            // Five connections shared by four threads: each is used by several of them.
            tracing::info!(conn = (i + t as u64) % 5, t = t as u64, "use conn");
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    });
    let dump = rec.snapshot().unwrap();
    let records = cat_json(&dump);

    let r = drive(
        "interleave",
        &dump,
        serde_json::json!({"clickTitle": "use conn", "field": "conn"}),
    );
    assert_eq!(r["lanes"], 4, "one lane per thread");
    let names: HashSet<&str> = r["laneNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["worker-0", "worker-1", "worker-2", "worker-3"])
    );

    // The clicked event's fields, as the details panel shows them. Record ids are positions
    // in the dump's time order, the same order `cat --json` prints.
    let clicked = &records[r["clicked"].as_u64().unwrap() as usize];
    assert_eq!(r["detailsTitle"], "use conn");
    assert_eq!(r["fields"]["message"], "use conn");
    assert_eq!(r["fields"]["conn"], clicked["fields"]["conn"].to_string());
    assert_eq!(r["fields"]["t"], clicked["fields"]["t"].to_string());

    // Clicking conn's value highlights exactly the records that carry it, across threads.
    let conn = &clicked["fields"]["conn"];
    let carrying: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, x)| &x["fields"]["conn"] == conn)
        .map(|(i, _)| i)
        .collect();
    let highlighted: Vec<usize> = r["highlighted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(highlighted, carrying);
    let threads: Vec<&str> = carrying
        .iter()
        .map(|&i| records[i]["thread"].as_str().unwrap())
        .collect();
    assert!(
        threads.iter().collect::<HashSet<_>>().len() >= 2,
        "used on several threads"
    );
    let handovers = threads.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(handovers > 0);
    assert_eq!(r["objectRows"], carrying.len());
    assert_eq!(
        r["handoverRows"], handovers,
        "the list marks every hand-over"
    );
}

#[test]
fn an_api_error_shows_an_error_in_the_page_never_a_rendered_record() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "apierror", 1 << 20);
    on_threads(&dispatch(&rec), 2, "worker-", |t| {
        for i in 0..20u64 {
            tracing::info!(i, t = t as u64, "work");
        }
    });
    let dump = rec.snapshot().unwrap();
    let r = drive("apierror", &dump, serde_json::json!({}));
    for (case, why) in [
        ("missing", "no record 999999999"),
        ("broken", "the server broke"),
    ] {
        let d = &r[case];
        assert_eq!(d["title"], "cannot show this record", "{case}: {d}");
        assert!(d["text"].as_str().unwrap().contains(why), "{case}: {d}");
        // Nothing of a record: no field list, no definition rows, nothing selected.
        assert_eq!(d["fieldLists"], 0, "{case}: {d}");
        assert_eq!(d["rows"], 0, "{case}: {d}");
        assert!(d["selected"].is_null(), "{case}: {d}");
    }
    assert!(
        r["searchStatus"]
            .as_str()
            .unwrap()
            .starts_with("search failed"),
        "{}",
        r["searchStatus"]
    );
    let statuses: Vec<(&str, u64)> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["what"].as_str().unwrap(), p["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("record", 404), ("record", 500), ("search", 500)],
        "{}",
        r["problems"]
    );
}

#[test]
fn html_and_script_in_a_dump_are_shown_as_text_and_never_run() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "xss", 4 << 20);
    let d = dispatch(&rec);
    std::thread::Builder::new()
        .name("<img src=x onerror=window.__xss=1>".into())
        .spawn(move || {
            with_default(&d, || {
                let _s = tracing::info_span!(
                    "<script>window.__xss=2</script>",
                    "<b onclick=x>" = "<svg onload=window.__xss=3>"
                )
                .entered();
                tracing::event!(
                    target: "<iframe src=javascript:window.__xss=4>",
                    tracing::Level::WARN,
                    { "<img src=y onerror=window.__xss=5>" = "<script>window.__xss=6</script>" },
                    "<img src=z onerror=window.__xss=7>"
                );
            })
        })
        .unwrap()
        .join()
        .unwrap();
    let dump = rec.snapshot().unwrap();
    let r = drive(
        "xss",
        &dump,
        serde_json::json!({
            "clickTitle": "<img src=z onerror=window.__xss=7>",
            "field": "<img src=y onerror=window.__xss=5>",
        }),
    );
    assert_eq!(r["injected"], 0, "no element came from a dump string");
    assert_eq!(r["xssFlag"], Json::Null, "no script ran");
    let text = r["bodyText"].as_str().unwrap();
    for payload in [
        "<img src=x onerror=window.__xss=1>",
        "<img src=z onerror=window.__xss=7>",
        "<iframe src=javascript:window.__xss=4>",
        "<script>window.__xss=6</script>",
        "<script>window.__xss=2</script>",
    ] {
        assert!(text.contains(payload), "{payload} is not shown as text");
    }
}

#[test]
fn a_million_record_dump_opens_and_zooms_and_pans_in_the_browser() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let dump = million_record_dump(dir.path());
    let r = drive("scale", &dump, serde_json::json!({}));
    assert_eq!(r["records"], 1_000_000);
    assert_eq!(r["lanes"], 4);
    let report = serde_json::json!({
        "records": r["records"], "first_render_ms": r["firstRenderMs"],
        "since_viewer_launch_ms": r["sinceLaunchMs"],
        "zoom_ms": r["zoomMs"], "pan_ms": r["panMs"], "zoom_out_ms": r["zoomOutMs"],
        "zoom_frame_ms": r["zoomFrameMs"], "pan_frame_ms": r["panFrameMs"],
        "zoom_out_frame_ms": r["zoomOutFrameMs"], "refine_ms": r["refineMs"],
        "items_drawn": r["drawnItems"],
    });
    eprintln!("viewer at a million records: {report}");
    std::fs::write(artifacts().join("viewer-scale.json"), report.to_string()).unwrap();
    // Generous bounds for a debug build on a loaded 2-core machine; the measured numbers
    // are the report above.
    assert!(r["firstRenderMs"].as_u64().unwrap() < 20_000);
    for ms in r["zoomMs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(r["panMs"].as_array().unwrap())
    {
        assert!(ms.as_u64().unwrap() < 5_000, "zoom/pan took {ms} ms");
    }
    // Every zoom and pan redrew from what the page held (the script fails if an input got
    // no redraw of its own before the server answered), and drawing is quick: the bound is
    // generous for a loaded machine; the report has the measured frame times.
    assert!(
        !r["refineMs"].as_array().unwrap().is_empty(),
        "the second zoom needs finer data: the server's answer refines it"
    );
    for ms in ["zoomFrameMs", "panFrameMs", "zoomOutFrameMs"]
        .iter()
        .flat_map(|k| r[k].as_array().unwrap())
    {
        assert!(ms.as_f64().unwrap() < 250.0, "a redraw took {ms} ms");
    }
}

#[test]
fn the_demo_opens_the_viewer_on_its_race_with_both_threads_in_view() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let r = drive("demo", dir.path(), serde_json::json!({}));
    assert!(
        r["url"].as_str().unwrap().contains("field=cache"),
        "{}",
        r["url"]
    );
    assert!(
        r["banner"].as_str().unwrap().contains("panicked"),
        "{}",
        r["banner"]
    );
    let visible = r["visible"].as_array().unwrap();
    let lanes: HashSet<&str> = visible
        .iter()
        .map(|v| v["lane"].as_str().unwrap())
        .collect();
    assert!(
        lanes.contains("refresher"),
        "the refresher's clear is in view: {visible:?}"
    );
    assert!(
        lanes.iter().any(|l| l.starts_with("worker-")),
        "the worker's hit and failed read are in view: {visible:?}"
    );
    assert!(visible
        .iter()
        .any(|v| v["title"].as_str().unwrap().starts_with("price vanished")));
    // A threaded service has threads and requests, not tasks.
    let header = r["header"].as_str().unwrap();
    assert!(
        header.contains(" requests") && !header.contains("tasks"),
        "{header}"
    );
    assert!(r["handoverRows"].as_u64().unwrap() > 0);
    assert_layout(&r["layout"]);
    let at_trigger = &r["layoutAtTrigger"];
    assert_layout(at_trigger);
    let label = &at_trigger["triggerLabel"];
    assert!(
        label["text"].as_str().unwrap().contains("panic"),
        "the trigger's label is drawn: {at_trigger}"
    );
}

/// What a user sees of the page's layout: every axis label and the trigger's label whole
/// inside the canvas (none hidden under the details panel), the object list right below the
/// last lane, and its times on the axis's clock with the offset beside them.
fn assert_layout(l: &Json) {
    let width = l["canvasWidth"].as_f64().unwrap();
    let labels = l["axisLabels"].as_array().unwrap();
    // Labels sit at round times about a third of the canvas apart: two or three fit,
    // depending on where the view's ends fall between round times (the demo's race, which
    // the view is opened on, takes longer or shorter from run to run).
    assert!(labels.len() >= 2, "axis labels: {l}");
    let mut labels_inside = labels
        .iter()
        .chain(Some(&l["triggerLabel"]).filter(|t| !t.is_null()));
    assert!(
        labels_inside.all(|a| {
            let (x, w) = (a["x"].as_f64().unwrap(), a["w"].as_f64().unwrap());
            x >= 0.0 && x + w <= width
        }),
        "a label runs out of the canvas ({width} px wide): {l}"
    );
    // The list starts where the timeline ends, and the timeline ends at its last lane,
    // unless it has so few lanes that it keeps its minimum height (room for the details).
    let f = |k: &str| l[k].as_f64().unwrap();
    let below_timeline = f("objectTop") - f("timelineBottom");
    assert!(
        (0.0..=2.0).contains(&below_timeline),
        "{below_timeline} px between the timeline and the object list: {l}"
    );
    let gap = f("objectTop") - f("lanesBottom");
    let at_minimum = (f("timelineHeight") - f("minTimelineHeight")).abs() < 1.0;
    assert!(
        (0.0..=40.0).contains(&gap) || (at_minimum && gap > 0.0),
        "{gap} px between the last lane and the object list: {l}"
    );
    // "14:17:37.185 608 294" on the axis's clock, then "+5.608 294 ms".
    let row = l["objectFirstRow"].as_array().unwrap();
    let time = row[0].as_str().unwrap();
    let first_axis = labels[0]["text"].as_str().unwrap();
    let clock = |s: &str| {
        let b = s.as_bytes();
        b.len() >= 12
            && [2, 5].iter().all(|&i| b[i] == b':')
            && b[8] == b'.'
            && [0, 1, 3, 4, 6, 7, 9, 10, 11]
                .iter()
                .all(|&i| b[i].is_ascii_digit())
    };
    assert!(
        clock(time) && clock(first_axis),
        "the list and the axis use one clock: {time:?}, {first_axis:?}"
    );
    assert_eq!(time.len(), "14:17:37.185 608 294".len(), "{time}");
    assert!(
        row[1].as_str().unwrap().starts_with('+') && row[1].as_str().unwrap().ends_with(" ms"),
        "{l}"
    );
}

/// Recordings opened together (three processes' worth, 1.2 million records) are drawn at once
/// from their skeleton, each lane showing where its thread was busy, before any record is
/// decoded; the page then redraws the same lanes from the whole model when it is read.
#[test]
fn recordings_opened_together_are_drawn_busy_at_once_then_in_full() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let views = dir.path().join("views");
    std::fs::create_dir_all(&views).unwrap();
    for k in 0..3 {
        let rec = recorder(dir.path(), &format!("svc{k}"), 32 << 20);
        on_threads(&dispatch(&rec), 2, "worker-", |_| {
            for i in 0..40_000u64 {
                let _s = tracing::info_span!("request", id = i).entered();
                tracing::info!(n = i, "handled");
            }
        });
        let dump = rec.snapshot().unwrap();
        std::fs::copy(&dump, views.join(format!("svc{k}.flightrec"))).unwrap();
    }
    // Opened from the index's address (no preload): the first meta is the skeleton.
    let r = drive(
        "scale",
        &views,
        serde_json::json!({ "query": "dump/0+1+2" }),
    );
    let first = &r["firstPaint"];
    assert_eq!(first["loading"], true, "{first}");
    assert_eq!(first["lanes"], 6);
    let clumps: Vec<u64> = first["clumps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert!(clumps.iter().all(|&c| c > 0), "every lane busy: {clumps:?}");
    assert!(first["banner"]
        .as_str()
        .unwrap()
        .contains("reading 3 recordings"));
    assert_eq!(r["loadedLoading"], false);
    assert_eq!(r["records"], 1_200_000);
    assert_eq!(r["lanes"], 6);
    eprintln!(
        "skeleton drawn after {} ms, the whole after {} ms",
        r["firstPaintMs"], r["firstRenderMs"]
    );
}

/// A busy service's snapshot: one start-up record on a thread that then idles, long before
/// the workers' records, whose older ones the ring overwrote. The page opens on the span
/// where every thread's history is whole (the workers' surviving records), not on an axis
/// stretched back to the lone record, and the footer says that a thread has records before
/// the view.
#[test]
fn the_viewer_opens_where_the_threads_records_are_not_on_a_lone_early_record() {
    if !browser_available() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "busy", 256 << 10);
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || tracing::info!("service started"));
    // Not a wait for anything: the gap to make, so that the start-up line is at least a
    // second older than anything else kept.
    std::thread::sleep(std::time::Duration::from_secs(1));
    on_threads(&d, 2, "worker", |t| {
        for i in 0..200_000u64 {
            tracing::debug!(t, i, "served");
        }
    });
    let dump = rec.snapshot().unwrap();
    let info = info_json(&dump);
    let threads = info["threads"].as_array().unwrap();
    assert!(
        threads
            .iter()
            .any(|t| t["overwritten"].as_u64().unwrap() > 0),
        "the workers overwrote the ring: {info}"
    );
    let r = drive("open", &dump, serde_json::json!({}));
    let opened = &r["openedView"];
    let (start, end) = (
        opened["start"].as_f64().unwrap(),
        opened["end"].as_f64().unwrap(),
    );
    let lanes = r["metaLanes"].as_array().unwrap();
    assert!(lanes.len() >= 3, "{lanes:?}");
    // The view starts after the start-up record (the workers' surviving records all come
    // at least the slept second later, however slowly they were written), not at it.
    assert!(start > 0.5e9 && start < end, "opened on {start}..{end}");
    // The start-up thread's name (this test's, long) gives way before its tid does.
    let tids = r["tidsShown"].as_array().unwrap();
    assert!(tids.len() >= 3, "{tids:?}");
    assert!(tids.iter().all(|t| t["inside"] == true), "{tids:?}");
    let note = r["earlierNote"].as_str().unwrap();
    // The start-up thread's lone record (and a worker's older surviving records, where its
    // history reaches back further than the other's) lie before the view.
    assert!(
        note.contains("records before this view") && note.contains("0: show everything"),
        "{note}"
    );
}
