//! `flightrec`: read flight-recorder rings and dumps, and run the demo.
#![forbid(unsafe_code)]

mod aside;
mod cat;
mod check;
mod demo;
mod demo_async;
mod dump_names;
mod export;
mod info;
mod output_file;
mod progress;
mod snapshot;
mod tables;
mod upload;
mod view;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "flightrec",
    version,
    about = "A flight recorder for Rust services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a ring file's or dump's records in time order, one per line.
    Cat {
        /// Ring files or dumps; `-` reads standard input. Several are merged in time order,
        /// each record naming its process.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per record instead of text (every record, lifecycle included).
        #[arg(long)]
        json: bool,
        /// Also print span lifecycle records (new, enter, exit, close, follows_from,
        /// record), which the text leaves out: each line names its spans instead.
        #[arg(long)]
        spans: bool,
    },
    /// Print what a ring file or dump holds: process, trigger, threads and counts.
    Info {
        /// Ring files or dumps; `-` reads standard input. Several are described one after
        /// another (with --json, as one array).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Name the bugs recordings show (deadlocks, failures explained by an interleaving,
    /// lock-order inversions, atomicity breaks, inconsistent locking, blocking polls, long
    /// lock waits, stuck threads, condvar waits no notify follows, receives nothing will send to), each with the records
    /// that show it. A CI gate that fails closed. Exit status: 0 no finding; 1 findings; 2 an input cannot be read, is not a
    /// recording, or a directory holds none; 3 an input is damaged (cut short, unreadable
    /// chunks), unless --partial.
    Check {
        /// Dumps, ring files, or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Report only this kind (repeatable): deadlock, interleaving, lock_order,
        /// atomicity, inconsistent_locking, blocking_poll, lock_wait, stuck, no_notify,
        /// no_send.
        #[arg(long = "kind", value_parser = check::parse_kind)]
        kinds: Vec<flightrec_analysis::findings::Kind>,
        /// Never report this kind (repeatable).
        #[arg(long, value_parser = check::parse_kind)]
        ignore: Vec<flightrec_analysis::findings::Kind>,
        /// A poll longer than this blocks its worker (ms).
        #[arg(long, value_name = "MS", default_value_t = 10.0)]
        blocking_poll: f64,
        /// A lock wait longer than this is reported (ms).
        #[arg(long, value_name = "MS", default_value_t = 100.0)]
        lock_wait: f64,
        /// A thread inside a span silent this long before the end is stuck (ms).
        #[arg(long, value_name = "MS", default_value_t = 1000.0)]
        stuck: f64,
        /// The recordings are processes of one system: check them as one, merged in time
        /// order, so a finding can span processes.
        #[arg(long)]
        merge: bool,
        /// Accept damaged recordings: check what survives of them (their damage is still
        /// printed) instead of exiting 3.
        #[arg(long)]
        partial: bool,
        /// Print one JSON document instead of paragraphs: each recording's findings, locks
        /// and tasks as `info --json` and the viewer have them, the inputs that could not
        /// be read, and the exit status.
        #[arg(long)]
        json: bool,
    },
    /// Convert a dump (or ring file) for Perfetto UI or chrome://tracing, or into Parquet
    /// tables (docs/tables.md) for DuckDB, Spark, Trino/Athena or Polars. Output appears
    /// under its name only when complete. Exit status: 0 done; 1 failed (nothing written);
    /// 3 written from a damaged input (what survived; the damage is printed).
    Export {
        /// Dumps or ring files; `-` reads standard input. Several become one trace with a
        /// process each, aligned on wall-clock time.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The output format.
        #[arg(long, value_enum)]
        format: export::Format,
        /// Where to write; `-` writes to standard output. Default: the current directory,
        /// named after the (first) input with the format's extension (`.pftrace`, `.json`);
        /// the path is printed. For parquet, a directory: `<dir>/<table>/<recording
        /// id>.parquet` per recording (default: `./<input stem>.tables`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Put each recording's findings (`flightrec check`'s) on its process track, as
        /// instants at their last evidence. Decodes each recording whole once for them
        /// (the memory `info` takes); without it the export streams.
        #[arg(long)]
        findings: bool,
    },
    /// Open dumps in the browser timeline: serves them on 127.0.0.1 and prints the URL.
    View {
        /// Dump files, ring files, or directories of them; or s3://bucket/prefix to browse
        /// the dumps uploaded there (fetched, and cached, only when opened).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// With s3://: only this service's dumps.
        #[arg(long)]
        service: Option<String>,
        /// With s3://: only this host's dumps.
        #[arg(long)]
        host: Option<String>,
        /// With s3://: only dumps with this trigger (panic, crash, stall, signal, snapshot).
        #[arg(long)]
        trigger: Option<String>,
        /// With s3://: only dumps taken at or after this time (2026-11-23T10:02:00Z).
        #[arg(long)]
        since: Option<String>,
        /// With s3://: only dumps taken at or before this time.
        #[arg(long)]
        until: Option<String>,
        /// With s3://: only dumps with a finding of this kind (lock_order, deadlock...;
        /// known for dumps uploaded with --tables).
        #[arg(long, value_parser = check::parse_kind)]
        finding: Option<flightrec_analysis::findings::Kind>,
        /// With s3://: how many dumps to list, newest first (older ones: --until).
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// The port to listen on; 0 takes a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Listen on this address instead of 127.0.0.1. Anything but loopback exposes the
        /// recording to the network.
        #[arg(long, default_value = "127.0.0.1")]
        addr: std::net::IpAddr,
        /// Another Host header to accept (a name this machine is reached by).
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// Open the page in a browser.
        #[arg(long)]
        open: bool,
        /// Open the recordings given as one timeline: a process each, aligned on wall-clock
        /// time, objects followed across them.
        #[arg(long)]
        merge: bool,
    },
    /// Make a running process write a dump (by sending its snapshot signal) and print the
    /// dump's path.
    Snapshot {
        /// The process to dump.
        pid: i32,
        /// The signal to send (default: the one its recorder listens for, read from its
        /// ring). Any other is refused, since it could kill the process.
        #[arg(long)]
        signal: Option<String>,
        /// How long to wait for the dump, in seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Capture every thread's native stack into the dump (threads that do not answer
        /// within 1 s are named as such).
        #[arg(long)]
        stacks: bool,
    },
    /// Turn the ring file of a dead process into a dump, print the dump's path, and remove
    /// the ring (it would only be collected again by the service's next start).
    Collect {
        /// The ring file (`<service>-<pid>.flightrec-ring`).
        ring: PathBuf,
        /// Where to write the dump: a file name, or an existing directory to write it into
        /// under its usual name (default: the service's dump directory, as its ring
        /// records it, else beside the ring).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Keep the ring file, marked as collected: no recorder, `watch` or `collect`
        /// dumps it again.
        #[arg(long)]
        keep_ring: bool,
    },
    /// Ship dumps to S3-compatible object storage (configured by AWS_ENDPOINT_URL,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP).
    Upload {
        /// The dumps to send.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where: s3://bucket/prefix.
        #[arg(long)]
        to: String,
        /// Delete each local dump once its upload is confirmed.
        #[arg(long)]
        delete_after_upload: bool,
        /// Also write each dump's Parquet tables (docs/tables.md) under
        /// <prefix>/tables/<table>/service=<s>/date=<yyyy-mm-dd>/, for DuckDB, Spark,
        /// Trino/Athena or Polars to query the fleet in place.
        #[arg(long)]
        tables: bool,
    },
    /// Watch a directory: turn the ring of every process that dies there into a dump (and
    /// remove the ring), printing each dump's path, until interrupted.
    Watch {
        /// The directory of ring files to watch (the recorders' `dir`).
        dir: PathBuf,
        /// Seconds between scans.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Scan once and exit.
        #[arg(long)]
        once: bool,
        /// Also send every dump (collected here, or found in the dump directory) to
        /// s3://bucket/prefix, once each; failed uploads are tried again at the next scan.
        #[arg(long)]
        upload: Option<String>,
        /// With --upload: delete each local dump once its upload is confirmed.
        #[arg(long, requires = "upload")]
        delete_after_upload: bool,
        /// With --upload: also write each dump's Parquet tables beside it (see `upload`).
        #[arg(long, requires = "upload")]
        tables: bool,
    },
    /// Run a small service with a race in it until the race bites, then show the dump in
    /// the timeline viewer.
    Demo {
        /// Where the ring and the dump go (default: `demo` or `demo-async` under the
        /// default dump directory, reused by every run, which keeps only its newest dump).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the dump and the interleaving, but do not start the viewer.
        #[arg(long)]
        no_view: bool,
        /// Open a browser on the viewer.
        #[arg(long)]
        open: bool,
        /// The viewer's port; 0 takes a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The async scenario: an axum HTTP service on a tokio runtime, whose requests race
        /// across an `.await`; the viewer opens in the task view.
        #[arg(long = "async")]
        async_service: bool,
        /// The same service with its race fixed (the check and the act in one critical
        /// section): it runs two seconds and dumps, and its findings are none.
        #[arg(long)]
        fixed: bool,
    },
}

