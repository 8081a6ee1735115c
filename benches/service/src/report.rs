//! The table: each variant's medians over the rounds, against its baseline, and whether
//! flightrec meets its targets.

use std::fmt::Write as _;

use crate::{Sample, Variant};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Each variant's medians.
fn medians(samples: &[(Variant, Vec<Sample>)]) -> Vec<(Variant, Sample)> {
    samples
        .iter()
        .map(|(v, s)| {
            let m = |f: fn(&Sample) -> f64| median(s.iter().map(f).collect());
            (
                *v,
                Sample {
                    requests_per_s: m(|s| s.requests_per_s),
                    cpu_us_saturated: m(|s| s.cpu_us_saturated),
                    cpu_us_fixed: m(|s| s.cpu_us_fixed),
                    p50_us: m(|s| s.p50_us),
                    p99_us: m(|s| s.p99_us),
                    p999_us: m(|s| s.p999_us),
                },
            )
        })
        .collect()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// The markdown table, then the targets.
pub fn table(samples: &[(Variant, Vec<Sample>)], rate: f64, how: &str) -> String {
    let med = medians(samples);
    let of = |v: Variant| med.iter().find(|(w, _)| *w == v).map(|(_, s)| *s);
    let mut out = String::new();
    let _ = writeln!(out, "\nMachine: {}. {how}.\n", machine());
    let _ = writeln!(
        out,
        "| variant | req/s at saturation | CPU µs/req at saturation | CPU µs/req at {rate:.0} req/s | p50 µs | p99 µs | p99.9 µs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for (v, s) in &med {
        let base = of(v.baseline()).filter(|_| v.baseline() != *v);
        let vs = |x: f64, b: Option<f64>| match b {
            Some(b) if b > 0.0 => format!(" ({:.2}×)", x / b),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0}{} | {:.1}{} | {:.1}{} | {:.0} | {:.0}{} | {:.0} |",
            v.name(),
            s.requests_per_s,
            vs(s.requests_per_s, base.map(|b| b.requests_per_s)),
            s.cpu_us_saturated,
            vs(s.cpu_us_saturated, base.map(|b| b.cpu_us_saturated)),
            s.cpu_us_fixed,
            vs(s.cpu_us_fixed, base.map(|b| b.cpu_us_fixed)),
            s.p50_us,
            s.p99_us,
            vs(s.p99_us, base.map(|b| b.p99_us)),
            s.p999_us,
        );
    }
    let _ = writeln!(out, "\n(×: against `none`; `flightrec+tokio` against `none-unstable`, built as it is with --cfg tokio_unstable.)");
    if let (Some(none), Some(fmt), Some(fr)) =
        (of(Variant::None), of(Variant::Fmt), of(Variant::Flightrec))
    {
        let _ = writeln!(
            out,
            "\nTargets, flightrec against none and fmt in this run:"
        );
        let mut target = |holds: bool, what: String| {
            let _ = writeln!(out, "- {}: {what}", if holds { "holds" } else { "MISSED" });
        };
        for (label, f, n, m) in [
            (
                "at saturation",
                fr.cpu_us_saturated,
                none.cpu_us_saturated,
                fmt.cpu_us_saturated,
            ),
            (
                "at the fixed rate",
                fr.cpu_us_fixed,
                none.cpu_us_fixed,
                fmt.cpu_us_fixed,
            ),
        ] {
            target(
                f <= 1.10 * n,
                format!(
                    "CPU per request {label} {:.2}× none's (at most 1.10×)",
                    f / n
                ),
            );
            target(
                f - n <= 0.5 * (m - n),
                format!(
                    "CPU added per request {label} {:+.2} µs, {:.0}% of fmt's {:+.2} µs (at most 50%)",
                    f - n,
                    100.0 * (f - n) / (m - n),
                    m - n
                ),
            );
        }
        target(
            fr.requests_per_s >= 0.95 * none.requests_per_s,
            format!(
                "throughput {:.3}× none's (at least 0.95×)",
                fr.requests_per_s / none.requests_per_s
            ),
        );
        target(
            fr.p99_us <= 1.10 * none.p99_us,
            format!("p99 {:.2}× none's (at most 1.10×)", fr.p99_us / none.p99_us),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rps: f64, cpu: f64, p99: f64) -> Sample {
        Sample {
            requests_per_s: rps,
            cpu_us_saturated: cpu,
            cpu_us_fixed: cpu,
            p50_us: p99 / 2.0,
            p99_us: p99,
            p999_us: p99 * 2.0,
        }
    }

    #[test]
    fn medians_and_ratios_against_the_right_baseline_and_targets_judged() {
        let samples = vec![
            (
                Variant::None,
                vec![
                    sample(10_000.0, 20.0, 100.0),
                    sample(9_000.0, 22.0, 300.0),
                    sample(11_000.0, 21.0, 200.0),
                ],
            ),
            (Variant::Fmt, vec![sample(8_000.0, 26.0, 300.0)]),
            (Variant::Flightrec, vec![sample(9_600.0, 23.0, 230.0)]),
            (Variant::NoneUnstable, vec![sample(5_000.0, 40.0, 100.0)]),
            (Variant::FlightrecTokio, vec![sample(2_500.0, 80.0, 400.0)]),
        ];
        let t = table(&samples, 4000.0, "test");
        // none's medians: 10 000 req/s, 21 µs, p99 200.
        assert!(
            t.contains("| none | 10000 | 21.0 | 21.0 | 100 | 200 | 400 |"),
            "{t}"
        );
        // The task hooks against none-unstable, not none.
        assert!(
            t.contains("| flightrec+tokio | 2500 (0.50×) | 80.0 (2.00×)"),
            "{t}"
        );
        // flightrec: CPU 23/21 = 1.10 (holds), added 2 of fmt's 5 = 40% (holds),
        // throughput 0.96 (holds), p99 1.15 (missed).
        assert!(
            t.contains("- holds: CPU per request at saturation 1.10×"),
            "{t}"
        );
        assert!(
            t.contains(
                "- holds: CPU added per request at saturation +2.00 µs, 40% of fmt's +5.00 µs"
            ),
            "{t}"
        );
        assert!(t.contains("- holds: throughput 0.960×"), "{t}");
        assert!(t.contains("- MISSED: p99 1.15×"), "{t}");
    }
}
