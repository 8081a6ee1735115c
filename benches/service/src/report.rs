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
                    recorded_bytes_per_request: m(|s| s.recorded_bytes_per_request),
                    ring_reach_s: m(|s| s.ring_reach_s),
                    history_holds_s: m(|s| s.history_holds_s),
                    history_skipped: m(|s| s.history_skipped),
                    history_holds_s_fixed: m(|s| s.history_holds_s_fixed),
                    history_cpu_share: m(|s| s.history_cpu_share),
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

/// One figure of a sample.
type Figure = fn(&Sample) -> f64;

/// The median over rounds of `f(variant) / f(baseline)`, each round's pair taken side by
/// side: a shared machine drifts between rounds more than within one.
fn paired(
    samples: &[(Variant, Vec<Sample>)],
    v: Variant,
    base: Variant,
    f: fn(&Sample) -> f64,
) -> Option<f64> {
    let of = |w: Variant| samples.iter().find(|(x, _)| *x == w).map(|(_, s)| s);
    let (a, b) = (of(v)?, of(base)?);
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| f(a) / f(b))
        .filter(|r| r.is_finite())
        .collect();
    (!ratios.is_empty()).then(|| median(ratios))
}

/// The same for what flightrec adds over `none`, as a share of what fmt adds.
fn share_of_fmts(samples: &[(Variant, Vec<Sample>)], f: fn(&Sample) -> f64) -> Option<f64> {
    let of = |w: Variant| samples.iter().find(|(x, _)| *x == w).map(|(_, s)| s);
    let (none, fmt, fr) = (
        of(Variant::None)?,
        of(Variant::Fmt)?,
        of(Variant::Flightrec)?,
    );
    let shares: Vec<f64> = none
        .iter()
        .zip(fmt)
        .zip(fr)
        .map(|((n, m), r)| (f(r) - f(n)) / (f(m) - f(n)))
        .filter(|r| r.is_finite())
        .collect();
    (!shares.is_empty()).then(|| median(shares))
}

/// `x` with `decimals`, or `-` when there is none (NaN: a variant that records nothing, or
/// a ring that never wrapped).
fn figure(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "-".into()
    }
}

