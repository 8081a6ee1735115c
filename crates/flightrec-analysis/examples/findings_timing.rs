//! Times the findings of recordings: decoding apart, then `findings` alone, and prints
//! what they found. For the findings' cost at scale, on `big_dump`'s million records:
//!
//! `cargo run --release -p flightrec-analysis --example findings_timing -- DUMP...`
use std::time::Instant;

use flightrec_analysis::findings::{findings, Thresholds};

fn main() {
    for path in std::env::args().skip(1) {
        let t = Instant::now();
        let rec = match flightrec_format::open(std::path::Path::new(&path)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        };
        let decoded = t.elapsed();
        let t = Instant::now();
        let found = findings(&rec, &Thresholds::default());
        let took = t.elapsed();
        println!(
            "{path}: {} records decoded in {:.0} ms; findings in {:.0} ms: {}",
            rec.records.len(),
            decoded.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3,
            if found.is_empty() {
                "none".to_string()
            } else {
                found
                    .iter()
                    .map(|f| f.kind.slug())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
}
