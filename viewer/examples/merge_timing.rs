//! Times the viewer's load of recordings opened together, as `flightrec view --merge` loads
//! them: the headers, then each recording decoded and modelled on one core, side by side,
//! the models laid end to end; then the meta the page asks for first. With one recording,
//! decode and model apart. For measuring merged views at scale (issue 13), with dumps from
//! `flightrec`'s `big_dump` example:
//!
//! `cargo run --release -p flightrec-viewer --example merge_timing -- A.flightrec B.flightrec ...`
use std::path::PathBuf;

use flightrec_viewer::model::Model;

fn main() {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if std::env::var_os("SKEL").is_some() {
        return skeleton_timing(&paths);
    }
    let t = std::time::Instant::now();
    let model = if let [one] = &paths[..] {
        let rec = flightrec_format::open(one).expect("a recording");
        eprintln!("decode: {:?}, resident {}", t.elapsed(), resident());
        let t = std::time::Instant::now();
        let m = Model::new(rec);
        eprintln!("model: {:?}, resident {}", t.elapsed(), resident());
        m
    } else {
        let heads: Vec<_> = paths
            .iter()
            .map(|p| {
                let img = flightrec_format::read_head(p).expect("a header");
                flightrec_format::scan(&img).expect("a header").recording
            })
            .collect();
        eprintln!("headers: {:?}", t.elapsed());
        let load = |k: usize| flightrec_format::open(&paths[k]).map_err(|e| e.to_string());
        let m = Model::merged_loading(&heads, &[], load).expect("recordings");
        eprintln!(
            "decoded and modelled: {:?}, resident {}",
            t.elapsed(),
            resident()
        );
        m
    };
    let t = std::time::Instant::now();
    let meta = model.meta();
    eprintln!("meta: {:?}", t.elapsed());
    // The windows a page asks for first: the whole recording at a canvas's width (1 000
    // px), and with a view's margin each side (3 000 px); the fastest of five each.
    let end = serde_json::to_value(&meta)
        .ok()
        .and_then(|m| m["end"].as_i64())
        .unwrap_or(0);
    let filter = flightrec_viewer::model::Filter::default();
    for (start, stop, width) in [(0, end, 1000), (-end, 2 * end, 3000)] {
        let best = (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                let _ = std::hint::black_box(model.window(start, stop, width, &filter));
                t.elapsed()
            })
            .min()
            .unwrap_or_default();
        eprintln!("window {start}..{stop} at {width} px: {best:?}");
    }
}

/// This process's resident memory now, as the kernel counts it.
fn resident() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l["VmRSS:".len()..].trim().to_owned())
        })
        .unwrap_or_default()
}

#[allow(dead_code)]
fn skeleton_timing(paths: &[PathBuf]) {
    let mut read = std::time::Duration::ZERO;
    let mut scan = std::time::Duration::ZERO;
    let mut scans = Vec::new();
    for p in paths {
        let t = std::time::Instant::now();
        let img = flightrec_format::read_image(p).expect("image");
        read += t.elapsed();
        let t = std::time::Instant::now();
        let s = img.scan().expect("scan");
        let activity = s.activity().map(|(t, a)| (t, a.to_vec())).collect();
        scan += t.elapsed();
        scans.push((s.recording, activity));
    }
    let t = std::time::Instant::now();
    let _ = Model::skeleton(scans, &[]);
    eprintln!("read {read:?} scan {scan:?} skeleton {:?}", t.elapsed());
}