/// The markdown table, then the targets.
pub fn table(samples: &[(Variant, Vec<Sample>)], rate: f64, how: &str) -> String {
    let med = medians(samples);
    let of = |v: Variant| med.iter().find(|(w, _)| *w == v).map(|(_, s)| *s);
    let mut out = String::new();
    let _ = writeln!(out, "\nMachine: {}. {how}.\n", machine());
    let _ = writeln!(
        out,
        "| variant | req/s at saturation | CPU µs/req at saturation | CPU µs/req at {rate:.0} req/s | p50 µs | p99 µs | p99.9 µs | recorded B/req | ring reaches back s |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (v, s) in &med {
        let vs = |f: fn(&Sample) -> f64| match paired(samples, *v, v.baseline(), f) {
            Some(r) if v.baseline() != *v => format!(" ({r:.2}×)"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0}{} | {:.1}{} | {:.1}{} | {:.0} | {:.0}{} | {:.0} | {} | {} |",
            v.name(),
            s.requests_per_s,
            vs(|s| s.requests_per_s),
            s.cpu_us_saturated,
            vs(|s| s.cpu_us_saturated),
            s.cpu_us_fixed,
            vs(|s| s.cpu_us_fixed),
            s.p50_us,
            s.p99_us,
            vs(|s| s.p99_us),
            s.p999_us,
            figure(s.recorded_bytes_per_request, 0),
            figure(s.ring_reach_s, 2),
        );
    }
    let _ = writeln!(
        out,
        "\nFigures: medians over the rounds. ×: the median over rounds of each round's ratio to `none` \
         (`flightrec+tokio` and `dial9`: to `none-unstable`, built as they are with --cfg tokio_unstable). \
         Recorded B/req: at saturation, flightrec's records per request at its ring's bytes per \
         record, dial9's trace files' growth per request. Ring reaches back: how many seconds of \
         the busiest thread the default ring held right after saturation."
    );
    for (v, s) in &med {
        if s.history_holds_s.is_finite() {
            let _ = writeln!(
                out,
                "\n`{}`: at saturation its history grew at a rate that {} MiB of disk holds for \
                 {:.0} s; its CPU budget left out {:.1}% of the chunks; its thread added {:.1}% to \
                 the CPU time of the rest of the process. At {:.0} req/s the same disk holds {:.0} s.",
                v.name(),
                crate::HISTORY_BYTES >> 20,
                s.history_holds_s,
                100.0 * s.history_skipped,
                100.0 * s.history_cpu_share,
                rate,
                s.history_holds_s_fixed
            );
        }
    }
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
        let ratio = |f: fn(&Sample) -> f64| {
            paired(samples, Variant::Flightrec, Variant::None, f).unwrap_or(f64::NAN)
        };
        let cases: [(&str, Figure); 2] = [
            ("at saturation", |s| s.cpu_us_saturated),
            ("at the fixed rate", |s| s.cpu_us_fixed),
        ];
        for (label, f) in cases {
            let r = ratio(f);
            target(
                r <= 1.10,
                format!("CPU per request {label} {r:.3}× none's (at most 1.10×)"),
            );
            let share = share_of_fmts(samples, f).unwrap_or(f64::NAN);
            target(
                share <= 0.5,
                format!(
                    "CPU added per request {label}: {:.0}% of what fmt adds (at most 50%; medians {:+.2} µs against {:+.2} µs)",
                    100.0 * share,
                    f(&fr) - f(&none),
                    f(&fmt) - f(&none)
                ),
            );
        }
        let r = ratio(|s| s.requests_per_s);
        target(
            r >= 0.95,
            format!("throughput {r:.3}× none's (at least 0.95×)"),
        );
        let r = ratio(|s| s.p99_us);
        target(r <= 1.10, format!("p99 {r:.3}× none's (at most 1.10×)"));
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
            recorded_bytes_per_request: f64::NAN,
            ring_reach_s: f64::NAN,
            history_holds_s: f64::NAN,
            history_skipped: f64::NAN,
            history_holds_s_fixed: f64::NAN,
            history_cpu_share: f64::NAN,
        }
    }

    #[test]
    fn ratios_are_paired_by_round_against_the_right_baseline_and_targets_judged() {
        let samples = vec![
            (
                Variant::None,
                vec![
                    sample(10_000.0, 20.0, 100.0),
                    sample(5_000.0, 40.0, 300.0),
                    sample(11_000.0, 21.0, 200.0),
                ],
            ),
            (
                Variant::Fmt,
                vec![
                    sample(8_000.0, 30.0, 300.0),
                    sample(4_000.0, 60.0, 300.0),
                    sample(9_000.0, 31.0, 300.0),
                ],
            ),
            // Each round 0.96× none's throughput, 1.05× its CPU, and p99 1.2×, 1.0×, 1.15×.
            (
                Variant::Flightrec,
                vec![
                    sample(9_600.0, 21.0, 120.0),
                    sample(4_800.0, 42.0, 300.0),
                    sample(10_560.0, 22.05, 230.0),
                ],
            ),
            (
                Variant::FlightrecHistory,
                vec![Sample {
                    history_holds_s: 95.4,
                    history_skipped: 0.012,
                    history_holds_s_fixed: 512.3,
                    history_cpu_share: 0.043,
                    ..sample(9_000.0, 23.0, 120.0)
                }],
            ),
            (Variant::NoneUnstable, vec![sample(5_000.0, 40.0, 100.0)]),
            (
                Variant::FlightrecTokio,
                vec![Sample {
                    recorded_bytes_per_request: 640.4,
                    ring_reach_s: 0.172,
                    ..sample(2_500.0, 80.0, 400.0)
                }],
            ),
        ];
        let t = table(&samples, 4000.0, "test");
        // none's medians: 10 000 req/s, 21 µs, p99 200.
        assert!(
            t.contains("| none | 10000 | 21.0 | 21.0 | 100 | 200 | 400 | - | - |"),
            "{t}"
        );
        // Paired by round, the round where the machine ran at half speed cancels out: the
        // ratio of the medians (9 600 / 10 000) would say 0.96 too, but CPU 22.05 / 21
        // would say 1.05 only by luck; p99's median ratio is 1.15, its ratio of medians 1.15.
        assert!(
            t.contains("| flightrec | 9600 (0.96×) | 22.1 (1.05×)"),
            "{t}"
        );
        assert!(
            t.contains("`flightrec+history`: at saturation its history grew at a rate that 256 MiB of disk holds for 95 s; its CPU budget left out 1.2% of the chunks; its thread added 4.3% to the CPU time of the rest of the process. At 4000 req/s the same disk holds 512 s."),
            "{t}"
        );
        // The task hooks against none-unstable, not none.
        assert!(
            t.contains("| flightrec+tokio | 2500 (0.50×) | 80.0 (2.00×)"),
            "{t}"
        );
        // What it recorded and how far back its ring reached; nothing for what records none.
        assert!(t.contains("| 640 | 0.17 |\n"), "{t}");
        assert!(
            t.contains("- holds: CPU per request at saturation 1.050× none's"),
            "{t}"
        );
        // Added: 1 of fmt's 10, 2 of 20, 4.2 of 10: a median share of 10%.
        assert!(
            t.contains("- holds: CPU added per request at saturation: 10% of what fmt adds"),
            "{t}"
        );
        assert!(t.contains("- holds: throughput 0.960×"), "{t}");
        assert!(t.contains("- MISSED: p99 1.150×"), "{t}");
    }
}
