//! Setting a recorder up: `Builder`, `Recorder` and `init`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flightrec_format::layout::Geometry;
use flightrec_format::meta::{MetaBuilder, ProcessInfo};
use flightrec_format::TriggerReason;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::callsites::CallsiteTable;
use crate::defaults::{
    default_service, dump_dir_in, hostname, parse_size, ring_dir_in, test_binary_name,
};
use crate::env::Env;
use crate::error::Error;
use crate::layer::FlightrecLayer;
use crate::ring::writer::os_tid;
use crate::ring::{clock, Ring};
use crate::shared::Shared;
use crate::trigger::signal::Dumper;
use crate::trigger::stall::Watchdog;

/// Default ring capacity: 16 MiB.
pub const DEFAULT_CAPACITY: u64 = 16 << 20;
/// Native-stack capture slots in a ring unless `Builder::stack_slots` says otherwise.
pub const DEFAULT_STACK_SLOTS: u32 = 16;
/// Retention: dumps of a service kept per trigger unless `Builder::keep_dumps` says
/// otherwise.
pub const DEFAULT_KEEP_DUMPS: usize = flightrec_format::retention::DEFAULT_QUOTA.keep_per_trigger;
/// Retention: bytes a service's dumps may take unless `Builder::dump_budget` says otherwise.
pub const DEFAULT_DUMP_BUDGET: u64 = flightrec_format::retention::DEFAULT_QUOTA.max_bytes;
/// How long a thread may sit in a span without a record before the watchdog dumps.
pub const DEFAULT_STALL_THRESHOLD: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a process may run on after a stop signal before the stop is forgotten.
pub const DEFAULT_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// The snapshot signal unless `Builder::snapshot_signal` says otherwise: SIGUSR1.
pub const DEFAULT_SNAPSHOT_SIGNAL: i32 = signal_hook::consts::SIGUSR1;
/// The smallest ring: 256 KiB.
pub const MIN_CAPACITY: u64 = 256 << 10;
/// Chunk sizes `Builder::chunk_size` accepts: 1 KiB to 64 KiB.
pub const CHUNK_SIZES: std::ops::RangeInclusive<u32> = 1024..=65536;

/// Configures a `Recorder`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    service: Option<String>,
    dir: Option<PathBuf>,
    dump_dir: Option<PathBuf>,
    capacity: Option<u64>,
    /// History on disk, at most this many bytes; `None` or 0: none.
    history: Option<u64>,
    chunk_size: Option<u32>,
    /// `None`: the default (SIGUSR1); `Some(None)`: no snapshot signal.
    snapshot_signal: Option<Option<i32>>,
    no_panic_hook: bool,
    no_crash_handler: bool,
    no_collect: bool,
    /// `None`: the default (5 s); `Some(None)`: no watchdog.
    stall_threshold: Option<Option<std::time::Duration>>,
    keep_dumps: Option<usize>,
    dump_budget: Option<u64>,
    /// `None`: the default (`DEFAULT_STACK_SLOTS`).
    stack_slots: Option<u32>,
    stacks_on_snapshot: bool,
    host: Option<String>,
    keep_ring: bool,
    keep_on_exit: bool,
    no_stop_signals: bool,
    stop_grace: Option<std::time::Duration>,
    no_announce: bool,
}

impl Builder {
    /// The host name written into the ring (and so into dumps, upload keys and the
    /// viewer). Default: the machine's hostname. For a container whose hostname says
    /// nothing, or several instances simulated on one machine. Also `FLIGHTREC_HOST`.
    pub fn host(mut self, name: impl Into<String>) -> Self {
        self.host = Some(name.into());
        self
    }

