//! `flightrec snapshot PID`: send the process its snapshot signal, wait for the new dump to
//! appear in its dump directory, print its path. Both come from the ring's header, found
//! through `/proc/PID/maps`; a signal the recorder does not listen for is never sent (it
//! could kill the process).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn run(
    pid: i32,
    signal: Option<&str>,
    timeout: f64,
    stacks: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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
    let settings = flightrec_format::ring_settings(&ring)
        .with_context(|| format!("cannot read the ring of pid {pid}, {}", ring.display()))?;
    let asked = signal.map(parse_signal).transpose()?;
    let sig = match (settings.snapshot_signal, asked) {
        (Some(None), _) => bail!(
            "process {pid}'s recorder listens for no snapshot signal (snapshot_signal(None) or FLIGHTREC_SIGNAL=off); nothing sent"
        ),
        (Some(Some(n)), asked) => {
            let listens = Signal::try_from(n)
                .map_err(|_| anyhow!("process {pid}'s recorder listens for signal {n}, which this system does not know"))?;
            if let Some(asked) = asked.filter(|&a| a != listens) {
                bail!(
                    "process {pid}'s recorder takes snapshots on {listens}, not {asked}; refusing to send {asked}, which could kill it (leave out --signal)"
                );
            }
            listens
        }
        // Written by a recorder too old to record its signal: trust the user.
        (None, asked) => asked.unwrap_or(Signal::SIGUSR1),
    };
    let ring_dir = ring.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dir = settings.dump_dir.unwrap_or(ring_dir);
    let marker = format!("-{pid}-");
    let before = dumps(&dir, &marker);
    if stacks {
        ask_for_stacks(&ring).with_context(|| format!("pid {pid}"))?;
    }
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
                "no dump from pid {pid} in {} after {timeout} s (see --timeout)",
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

/// Sets the ring header's flag that makes the next snapshot capture every thread's stack.
fn ask_for_stacks(ring: &Path) -> anyhow::Result<()> {
    use flightrec_format::layout::{get_u32, header, HEADER_SIZE};
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ring)
        .with_context(|| format!("cannot open its ring {} to ask for stacks", ring.display()))?;
    let mut head = vec![0u8; HEADER_SIZE];
    f.read_exact_at(&mut head, 0)
        .with_context(|| format!("cannot read its ring {}", ring.display()))?;
    if get_u32(&head, header::STACK_SLOTS).unwrap_or(0) == 0 {
        bail!("its recorder keeps no native stacks (stack_slots(0), or an older flightrec); leave out --stacks");
    }
    // The header word is 8-aligned and the writer reads it atomically; an aligned 8-byte
    // write through the page cache lands whole in its shared mapping.
    f.write_all_at(&1u64.to_le_bytes(), header::STACKS_WANTED as u64)
        .with_context(|| format!("cannot write its ring {}", ring.display()))?;
    Ok(())
}
