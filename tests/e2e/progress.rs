//! Progress on long reads: on a terminal, `info` and `check` say which step a read is in,
//! with a bar over the records while they decode; piped, they write nothing of it, and a
//! small recording reads without a line.

use std::path::Path;
use std::process::Command;

use tracing::info;

use crate::helpers::*;

/// A small dump: a few records.
fn small_dump(dir: &Path) -> std::path::PathBuf {
    let rec = recorder(dir, "progress", 1 << 20);
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || {
        for n in 0..100u64 {
            info!(n, "working");
        }
    });
    rec.snapshot().unwrap()
}

/// `flightrec ARGS` run on a pseudo-terminal (util-linux's `script`), `always` forcing the
/// progress line whatever the input's size; what the terminal showed. `None` when there is
/// no `script` here.
fn on_a_terminal(args: &[&str], always: bool) -> Option<String> {
    let command = std::iter::once(flightrec_bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script.args(["-qec", &format!("{command} > /dev/null"), "/dev/null"]);
    if always {
        script.env("FLIGHTREC_PROGRESS_ALWAYS", "1");
    }
    let out = script.output().ok()?;
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_read_shows_its_steps_on_a_terminal_and_nothing_when_piped() {
    let dir = scratch();
    let dump = small_dump(dir.path());
    let path = dump.to_str().unwrap();
    for command in ["info", "check"] {
        let Some(shown) = on_a_terminal(&[command, path], true) else {
            not_run("no `script` (util-linux) to give the command a terminal");
            return;
        };
        assert!(shown.contains("decoding records"), "{command}: {shown:?}");
        assert!(shown.contains("finding bugs"), "{command}: {shown:?}");
        // A small input reads without a line.
        let quiet = on_a_terminal(&[command, path], false).unwrap();
        assert!(!quiet.contains("decoding"), "{command}: {quiet:?}");
        // Piped: stderr holds nothing of it, even when forced.
        let out = Command::new(flightrec_bin())
            .args([command, path])
            .env("FLIGHTREC_PROGRESS_ALWAYS", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("decoding") && !err.contains('\u{1b}'),
            "{command}: {err:?}"
        );
    }
}
