//! The viewer's memory is bounded for reads under way, not only for finished ones: sixteen
//! shifted views of one million-record dump asked at once cost what one view costs.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

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

fn get_status(host: &str, path: &str) -> String {
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or("").to_string()
}

/// Serves `dump`, asks for the meta of each id in `ids` at once, and returns the server's
/// peak memory once all have answered.
fn peak_for(dump: &Path, ids: &[String]) -> u64 {
    let mut server = Command::new(flightrec_bin())
        .arg("view")
        .arg(dump)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let host = line[line.find("http://").unwrap() + 7..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let asks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (host, path) = (host.clone(), format!("/api/dumps/{id}/meta"));
            std::thread::spawn(move || get_status(&host, &path))
        })
        .collect();
    for a in asks {
        let status = a.join().unwrap();
        assert!(status.contains(" 200"), "{status}");
    }
    let peak = vm_hwm(server.id());
    let _ = server.kill();
    let _ = server.wait();
    peak
}

#[test]
fn sixteen_shifted_views_of_a_million_records_cost_what_one_costs() {
    let dir = scratch();
    let rec = recorder(dir.path(), "million", 256 << 20);
    on_threads(&dispatch(&rec), 4, "w", |t| {
        for i in 0..50_000u64 {
            let _s = tracing::info_span!("request", id = i).entered();
            tracing::info!(conn = i % 64, t = t as u64, "handled");
        }
    });
    let dump = rec.snapshot().unwrap();
    drop(rec);
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
