//! `flightrec snapshot PID`: send the process its snapshot signal, wait for the new dump to
//! appear beside its ring file, print its path.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn run(pid: i32, signal: &str, timeout: f64, out: &mut impl Write) -> anyhow::Result<()> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if pid <= 0 || !proc_dir.exists() {
        bail!("no process with pid {pid}");
    }
    let maps = std::fs::read_to_string(proc_dir.join("maps"))
        .with_context(|| format!("cannot read the memory map of pid {pid} (is it yours?)"))?;
    let ring = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with(".flightrec-ring"))
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow!("process {pid} has no flightrec recorder (no ring file is mapped)")
        })?;
    let dir = ring.parent().unwrap_or(Path::new(".")).to_path_buf();
    let marker = format!("-{pid}-");
    let before = dumps(&dir, &marker);
    let sig = parse_signal(signal)?;
    kill(Pid::from_raw(pid), sig).with_context(|| format!("cannot send {sig} to pid {pid}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
    loop {
        if let Some(new) = dumps(&dir, &marker).difference(&before).next() {
            writeln!(out, "{}", dir.join(new).display())?;
            return Ok(());
        }
        if !proc_dir.exists() {
            bail!("process {pid} exited before writing a dump");
        }
        if Instant::now() > deadline {
            bail!(
                "no dump from pid {pid} in {}: its recorder may not listen for {sig} (see --signal)",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Complete dumps of the process in `dir` (temporary files start with a dot).
fn dumps(dir: &Path, marker: &str) -> HashSet<OsString> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| {
            let s = n.to_string_lossy();
            !s.starts_with('.') && s.ends_with(".flightrec") && s.contains(marker)
        })
        .collect()
}

fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    let name = s.trim().to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow!("unknown signal {s:?} (try USR1 or USR2)"))
}
