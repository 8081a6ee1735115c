//! The README's "Use it" snippet, compiled and run: the module below between the markers is
//! the README's block, character for character (a test checks), so it compiles as pasted
//! into a crate with the dependencies Install lists. A service built from it stays quiet on
//! stdout while its threads record at full speed, and its recording is kept with
//! `FLIGHTREC_KEEP=1`.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::helpers::*;

const RUN: &str = "FLIGHTREC_README_RUN";

#[rustfmt::skip]
mod snippet {
// README: Use it
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = tracing_flightrec::Recorder::builder()
        .service("checkout") // default: the executable's name
        .capacity(64 << 20) // bytes in the ring; default 16 MiB
        .build()?; // ring and dumps: where FLIGHTREC_DIR says, or the defaults below
    tracing_subscriber::registry()
        .with(recorder.layer()) // records everything, TRACE included
        .with(
            tracing_subscriber::fmt::layer() // prints INFO and above, as init() does
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .init();
    serve(); // a panic, a crash, a stall or `kill -USR1 <pid>` now dumps the ring
    Ok(())
}

/// Your service: here, four workers pricing 20 000 orders each.
fn serve() {
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            std::thread::spawn(move || {
                for order in 0..20_000u64 {
                    let span = tracing::info_span!("order", worker, order);
                    let _entered = span.enter();
                    tracing::debug!(sku = order % 64, "priced"); // recorded, not printed
                }
                tracing::info!(worker, orders = 20_000, "worker done");
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
// README: end

    pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
        main()
    }
}

/// Child: the README's `main`, as a service would run it.
#[test]
#[ignore = "child process of the README test"]
fn readme_snippet_service() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(RUN).is_none() {
        return Ok(());
    }
    snippet::run()
}

/// The snippet as written between the markers of this file, indentation removed.
fn snippet_in_this_file() -> String {
    let src = include_str!("readme.rs");
    let start = src.find("// README: Use it\n").unwrap() + "// README: Use it\n".len();
    let end = src.find("\n// README: end").unwrap() + 1;
    let lines: Vec<&str> = src[start..end].lines().collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

/// The README's first rust block under "## Use it".
fn snippet_in_readme() -> String {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Use it").expect("a Use it section")..];
    let start = section.find("```rust\n").unwrap() + "```rust\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].trim_end().to_string()
}

#[test]
fn the_readme_snippet_is_the_code_this_test_runs() {
    assert_eq!(snippet_in_readme(), snippet_in_this_file());
}

#[test]
fn the_readme_snippet_does_not_flood_stdout_while_threads_record_at_full_speed() {
    let dir = scratch();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "readme::readme_snippet_service",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RUN, "1")
        .env("NO_COLOR", "1")
        .env("FLIGHTREC_DIR", dir.path())
        .env("FLIGHTREC_KEEP", "1")
        .env_remove("FLIGHTREC_DUMP_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&stdout);
    assert!(status.success(), "{status:?}: {text}");
    assert_eq!(text.matches("worker done").count(), 4, "{text}");
    assert!(!text.contains("TRACE") && !text.contains("DEBUG"));
    assert!(stdout.len() < 1 << 20, "{} bytes on stdout", stdout.len());
    // The recorder kept what the console did not print: the recording, kept at exit, holds
    // every one of the workers' 80 000 orders (the 64 MiB ring never wrapped).
    let dumps = dumps_in(dir.path());
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let mut priced = 0u64;
    cat_json_each(&dumps[0], |r| {
        if r["fields"]["message"] == "priced" {
            priced += 1;
        }
    });
    assert_eq!(priced, 80_000, "priced records kept");
}

/// The README speaks to its reader: no reference to our issue tracker or work sessions,
/// which mean nothing outside the team.
#[test]
fn the_readme_makes_no_internal_references() {
    let readme = include_str!("../../README.md").to_lowercase();
    for word in ["issue", "session"] {
        for (at, _) in readme.match_indices(word) {
            let after = readme[at + word.len()..].trim_start_matches(['s', ' ', '\'']);
            assert!(
                !after.starts_with(|c: char| c.is_ascii_digit()),
                "an internal reference: {:?}",
                &readme[at..(at + 40).min(readme.len())]
            );
        }
    }
}

/// The README reads in ten minutes (at most 300 lines), and each crate has a short README
/// of its own: the crates' pages do not repeat the workspace's.
#[test]
fn the_readme_is_short_and_each_crate_has_its_own() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.lines().count() <= 300,
        "{} lines",
        readme.lines().count()
    );
    for dir in [
        "crates/tracing-flightrec",
        "crates/flightrec-format",
        "crates/flightrec-analysis",
        "agent",
        "viewer",
    ] {
        let path = repo().join(format!("{dir}/README.md"));
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(!meta.file_type().is_symlink(), "{}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().count() <= 60, "{}", path.display());
        assert_ne!(text, readme);
    }
}

/// Install's commands pin the lockfile (`--locked`: the versions CI tested, not 289
/// re-resolved packages), and the release profile strips debug info, so the installed
/// binary is not bloated with it (the standard library's included).
#[test]
fn install_is_locked_and_the_release_profile_strips_debug_info() {
    let readme = include_str!("../../README.md");
    let installs: Vec<&str> = readme
        .lines()
        .filter(|l| l.contains("cargo install"))
        .collect();
    assert!(!installs.is_empty());
    for l in installs {
        assert!(l.contains("--locked"), "{l}");
    }
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let release = manifest
        .split("\n[")
        .find(|s| s.starts_with("profile.release]"))
        .expect("a [profile.release] section");
    let settings: Vec<&str> = release
        .lines()
        .filter(|l| l.starts_with("debug") || l.starts_with("strip"))
        .collect();
    assert_eq!(settings, ["strip = \"debuginfo\""], "{release}");
}