    /// The service name, written into the ring and used in file names. Default: the
    /// executable's file name.
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Where the ring file and dumps go (dumps can be sent elsewhere with `dump_dir`).
    /// Default for the ring: `$FLIGHTREC_DIR`, else `$XDG_RUNTIME_DIR/flightrec`, else
    /// `/dev/shm/flightrec-$USER` (tmpfs: no disk writeback, survives the process), else
    /// the system temp directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Where dumps go. Default: `$FLIGHTREC_DUMP_DIR`, else the directory given to
    /// `dir` (or `$FLIGHTREC_DIR`), else a persistent one that survives a reboot:
    /// `$XDG_STATE_HOME/flightrec`, else `/var/tmp/flightrec-$USER`.
    pub fn dump_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dump_dir = Some(dir.into());
        self
    }

    /// Size of the ring file in bytes. Default 16 MiB.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// Keeps a history on disk beside the ring (`<ring file>.history`), at most `bytes`
    /// of it (0: none, the default): each chunk the writers give up is compressed there in
    /// the background, so a recording reaches back minutes where the ring holds seconds. A
    /// dead process's ring is collected with it, and a reader of the ring file reads it
    /// too. It adds at most 5% to the CPU the process uses: when compressing falls behind,
    /// chunks are left out and counted (`flightrec info`), never waited for. Also set by
    /// `FLIGHTREC_HISTORY` (a size, such as `256M`) in `from_env`.
    pub fn history(mut self, bytes: u64) -> Self {
        self.history = Some(bytes);
        self
    }

    /// Size of the chunks threads claim (1 KiB to 64 KiB). Default: capacity / 1024,
    /// clamped to 4..=64 KiB.
    pub fn chunk_size(mut self, bytes: u32) -> Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// The signal that makes a dump (default SIGUSR1, as `kill -USR1 <pid>` sends);
    /// `None` for an application that owns SIGUSR1 itself.
    pub fn snapshot_signal(mut self, signal: Option<i32>) -> Self {
        self.snapshot_signal = Some(signal);
        self
    }

    /// Whether to chain a panic hook that records the panic and writes a dump
    /// (default: yes).
    pub fn panic_hook(mut self, install: bool) -> Self {
        self.no_panic_hook = !install;
        self
    }

    /// Whether to mark the ring when the process dies of SIGSEGV, SIGBUS, SIGILL, SIGFPE,
    /// SIGABRT or SIGTRAP (default: yes). The handler restores the previous one and
    /// re-raises, so the process still dies of that signal.
    pub fn crash_handler(mut self, install: bool) -> Self {
        self.no_crash_handler = !install;
        self
    }

    /// Retention: how many of the service's dumps to keep in the directory for each trigger
    /// (crash, panic, stall, snapshot, ...), newest first (default 20): a burst of
    /// snapshots never pushes out a crash. The newest of each trigger is always kept.
    pub fn keep_dumps(mut self, n: usize) -> Self {
        self.keep_dumps = Some(n);
        self
    }

    /// Retention: the most bytes the service's dumps may take in the directory
    /// (default 512 MiB). Over it, snapshots go first, then stalls, and the evidence of a
    /// death (crash, panic, killed) last; the newest of each trigger is always kept.
    pub fn dump_budget(mut self, bytes: u64) -> Self {
        self.dump_budget = Some(bytes);
        self
    }

    /// How long a thread may stay inside a span without writing a record before the
    /// stall watchdog dumps (default 5 s); `None` turns the watchdog off.
    pub fn stall_threshold(mut self, threshold: Option<std::time::Duration>) -> Self {
        self.stall_threshold = Some(threshold);
        self
    }

    /// Whether to keep the ring file when the process ends cleanly (default: no, a clean
    /// exit removes it, since it holds no evidence and takes RAM on tmpfs). Kept, it is
    /// marked closed, `flightrec info` says how the process ended, and the next start
    /// removes it quietly. Also `FLIGHTREC_KEEP_RING=1`.
    pub fn keep_ring(mut self, keep: bool) -> Self {
        self.keep_ring = keep;
        self
    }

    /// Whether a recording that ends cleanly (the recorder dropped, or the process exiting)
    /// is kept as a dump with trigger `exit` (default: no). For checking a run that went
    /// well: `FLIGHTREC_KEEP=1 cargo test`, then `flightrec check DIR` names the lock-order
    /// inversions and blocking polls it recorded. Also `FLIGHTREC_KEEP=1`.
    pub fn keep_on_exit(mut self, keep: bool) -> Self {
        self.keep_on_exit = keep;
        self
    }

    /// Whether to record SIGTERM, SIGINT and SIGHUP in the ring before handing them on
    /// (default: yes). A process stopped by one of them did not die: its ring is removed
    /// quietly instead of being collected as a death. The application's own handlers
    /// and the default action run as they would without the recorder.
    pub fn stop_signals(mut self, record: bool) -> Self {
        self.no_stop_signals = !record;
        self
    }

    /// How long a process may go on running after a stop signal before the stop is
    /// forgotten (default 30 s): it handled the signal and carried on (a SIGHUP that
    /// reloads its configuration, a shutdown that hangs), so a later death is collected
    /// as one. Checked by the stall watchdog's thread; with the watchdog off, a stop is
    /// never forgotten.
    pub fn stop_grace(mut self, grace: std::time::Duration) -> Self {
        self.stop_grace = Some(grace);
        self
    }

    /// Whether each dump (and each ring of a dead process collected at start) is announced
    /// with one line on stderr, `flightrec: panic dump written to PATH` (default: yes).
    /// `FLIGHTREC_ANNOUNCE=0` also turns it off.
    pub fn announce_dumps(mut self, announce: bool) -> Self {
        self.no_announce = !announce;
        self
    }

    /// Whether to turn rings left in the directory by dead processes into dumps at
    /// start (default: yes). See `Recorder::collected`.
    pub fn collect_dead_rings(mut self, collect: bool) -> Self {
        self.no_collect = !collect;
        self
    }

    /// A builder configured from `FLIGHTREC_SERVICE`, `FLIGHTREC_HOST`, `FLIGHTREC_DIR`,
    /// `FLIGHTREC_DUMP_DIR`,
    /// `FLIGHTREC_SIGNAL` (`USR1`, `USR2`, a number, or `off`) and
    /// `FLIGHTREC_CAPACITY` (bytes, or with a K/M/G suffix).
    pub fn from_env() -> Result<Builder, Error> {
        Builder::from_vars(&Env::read())
    }

    /// As `from_env`, from variables already read.
    fn from_vars(env: &Env) -> Result<Builder, Error> {
        let mut b = Builder::default();
        if let Some(s) = &env.service {
            b = b.service(s);
        }
        if let Some(h) = &env.host {
            b = b.host(h);
        }
        if let Some(d) = &env.dir {
            b = b.dir(d);
        }
        if let Some(d) = &env.dump_dir {
            b = b.dump_dir(d);
        }
        if env.keep_ring {
            b = b.keep_ring(true);
        }
        let size = |var: &'static str, value: &String, example: &str| {
            parse_size(value).ok_or_else(|| Error::Env {
                var,
                value: value.clone(),
                why: format!("expected a size such as {example}"),
            })
        };
        if let Some(c) = &env.capacity {
            b = b.capacity(size("FLIGHTREC_CAPACITY", c, "16777216, 16M or 1G")?);
        }
        if let Some(h) = &env.history {
            let example = "268435456, 256M or 1G (0 for none)";
            b = b.history(size("FLIGHTREC_HISTORY", h, example)?);
        }
        if let Some(v) = &env.signal {
            let sig = match v
                .trim()
                .trim_start_matches("SIG")
                .to_ascii_uppercase()
                .as_str()
            {
                "OFF" | "NONE" | "" => None,
                "USR1" => Some(signal_hook::consts::SIGUSR1),
                "USR2" => Some(signal_hook::consts::SIGUSR2),
                n => Some(n.parse::<i32>().map_err(|_| Error::Env {
                    var: "FLIGHTREC_SIGNAL",
                    value: v.clone(),
                    why: "expected USR1, USR2, a signal number, or off".into(),
                })?),
            };
            b = b.snapshot_signal(sig);
        }
        Ok(b)
    }

    /// How many threads' native stacks one dump can hold (64 KiB of stack each, in the
    /// ring file after the chunks: 16 slots add 1.1 MiB to it, reserved and mapped up
    /// front like the rest).
    /// Default 16; 0 turns stack capture off. Stalled threads' stacks go into stall
    /// dumps, a crashing thread's into its crash dump.
    pub fn stack_slots(mut self, slots: u32) -> Self {
        self.stack_slots = Some(slots);
        self
    }

    /// Snapshots (the snapshot signal) capture every thread's native stack. Also set by
    /// `FLIGHTREC_STACKS=1` in `from_env`.
    pub fn stacks_on_snapshot(mut self, yes: bool) -> Self {
        self.stacks_on_snapshot = yes;
        self
    }

    /// Creates the ring file and returns the recorder.
    pub fn build(self) -> Result<Recorder, Error> {
        let env = Env::read();
        let capacity = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        if !(MIN_CAPACITY..=flightrec_format::layout::MAX_FILE_SIZE).contains(&capacity) {
            return Err(Error::Capacity { capacity });
        }
        let history = self.history.filter(|&h| h != 0);
        if let Some(bytes) = history.filter(|&h| h < crate::history::MIN_HISTORY) {
            return Err(Error::HistorySize { bytes });
        }
        if let Some(c) = self.chunk_size {
            if !CHUNK_SIZES.contains(&c) {
                return Err(Error::ChunkSize(c));
            }
        }
        let geometry = Geometry::for_capacity(capacity, self.chunk_size)
            .ok_or(Error::Capacity { capacity })?
            .with_stack_slots(self.stack_slots.unwrap_or(DEFAULT_STACK_SLOTS));
        let service = self.service.unwrap_or_else(default_service);
        let dump_dir = self
            .dump_dir
            .or_else(|| self.dir.clone())
            .unwrap_or_else(|| dump_dir_in(&env));
        let dir = self.dir.unwrap_or_else(|| ring_dir_in(&env));
        for d in [&dir, &dump_dir] {
            std::fs::create_dir_all(d).map_err(|source| Error::CreateDir {
                path: d.clone(),
                source,
            })?;
        }
        let pid = std::process::id();
        // Before our ring exists: a dead process's ring must be dumped, not replaced.
        let quota = flightrec_format::retention::Quota {
            keep_per_trigger: self.keep_dumps.unwrap_or(DEFAULT_KEEP_DUMPS),
            max_bytes: self.dump_budget.unwrap_or(DEFAULT_DUMP_BUDGET),
        };
        let (collected, pruned) = if self.no_collect {
            Default::default()
        } else {
            crate::trigger::collect_dead_rings(&dir, &dump_dir, quota)
        };
        let collected: Vec<PathBuf> = collected
            .into_iter()
            .filter(|d| !pruned.contains(d))
            .collect();
        let announce = !self.no_announce && !env.no_announce;
        if announce {
            for dump in &collected {
                crate::ring::write_stderr(&format!(
                    "flightrec: the ring of a process that died without a dump collected into {}\n",
                    dump.display()
                ));
            }
            crate::shared::announce_pruned(&pruned);
        }
        let path = dir.join(format!(
            "{}-{pid}.flightrec-ring",
            flightrec_format::dump::sanitize(&service)
        ));
        let anchor = clock::calibrate();
        let ring =
            Ring::create(&path, geometry, pid, &anchor).map_err(|source| Error::CreateRing {
                path: path.clone(),
                source,
            })?;
        let mut meta = MetaBuilder::default();
        meta.process(&ProcessInfo {
            pid,
            service: service.clone(),
            host: self.host.clone().unwrap_or_else(|| hostname(&env)),
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            args: std::env::args().collect(),
        });
        ring.append_meta(&meta.bytes);
        let callsites = CallsiteTable::new();
        let dump_failed = callsites.synthetic(
            &ring,
            flightrec_format::Callsite {
                id: 0,
                is_span: false,
                level: flightrec_format::Level::Error,
                target: "flightrec".into(),
                name: "dump failed".into(),
                file: Some(file!().into()),
                line: None,
                module: Some(module_path!().into()),
                fields: vec!["message".into(), "error".into(), "reason".into()],
            },
        );
        ring.remove_when_closed
            .store(!self.keep_ring, std::sync::atomic::Ordering::Relaxed);
        let trigger_folded = callsites.synthetic(
            &ring,
            flightrec_format::Callsite {
                id: 0,
                is_span: false,
                level: flightrec_format::Level::Warn,
                target: "flightrec".into(),
                name: flightrec_format::TRIGGER_FOLDED.into(),
                file: Some(file!().into()),
                line: None,
                module: Some(module_path!().into()),
                fields: vec![
                    "message".into(),
                    "trigger".into(),
                    "reason".into(),
                    "tid".into(),
                    "at".into(),
                ],
            },
        );
        let ring = Arc::new(ring);
        crate::ring::close_at_exit(&ring);
        let shared = Arc::new(Shared {
            ring,
            callsites,
            dump_failed,
            trigger_folded,
            dumps: Default::default(),
            dir: dump_dir,
            service,
            pid,
            quota,
            stacks_on_snapshot: self.stacks_on_snapshot || env.stacks,
            keep_on_exit: self.keep_on_exit || env.keep,
            kept: Default::default(),
            panic_dumped: Default::default(),
            announce,
        });
        crate::ring::stacks::watch(&shared.ring);
        if shared.keep_on_exit {
            crate::shared::keep_at_exit(&shared);
        }
        let snapshot_signal = self
            .snapshot_signal
            .unwrap_or(Some(DEFAULT_SNAPSHOT_SIGNAL));
        shared
            .ring
            .record_settings(snapshot_signal, &shared.dir, shared.quota);
        let dumper = match snapshot_signal {
            Some(sig) => {
                Some(
                    Dumper::start(shared.clone(), sig).map_err(|source| Error::Signal {
                        signal: sig,
                        source,
                    })?,
                )
            }
            None => None,
        };
        if !self.no_panic_hook {
            crate::trigger::panic::install(Arc::downgrade(&shared));
        }
        if !self.no_crash_handler {
            crate::ring::crash::watch(&shared.ring);
        }
        if !self.no_stop_signals {
            crate::ring::stop::watch(&shared.ring, snapshot_signal);
        }
        let watchdog = match self
            .stall_threshold
            .unwrap_or(Some(DEFAULT_STALL_THRESHOLD))
        {
            Some(t) => Some(
                Watchdog::start(
                    shared.clone(),
                    t,
                    self.stop_grace.unwrap_or(DEFAULT_STOP_GRACE),
                )
                .map_err(Error::Watchdog)?,
            ),
            None => None,
        };
        let history = match history {
            Some(bytes) => Some(
                crate::history::History::start(shared.ring.clone(), bytes).map_err(|source| {
                    Error::History {
                        path: flightrec_format::history::dir_of(&shared.ring.path),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        Ok(Recorder {
            shared,
            _dumper: dumper,
            _watchdog: watchdog,
            _history: history,
            collected,
        })
    }
}

/// A flight recorder: owns the ring file, hands out layers that write into it, and
/// writes dumps of it.
pub struct Recorder {
    pub(crate) shared: Arc<Shared>,
    /// Stops (and joins) the dumper thread when the recorder goes.
    _dumper: Option<Dumper>,
    /// Stops (and joins) the stall watchdog when the recorder goes.
    _watchdog: Option<Watchdog>,
    /// Stops (and joins, after one last look at the ring) the history thread.
    _history: Option<crate::history::History>,
    collected: Vec<PathBuf>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Before the ring goes with the last reference: a recording asked to be kept.
        self.shared.keep_at_end();
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("service", &self.shared.service)
            .field("ring", &self.shared.ring.path)
            .finish()
    }
}

impl Recorder {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A layer recording into this recorder's ring. Compose it with other layers and
    /// filters like any tracing layer.
    pub fn layer(&self) -> FlightrecLayer {
        FlightrecLayer::new(self.shared.clone())
    }

    /// Writes a dump now, without pausing writers, and returns its path.
    pub fn snapshot(&self) -> Result<PathBuf, Error> {
        let t = crate::trigger::trigger(TriggerReason::Api, 0, os_tid(), String::new());
        self.shared.dump(&t)
    }

    /// As `snapshot`, with every other thread's native stack in the dump (each thread
    /// has 1 s to answer; one that does not is named as such in the dump).
    pub fn snapshot_with_stacks(&self) -> Result<PathBuf, Error> {
        let t = crate::trigger::trigger(TriggerReason::Api, 0, os_tid(), String::new());
        self.shared.dump_with_stacks(
            &t,
            &crate::trigger::all_threads(&self.shared.ring),
            flightrec_format::layout::stacks::REASON_SNAPSHOT,
        )
    }

    /// A dump is being copied or compressed now: a trigger that arrives meanwhile (a
    /// panic, a snapshot) folds into it and gets its path rather than making a dump of
    /// its own. False once the dump holds its last copy and is being written out.
    pub fn dump_under_way(&self) -> bool {
        self.shared.dumps.folds_now()
    }

    /// Dumps made at start from rings left in the directory by processes that died
    /// without a word (SIGKILL, the OOM killer). `init()` logs them.
    pub fn collected(&self) -> &[PathBuf] {
        &self.collected
    }

    /// Where the history on disk stands (`None`: the recorder keeps none; see
    /// `Builder::history`).
    pub fn history_status(&self) -> Option<crate::history::HistoryStatus> {
        self._history.as_ref().map(crate::history::History::status)
    }

    /// The ring file. It outlives the process: `flightrec cat` reads it directly.
    pub fn ring_path(&self) -> &Path {
        &self.shared.ring.path
    }

    /// Where dumps are written.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn service(&self) -> &str {
        &self.shared.service
    }
}

/// Records a test binary into one recording, kept as a dump (trigger `exit`) when the binary
/// exits, if `FLIGHTREC_KEEP=1` is set; without it, does nothing and returns `None`.
///
/// Call it first in each test. The first call starts a recorder configured from the
/// environment (`FLIGHTREC_DIR` and the rest, as `Builder::from_env`) and makes its layer
/// the global default subscriber, so every test thread records into it; later calls return
/// the same recorder. Then `FLIGHTREC_KEEP=1 cargo test` and `flightrec check DIR` ask what
/// the passing run did. A failing test's panic is left to the test harness to report (no
/// panic dump), and a binary whose tests set their own global subscriber keeps it (this
/// says so on stderr, once).
pub fn test_recorder() -> Option<&'static Recorder> {
    static RECORDER: std::sync::OnceLock<Option<&'static Recorder>> = std::sync::OnceLock::new();
    *RECORDER.get_or_init(|| {
        let env = Env::read();
        if !env.keep {
            return None;
        }
        let built = Builder::from_vars(&env).and_then(|b| {
            let b = match &env.service {
                Some(_) => b,
                None => b.service(test_binary_name(&default_service())),
            };
            b.keep_on_exit(true).panic_hook(false).build()
        });
        match built {
            Ok(recorder) => {
                let recorder: &'static Recorder = Box::leak(Box::new(recorder));
                if tracing_subscriber::registry()
                    .with(recorder.layer())
                    .try_init()
                    .is_err()
                {
                    eprintln!(
                        "flightrec: test_recorder: a global subscriber is already set, so \
                         only what is recorded through recorder.layer() is kept"
                    );
                }
                Some(recorder)
            }
            Err(e) => {
                eprintln!("flightrec: test_recorder: not recording: {e}");
                None
            }
        }
    })
}

/// Sets up recording in one line: a recorder configured from `FLIGHTREC_*` variables,
/// recording what `FLIGHTREC_FILTER` allows (default: everything), plus tracing's fmt
/// output to stderr filtered by `RUST_LOG` (default: info), installed as the global
/// subscriber. The recorder lives for the rest of the process.
pub fn init() -> Result<&'static Recorder, Error> {
    let env = Env::read();
    let recorder: &'static Recorder = Box::leak(Box::new(Builder::from_vars(&env)?.build()?));
    let record_filter = env_filter("FLIGHTREC_FILTER", env.filter.as_deref(), "trace")?;
    let log_filter = env_filter("RUST_LOG", env.rust_log.as_deref(), "info")?;
    tracing_subscriber::registry()
        .with(recorder.layer().with_filter(record_filter))
        // fmt writes to stdout unless told: logs go to stderr, leaving stdout to the program.
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(log_filter),
        )
        .try_init()
        .map_err(|_| Error::AlreadyInitialized)?;
    tracing::info!(
        ring = %recorder.ring_path().display(),
        dumps = %recorder.dir().display(),
        "flightrec is recording"
    );
    // Announced on stderr already, unless announcements are off.
    if !recorder.shared.announce {
        for dump in recorder.collected() {
            tracing::warn!(dump = %dump.display(), "collected the ring of a process that died without a dump");
        }
    }
    Ok(recorder)
}

