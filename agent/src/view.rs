//! `flightrec view`: the timeline viewer's server, in the foreground until Ctrl-C.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;

#[allow(clippy::too_many_arguments)]
pub fn run(
    paths: Vec<PathBuf>,
    addr: IpAddr,
    port: u16,
    extra_hosts: Vec<String>,
    open: bool,
    merge: bool,
    filter: &crate::upload::ListFilter,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (urls, paths): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .into_iter()
        .partition(|p| p.to_str().is_some_and(|s| s.starts_with("s3://")));
    if merge && (paths.len() < 2 || paths.iter().any(|p| !p.is_file())) {
        anyhow::bail!("--merge opens two or more recording files together (not directories)");
    }
    check_paths(&paths)?;
    let remote = match urls.as_slice() {
        [] => None,
        [url] => {
            let url = url.to_str().unwrap_or_default();
            let (listed, more, fetch) = crate::upload::list_remote(url, filter)?;
            if more {
                writeln!(
                    out,
                    "the {} newest dumps listed under {url} (--limit N for more, --until TIME \
                     for older ones)",
                    listed.len()
                )?;
            } else {
                writeln!(out, "{} dumps listed under {url}", listed.len())?;
            }
            Some((listed, fetch))
        }
        _ => anyhow::bail!("one s3:// location at a time"),
    };
    serve_with(
        ServeArgs {
            paths,
            addr,
            port,
            extra_hosts,
            open,
            merge,
            remote,
        },
        "",
        out,
        std::future::pending(),
    )
}

/// Fails with one line when a file given by name is not a recording; then one line per
/// file in a given directory that is named like a recording but is not one (the index
/// leaves it out), and one per given recording that is damaged (found by a scan in the
/// background, so the URL is not held up).
fn check_paths(paths: &[PathBuf]) -> anyhow::Result<()> {
    for f in paths.iter().filter(|p| p.is_file()) {
        if let Err(e) = flightrec_format::check_head(f) {
            anyhow::bail!("{}: not a flightrec recording ({e})", f.display());
        }
    }
    for dir in paths.iter().filter(|p| p.is_dir()) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut skipped: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "flightrec" || e == "flightrec-ring")
                    && p.is_file()
                    && !flightrec_viewer::is_recording_file(p)
            })
            .collect();
        skipped.sort();
        for p in skipped {
            eprintln!(
                "flightrec: skipping {}: not a flightrec recording",
                p.display()
            );
        }
    }
    let files: Vec<PathBuf> = paths.iter().filter(|p| p.is_file()).cloned().collect();
    if files.is_empty() {
        return Ok(());
    }
    let _ = std::thread::Builder::new()
        .name("damage-check".into())
        .spawn(move || {
            for f in files {
                if let Ok(image) = flightrec_format::read_image(&f) {
                    if let Ok(scan) = image.scan() {
                        crate::warn_if_damaged(&f, &scan.recording);
                    }
                }
            }
        });
    Ok(())
}

/// What `serve_with` serves, and how.
struct ServeArgs {
    paths: Vec<PathBuf>,
    addr: IpAddr,
    port: u16,
    extra_hosts: Vec<String>,
    open: bool,
    merge: bool,
    remote: Option<(flightrec_viewer::RemoteListing, flightrec_viewer::Fetch)>,
}

/// Serves `paths` until Ctrl-C or `stop`, printing the URL (of the one dump, when one file
/// was given, with `query` appended) once listening.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    paths: Vec<PathBuf>,
    addr: IpAddr,
    port: u16,
    extra_hosts: Vec<String>,
    open: bool,
    query: &str,
    out: &mut impl Write,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let args = ServeArgs {
        paths,
        addr,
        port,
        extra_hosts,
        open,
        merge: false,
        remote: None,
    };
    serve_with(args, query, out, stop)
}

/// `serve`, optionally opening the files given together, merged into one timeline, and
/// listing dumps in object storage.
fn serve_with(
    args: ServeArgs,
    query: &str,
    out: &mut impl Write,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let ServeArgs {
        paths,
        addr,
        port,
        extra_hosts,
        open,
        merge,
        remote,
    } = args;
    if !addr.is_loopback() {
        eprintln!(
            "flightrec: warning: listening on {addr}: anyone who can reach this machine can read \
             these recordings. Requests must name this server in their Host header: add the \
             names it is reached by with --allow-host NAME:PORT"
        );
    }
    let single = paths.len() == 1 && paths[0].is_file() && remote.is_none();
    let merged_id = merge.then(|| {
        (0..paths.len())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("+")
    });
    let config = flightrec_viewer::ServeConfig {
        merge,
        remote,
        addr: SocketAddr::new(addr, port),
        extra_hosts,
        limits: flightrec_viewer::Limits {
            cache_bytes: crate::upload::cache_budget(),
            ..flightrec_viewer::Limits::default()
        },
    };
    let mut printed = Ok(());
    flightrec_viewer::serve(
        paths,
        config,
        |bound| {
            let host = if bound.ip().is_loopback() && bound.is_ipv4() {
                format!("127.0.0.1:{}", bound.port())
            } else {
                bound.to_string()
            };
            let url = if single {
                format!("http://{host}/dump/0{query}")
            } else if let Some(id) = &merged_id {
                format!("http://{host}/dump/{id}{query}")
            } else {
                format!("http://{host}/")
            };
            printed = writeln!(out, "flightrec viewer on {url} (Ctrl-C to stop)")
                .and_then(|()| out.flush());
            if open {
                open_browser(&url);
            }
        },
        stop,
    )
    .context("viewer")?;
    printed.context("writing the URL")?;
    Ok(())
}

/// Starts a browser on `url` if one can be found; says so if none can.
pub fn open_browser(url: &str) {
    for cmd in [
        "xdg-open",
        "sensible-browser",
        "chromium",
        "firefox",
        "open",
    ] {
        let started = std::process::Command::new(cmd)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if started.is_ok() {
            return;
        }
    }
    eprintln!("flightrec: no browser found; open {url} yourself");
}
