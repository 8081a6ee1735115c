//! Times the findings of recordings: decoding apart, then `findings` alone, and prints
//! what they found. For the findings' cost at scale, on `big_dump`'s million records:
//!
//! `cargo run --release -p flightrec-analysis --example findings_timing -- DUMP...`
//!
//! With `--decode-only` first, it stops after decoding: the two runs' peak memory
//! (`/usr/bin/time -v`) tell what the findings add to the decoded recording.
use std::time::Instant;

use flightrec_analysis::findings::{findings, Thresholds};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let decode_only = args.first().is_some_and(|a| a == "--decode-only");
    if decode_only {
        args.remove(0);
    }
    for path in args {
        let t = Instant::now();
        let rec = match flightrec_format::open(std::path::Path::new(&path)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        };
        let decoded = t.elapsed();
        if decode_only {
            println!(
                "{path}: {} records decoded in {:.0} ms",
                rec.records.len(),
                decoded.as_secs_f64() * 1e3
            );
            continue;
        }
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
