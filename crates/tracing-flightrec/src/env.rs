//! The environment, read in one place ([`Env::read`]).
//!
//! | variable | what it sets | used by |
//! |---|---|---|
//! | `FLIGHTREC_SERVICE` | the service name | `Builder::from_env` |
//! | `FLIGHTREC_HOST` | the host name written into the ring | `Builder::from_env` |
//! | `FLIGHTREC_DIR` | where the ring goes (and dumps, unless `FLIGHTREC_DUMP_DIR`) | `Builder::from_env`, the default directories |
//! | `FLIGHTREC_DUMP_DIR` | where dumps go | `Builder::from_env`, `default_dump_dir` |
//! | `FLIGHTREC_CAPACITY` | the ring's size: bytes, or with a K/M/G suffix | `Builder::from_env` |
//! | `FLIGHTREC_HISTORY` | history on disk beside the ring, at most this size: bytes, or with a K/M/G suffix; unset or `0`: none | `Builder::from_env` |
//! | `FLIGHTREC_SIGNAL` | the snapshot signal: `USR1`, `USR2`, a number, or `off` | `Builder::from_env` |
//! | `FLIGHTREC_KEEP_RING` | `1`: a clean exit keeps the ring | `Builder::from_env` |
//! | `FLIGHTREC_KEEP` | `1`: a recording that ends cleanly is kept as a dump (trigger `exit`), for `flightrec check` | `Builder::build` |
//! | `FLIGHTREC_ANNOUNCE` | `0`: dumps are written without a line on stderr | `Builder::build` |
//! | `FLIGHTREC_STACKS` | `1`: snapshots capture every thread's native stack | `Builder::build` |
//! | `FLIGHTREC_FILTER` | what `init` records (an `EnvFilter`; default everything) | `init` |
//! | `RUST_LOG` | what `init` prints to stderr (default `info`) | `init` |
//! | `XDG_RUNTIME_DIR` | the default ring directory's parent | the default directories |
//! | `XDG_STATE_HOME` | the default dump directory's parent | the default directories |
//! | `USER` | whose the default directories are (else the uid) | the default directories |
//! | `HOSTNAME` | the host name when the kernel's cannot be read | `Builder::build` |

use std::ffi::OsString;

/// Every variable of the table above, as the process had them when read. Empty values
/// count as unset.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    pub(crate) service: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) dir: Option<OsString>,
    pub(crate) dump_dir: Option<OsString>,
    pub(crate) capacity: Option<String>,
    pub(crate) history: Option<String>,
    pub(crate) signal: Option<String>,
    pub(crate) keep_ring: bool,
    pub(crate) keep: bool,
    pub(crate) stacks: bool,
    /// `FLIGHTREC_ANNOUNCE=0`: no line on stderr per dump.
    pub(crate) no_announce: bool,
    pub(crate) filter: Option<String>,
    pub(crate) rust_log: Option<String>,
    pub(crate) xdg_runtime_dir: Option<OsString>,
    pub(crate) xdg_state_home: Option<OsString>,
    pub(crate) user: Option<String>,
    pub(crate) hostname: Option<String>,
}

impl Env {
    /// The one place flightrec reads its environment.
    pub(crate) fn read() -> Env {
        let os = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let text = |name: &str| std::env::var(name).ok();
        let one = |name: &str| std::env::var_os(name).is_some_and(|v| v == "1");
        Env {
            service: text("FLIGHTREC_SERVICE"),
            host: text("FLIGHTREC_HOST"),
            dir: os("FLIGHTREC_DIR"),
            dump_dir: os("FLIGHTREC_DUMP_DIR"),
            capacity: text("FLIGHTREC_CAPACITY"),
            history: text("FLIGHTREC_HISTORY"),
            signal: text("FLIGHTREC_SIGNAL"),
            keep_ring: one("FLIGHTREC_KEEP_RING"),
            keep: one("FLIGHTREC_KEEP"),
            stacks: one("FLIGHTREC_STACKS"),
            no_announce: std::env::var_os("FLIGHTREC_ANNOUNCE").is_some_and(|v| v == "0"),
            filter: text("FLIGHTREC_FILTER"),
            rust_log: text("RUST_LOG"),
            xdg_runtime_dir: os("XDG_RUNTIME_DIR"),
            xdg_state_home: os("XDG_STATE_HOME"),
            user: text("USER").filter(|u| !u.is_empty()),
            hostname: text("HOSTNAME"),
        }
    }
}