fn env_filter(var: &'static str, value: Option<&str>, default: &str) -> Result<EnvFilter, Error> {
    match value {
        Some(v) => EnvFilter::try_new(v).map_err(|e| Error::Env {
            var,
            value: v.to_owned(),
            why: e.to_string(),
        }),
        None => Ok(EnvFilter::new(default)),
    }
}

#[cfg(test)]
mod tests {
    /// `FLIGHTREC_HISTORY` sets the history's size; what does not parse is refused by
    /// name, and a history too small to hold a segment or two by `build`, before anything
    /// is created.
    #[test]
    fn the_history_size_comes_from_the_environment_and_is_checked() {
        use super::{Builder, Error};
        let env = |h: &str| crate::env::Env {
            history: Some(h.into()),
            ..crate::env::Env::default()
        };
        assert_eq!(
            Builder::from_vars(&env("256M")).unwrap().history,
            Some(256 << 20)
        );
        assert_eq!(Builder::from_vars(&env("0")).unwrap().history, Some(0));
        let e = Builder::from_vars(&env("lots")).unwrap_err().to_string();
        assert!(e.contains("FLIGHTREC_HISTORY") && e.contains("256M"), "{e}");
        let e = Builder::default().history(1000).build().unwrap_err();
        assert!(matches!(e, Error::HistorySize { bytes: 1000 }), "{e}");
    }
}