fn main() -> ExitCode {
    // A bug of ours, or of a library under us, ends in one line too, never a trace.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "flightrec: internal error: {}{at} (please report it)",
            what.lines().next().unwrap_or("")
        );
    }));
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Command::Check {
        paths,
        kinds,
        ignore,
        blocking_poll,
        lock_wait,
        stuck,
        merge,
        partial,
        json,
    } = &cli.command
    {
        return check_command(
            paths,
            check::CheckOptions {
                kinds: kinds.clone(),
                ignore: ignore.clone(),
                thresholds: flightrec_analysis::findings::Thresholds {
                    blocking_poll_ns: ms_to_ns(*blocking_poll),
                    lock_wait_ns: ms_to_ns(*lock_wait),
                    stuck_ns: ms_to_ns(*stuck),
                },
                merge: *merge,
                partial: *partial,
                json: *json,
            },
            &mut out,
        );
    }
    let exporting = matches!(cli.command, Command::Export { .. });
    let result = match cli.command {
        Command::Check { .. } => unreachable!("answered above"),
        Command::Cat { files, json, spans } => cat_files(&files, json, spans, &mut out),
        Command::Info { files, json } => info_files(&files, json, &mut out),
        Command::Export {
            files,
            format,
            out: to,
            findings,
        } => export::default_output(&files, format, to).and_then(|(to, print)| {
            if format == export::Format::Parquet {
                return tables::export(&files, &to, &mut out);
            }
            export::run(&files, format, &to, findings)?;
            if print {
                writeln!(out, "{}", to.display())?;
            }
            Ok(())
        }),
        Command::View {
            paths,
            port,
            addr,
            allow_hosts,
            open,
            merge,
            service,
            host,
            trigger,
            since,
            until,
            finding,
            limit,
        } => (|| {
            let filter = upload::ListFilter {
                service,
                host,
                trigger,
                since: since.as_deref().map(upload::parse_time).transpose()?,
                until: until.as_deref().map(upload::parse_time).transpose()?,
                finding: finding.map(|k| k.slug().to_string()),
                limit,
            };
            view::run(
                paths,
                addr,
                port,
                allow_hosts,
                open,
                merge,
                &filter,
                &mut out,
            )
        })(),
        Command::Demo {
            dir,
            no_view,
            open,
            port,
            async_service,
            fixed,
        } => {
            let opts = demo::DemoOptions {
                dir,
                view: !no_view,
                open,
                port,
                fixed,
            };
            if async_service {
                demo_async::run(opts, &mut out)
            } else {
                demo::run(opts, &mut out)
            }
        }
        Command::Snapshot {
            pid,
            signal,
            timeout,
            stacks,
        } => snapshot::run(pid, signal.as_deref(), timeout, stacks, &mut out),
        Command::Collect {
            ring,
            out: dir,
            keep_ring,
        } => collect(&ring, dir, keep_ring, &mut out),
        Command::Upload {
            files,
            to,
            delete_after_upload,
            tables,
        } => upload::run(&files, &to, delete_after_upload, tables, &mut out),
        Command::Watch {
            dir,
            interval,
            once,
            upload,
            delete_after_upload,
            tables,
        } => upload
            .map(|u| upload::Shipper::new(&dir, &u, delete_after_upload, tables))
            .transpose()
            .and_then(|mut shipper| watch(&dir, interval, once, shipper.as_mut(), &mut out)),
    };
    let result = result.and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) if exporting && DAMAGED_INPUT.load(std::sync::atomic::Ordering::Relaxed) => {
            eprintln!("flightrec: exported what survived of a damaged input: exit status 3");
            ExitCode::from(3)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flightrec: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn ms_to_ns(ms: f64) -> u64 {
    (ms.max(0.0) * 1e6).min(u64::MAX as f64) as u64
}

/// `check`'s exit status (`Checked::status`): 0 when nothing was found, 1 when something
/// was, 2 when an input could not be read (each said in one line) or the output failed, 3
/// when an input was damaged and `--partial` was not given.
fn check_command(paths: &[PathBuf], opts: check::CheckOptions, out: &mut impl Write) -> ExitCode {
    let checked = check::run(paths, &opts, out);
    let flushed = out.flush().map_err(anyhow::Error::from);
    match checked.and_then(|c| flushed.map(|()| c)) {
        Ok(c) => {
            for why in &c.unreadable {
                eprintln!("flightrec: {why}");
            }
            let status = c.status(opts.partial);
            if status == 3 {
                eprintln!(
                    "flightrec: {} damaged recording(s): failing (--partial accepts them)",
                    c.damaged
                );
            }
            ExitCode::from(status)
        }
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flightrec: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each said once: a context that another message
/// of the chain already contains (the path, or a source an error quotes in its own text)
/// is left out.
fn one_line(e: &anyhow::Error) -> String {
    let texts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let kept: Vec<&str> = texts
        .iter()
        .enumerate()
        .filter(|&(i, t)| {
            !texts
                .iter()
                .enumerate()
                .any(|(j, u)| j != i && u.contains(t.as_str()) && (u != t || j < i))
        })
        .map(|(_, t)| t.as_str())
        .collect();
    kept.join(": ")
}

fn collect(
    ring: &std::path::Path,
    to: Option<PathBuf>,
    keep_ring: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let head = flightrec_format::read_head(ring).with_context(|| format!("{}", ring.display()))?;
    let is_dump = flightrec_format::layout::get_u32(&head, flightrec_format::layout::header::FLAGS)
        .is_some_and(|f| f & flightrec_format::layout::FLAG_DUMP != 0);
    if is_dump {
        anyhow::bail!(
            "{} is already a dump: read it with cat, info, export or view (collect turns a dead process's .flightrec-ring into one)",
            ring.display()
        );
    }
    let parent_of = |p: &std::path::Path| match p.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // An existing directory receives the dump under its usual name; anything else names
    // the dump file itself.
    let recorded_dump_dir = || {
        flightrec_format::layout::RingSettings::parse(&head)
            .dump_dir
            .filter(|d| d.is_dir())
    };
    let (dir, file) = match to {
        None => (recorded_dump_dir().unwrap_or_else(|| parent_of(ring)), None),
        Some(d) if d.is_dir() => (d, None),
        Some(f) => {
            if f.exists() {
                anyhow::bail!(
                    "{} already exists; collect never replaces a file",
                    f.display()
                );
            }
            let parent = parent_of(&f);
            if !parent.is_dir() {
                anyhow::bail!(
                    "cannot write {}: {} is not a directory",
                    f.display(),
                    parent.display()
                );
            }
            (parent, Some(f))
        }
    };
    if let Some(at) = flightrec_format::layout::RingSettings::parse(&head).collected_wall_ns {
        anyhow::bail!(
            "{} was already collected at {} (it was kept with --keep-ring); its dump is in the service's dump directory",
            ring.display(),
            cat::format_ts(at.min(i64::MAX as u64) as i64)
        );
    }
    // Claimed first: a recorder starting or `watch` may be after the same ring.
    let claim =
        flightrec_format::collect::claim(ring).with_context(|| format!("{}", ring.display()))?;
    let dump = claim
        .dump(&dir)
        .with_context(|| format!("{}", ring.display()))?;
    let dump = match file {
        None => dump,
        Some(f) => {
            // A hard link never replaces an existing file, unlike a rename.
            std::fs::hard_link(&dump, &f)
                .with_context(|| format!("cannot write {}", f.display()))?;
            let _ = std::fs::remove_file(&dump);
            f
        }
    };
    // The dump holds everything the ring did: left as it was, the service's next start
    // would collect it a second time.
    if keep_ring {
        claim
            .mark_collected()
            .with_context(|| format!("cannot mark {} as collected", ring.display()))?;
    } else {
        claim.remove()?;
    }
    writeln!(out, "{}", dump.display())?;
    Ok(())
}

fn watch(
    dir: &std::path::Path,
    interval: f64,
    once: bool,
    mut shipper: Option<&mut upload::Shipper>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    loop {
        let mut dump_dirs = vec![dir.to_path_buf()];
        std::fs::read_dir(dir).with_context(|| format!("cannot watch {}", dir.display()))?;
        let mut collected = Vec::new();
        for ring in flightrec_format::collect::rings_in(dir) {
            let chosen = flightrec_format::collect::collect_dead(&ring, |settings| {
                let dumps = settings
                    .dump_dir
                    .clone()
                    .filter(|d| d.is_dir())
                    .unwrap_or_else(|| dir.to_path_buf());
                if !dump_dirs.contains(&dumps) {
                    dump_dirs.push(dumps.clone());
                }
                dumps
            });
            match chosen {
                Ok(flightrec_format::collect::Collected::Dump(dump, quota)) => collected.push((
                    dump,
                    quota.unwrap_or(flightrec_format::retention::DEFAULT_QUOTA),
                )),
                Ok(_) => {}
                // Left in place for the next scan (a full disk may clear).
                Err(e) => eprintln!("flightrec: cannot collect {}: {e}", ring.display()),
            }
        }
        // Each service's dumps pruned by its recorder's own rule, as it would itself.
        let pruned = flightrec_format::retention::prune_services_of(&collected);
        for p in &pruned {
            eprintln!("flightrec: retention removed the dump {}", p.display());
        }
        for (dump, _) in collected.iter().filter(|(d, _)| !pruned.contains(d)) {
            writeln!(out, "{}", dump.display())?;
        }
        out.flush()?;
        let shipped = match shipper.as_deref_mut() {
            Some(s) => s.ship(&dump_dirs, out)?,
            None => true,
        };
        if once {
            if !shipped {
                anyhow::bail!("some dumps were not uploaded (kept; the next run tries again)");
            }
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(interval.max(0.01)));
    }
}

/// `info` of each file in turn: text blocks separated by a blank line, or one JSON
/// object (a JSON array of them for several files).
fn info_files(files: &[PathBuf], json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        anyhow::bail!("standard input (-) can be given once");
    }
    let several = files.len() > 1;
    if json && several {
        write!(out, "[")?;
    }
    let mut aside = aside::Aside::default();
    for (i, file) in files.iter().enumerate() {
        // The previous recording is freed before the next is read: one at a time.
        aside.wait();
        let mut progress = progress::Reading::start(file);
        let image = read(file)?;
        // The findings need the records in memory (tasks, spans and locks resolved).
        let rec = progress
            .decode(&image)
            .with_context(|| format!("{}", file.display()))?;
        drop(image);
        progress.step("finding bugs");
        let analysis = flightrec_analysis::Analysis::of(
            &rec,
            &flightrec_analysis::findings::Thresholds::default(),
        );
        drop(progress);
        if i > 0 {
            writeln!(out, "{}", if json { "," } else { "" })?;
        }
        info::run(file, &rec, &analysis, json, out)?;
        aside.drop_later((rec, analysis));
    }
    if json && several {
        writeln!(out, "]")?;
    }
    Ok(())
}

/// `cat`: one recording streamed, or several merged in time order.
fn cat_files(
    files: &[PathBuf],
    json: bool,
    spans: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if let [file] = files {
        let image = read(file)?;
        let scan = scan(file, &image)?;
        warn_if_damaged(file, &scan.recording);
        return cat::run(&scan, json, spans, out);
    }
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        anyhow::bail!("standard input (-) can be given once");
    }
    let images = files
        .iter()
        .map(|f| read(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scans = files
        .iter()
        .zip(&images)
        .map(|(f, i)| scan(f, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (f, s) in files.iter().zip(&scans) {
        warn_if_damaged(f, &s.recording);
    }
    cat::run_merged(&scans, json, spans, out)
}

/// A ring file or dump as a ring image, holding only the chunks in use.
fn read(path: &std::path::Path) -> anyhow::Result<flightrec_format::Image> {
    flightrec_format::read_image(path).with_context(|| format!("{}", path.display()))
}

/// The image indexed, its records left to stream.
fn scan<'a>(
    path: &std::path::Path,
    image: &'a flightrec_format::Image,
) -> anyhow::Result<flightrec_format::Scan<'a>> {
    image.scan().with_context(|| format!("{}", path.display()))
}

/// Set when an input was damaged: an export then exits 3.
static DAMAGED_INPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One line on stderr when `rec` is damaged: what is missing, and that what follows is
/// partial (the output goes on: every record that survived is worth having).
pub(crate) fn warn_if_damaged(path: &std::path::Path, rec: &flightrec_format::Recording) {
    if let Some(what) = rec.damage.describe() {
        DAMAGED_INPUT.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "flightrec: warning: {} is damaged ({what}): the output is partial",
            path.display()
        );
    }
}

/// `flightrec cat dump | head` must end quietly, like any Unix filter.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
