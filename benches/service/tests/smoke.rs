//! The benchmark's harness end to end, briefly, on the variants of the plain build (the
//! others need builds of their own, which `scripts/service-bench.sh` makes): every server
//! starts, answers, reports its CPU time, and stops, and the table has a row for each.
//! Nothing here judges a figure: a loaded machine changes them, not the table's shape.

use std::process::Command;

#[test]
fn one_short_round_prints_a_row_per_variant_and_the_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_flightrec-service-bench"))
        .args([
            "--variants",
            "none,registry,fmt,flightrec,flightrec+fmt",
            "--rounds",
            "1",
            "--seconds",
            "0.3",
            "--connections",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for variant in ["none", "registry", "fmt", "flightrec", "flightrec+fmt"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("no row for {variant}:\n{stdout}"));
        // Nine columns, every cost a number: requests were served and CPU was read.
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 9, "{row}");
        let figure =
            |cell: &str| -> f64 { cell.split(' ').next().unwrap().parse().unwrap_or(f64::NAN) };
        for cell in &cells[1..7] {
            assert!(figure(cell) > 0.0, "{row}");
        }
        // What it recorded per request: a number for flightrec (read from its ring), none
        // for the variants that record nothing.
        if variant.starts_with("flightrec") {
            assert!(figure(cells[7]) > 0.0, "{row}");
        } else {
            assert_eq!(cells[7], "-", "{row}");
        }
    }
    assert!(
        stdout.contains("Targets, flightrec against none and fmt"),
        "{stdout}"
    );
}

#[test]
fn a_variant_without_its_build_is_one_clear_line_not_a_panic() {
    let out = Command::new(env!("CARGO_BIN_EXE_flightrec-service-bench"))
        .args(["--variants", "console", "--rounds", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("console variant needs its own build"),
        "{stderr}"
    );
}
