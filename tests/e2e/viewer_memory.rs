//! The viewer's memory is bounded for reads under way, not only for finished ones: sixteen
//! shifted views of one million-record dump asked at once cost what one view costs.

use std::path::Path;

use crate::helpers::*;

/// Peak resident memory of a live process (`VmHWM`), bytes.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Serves `dump`, asks for the meta of each id in `ids` at once, and returns the server's
/// peak memory once all have answered.
fn peak_for(dump: &Path, ids: &[String]) -> u64 {
    let server = start_viewer(&[dump], &[]);
    let host = server.host.clone();
    let asks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (host, path) = (host.clone(), format!("/api/dumps/{id}/meta"));
            std::thread::spawn(move || http_get(&host, &path).0)
        })
        .collect();
    for a in asks {
        let status = a.join().unwrap();
        assert!(status.contains(" 200"), "{status}");
    }
    vm_hwm(server.child.id())
}

#[test]
fn sixteen_shifted_views_of_a_million_records_cost_what_one_costs() {
    let dir = scratch();
    let dump = million_record_dump(dir.path());
    let one = peak_for(&dump, &["0".to_string()]);
    let shifted: Vec<String> = (0..16).map(|k| format!("0@{}", k * 1_000_000)).collect();
    let sixteen = peak_for(&dump, &shifted);
    eprintln!(
        "viewer peak: one view {} MiB, 16 shifted views {} MiB",
        one >> 20,
        sixteen >> 20
    );
    assert!(
        sixteen * 2 <= one * 3,
        "16 shifted views peaked at {} MiB, one at {} MiB",
        sixteen >> 20,
        one >> 20
    );
}
