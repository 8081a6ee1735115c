//! The README's "Use it" snippet, compiled and run: the code below between the markers is
//! the README's block, character for character (a test checks), and a service built from it
//! stays quiet on stdout while its threads record at full speed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const RUN: &str = "FLIGHTREC_README_RUN";

/// Child: the README snippet, then 4 threads logging as fast as they can for 2 s, mostly
/// at TRACE and DEBUG (what the recorder keeps and the console should not print).
#[test]
#[ignore = "child process of the README test"]
fn readme_snippet_service() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(RUN).is_none() {
        return Ok(());
    }
    // README: Use it
    use tracing_subscriber::prelude::*;

    let recorder = flightrec::Recorder::builder()
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

    let dump: std::path::PathBuf = recorder.snapshot()?; // write a dump now; writers keep going
                                                         // README: end
    assert!(dump.exists());
    let until = Instant::now() + Duration::from_secs(2);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                tracing::info!(t, "worker started");
                let mut n = 0u64;
                while Instant::now() < until {
                    for _ in 0..1000 {
                        let span = tracing::trace_span!("order", sku = n % 64);
                        let _e = span.enter();
                        tracing::trace!(n, "cache lookup");
                        tracing::debug!(n, hit = n.is_multiple_of(3), "priced");
                        n += 1;
                    }
                }
                tracing::info!(t, n, "worker done");
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    tracing::info!(total, "all workers done");
    Ok(())
}

/// The snippet as written between the markers of this file, indentation removed.
fn snippet_in_this_file() -> String {
    let src = include_str!("readme.rs");
    let start = src.find("// README: Use it\n").unwrap() + "// README: Use it\n".len();
    let end = src.find("    // README: end").unwrap();
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
    assert!(text.contains("all workers done"), "{text}");
    assert!(!text.contains("TRACE") && !text.contains("DEBUG"));
    assert!(
        stdout.len() < 1 << 20,
        "{} bytes on stdout in 2 s",
        stdout.len()
    );
    // The recorder kept what the console did not print: the dump taken at start holds the
    // snippet's records, and the workers wrote millions more into the ring.
    assert_eq!(dumps_in(dir.path()).len(), 1);
    let total: u64 = text
        .lines()
        .find(|l| l.contains("all workers done"))
        .and_then(|l| l.split("total=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("the total in the last line");
    assert!(total > 10_000, "{total} orders in 2 s");
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
