//! `flightrec check`: the findings of recordings, for a person or a CI job. The gate fails
//! closed: exit 0 when there are none, 1 when there are some, 2 when an input cannot be read
//! or a path holds no recording, 3 when an input is damaged (`--partial` accepts it). `info`
//! prints the same findings' titles at its top.

use std::io::Write;
use std::path::{Path, PathBuf};

use flightrec_analysis::findings::{Finding, Kind, Thresholds};
use flightrec_analysis::{Analysis, Report};
use flightrec_format::Recording;
use serde::Serialize;

use crate::aside::Aside;
use crate::cat::format_ts;

/// Which findings `check` reports.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Only these kinds (all when empty).
    pub kinds: Vec<Kind>,
    /// Never these.
    pub ignore: Vec<Kind>,
    pub thresholds: Thresholds,
    /// The inputs are processes of one system: check them merged into one time order, so
    /// a finding can span processes (two servers racing for one job).
    pub merge: bool,
    /// A damaged input (cut short, bad chunks) is checked for what survives, with its
    /// damage warned about, instead of failing the gate.
    pub partial: bool,
    /// One JSON document ([`CheckedJson`]) instead of paragraphs.
    pub json: bool,
}

impl CheckOptions {
    fn wants(&self, k: Kind) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&k)) && !self.ignore.contains(&k)
    }
}

/// A kind named on the command line.
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.slug()).collect();
        format!("unknown kind {s:?} (one of {})", all.join(", "))
    })
}

/// What `check` saw.
#[derive(Debug, Default)]
pub struct Checked {
    pub findings: usize,
    /// Inputs that could not be read (or paths that hold no recording), each with its one
    /// line.
    pub unreadable: Vec<String>,
    /// Inputs that were damaged (their damage is warned about on stderr as they are read);
    /// without `--partial` they fail the gate.
    pub damaged: usize,
    /// What each recording's analysis says, for `--json`.
    pub reports: Vec<CheckedRecording>,
}

/// One recording (or, with `--merge`, the recordings as one) in `check --json`.
#[derive(Debug, Serialize)]
pub struct CheckedRecording {
    pub file: String,
    /// Damaged, and checked for what survives.
    pub damaged: bool,
    /// The findings of the kinds asked for, then its locks and tasks.
    #[serde(flatten)]
    pub report: Report,
}

/// `check --json`'s document.
#[derive(Debug, Serialize)]
pub struct CheckedJson<'a> {
    pub recordings: &'a [CheckedRecording],
    /// The inputs that could not be read, each in one line.
    pub unreadable: &'a [String],
    /// The exit status.
    pub status: u8,
}

impl Checked {
    /// Counts `analysis`'s findings of the kinds asked for, and prints them as paragraphs;
    /// for `--json`, keeps `rec`'s whole report instead (its locks and tasks too, which
    /// paragraphs do not need).
    fn add(
        &mut self,
        path: &Path,
        rec: &Recording,
        analysis: &mut Analysis,
        opts: &CheckOptions,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        analysis.findings.retain(|f| opts.wants(f.kind));
        self.findings += analysis.findings.len();
        if opts.json {
            self.reports.push(CheckedRecording {
                file: path.display().to_string(),
                damaged: rec.damage.is_damaged(),
                report: Report::of(rec, analysis),
            });
        } else {
            for f in &analysis.findings {
                write_paragraph(path, f, out)?;
            }
        }
        Ok(())
    }

    /// With `--json`, the document.
    fn finish(&self, opts: &CheckOptions, out: &mut impl Write) -> anyhow::Result<()> {
        if opts.json {
            let doc = CheckedJson {
                recordings: &self.reports,
                unreadable: &self.unreadable,
                status: self.status(opts.partial),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        Ok(())
    }

    /// The exit status: 2 when something could not be read, else 3 when something was
    /// damaged (unless accepted), else 1 when something was found, else 0.
    pub fn status(&self, partial: bool) -> u8 {
        if !self.unreadable.is_empty() {
            2
        } else if self.damaged > 0 && !partial {
            3
        } else if self.findings > 0 {
            1
        } else {
            0
        }
    }

    /// Takes account of `rec`, read from `path`: a recording damaged so that no record
    /// survives is unreadable; one otherwise damaged counts as damaged. Returns whether its
    /// findings can be asked for.
    fn admit(&mut self, path: &Path, rec: &Recording) -> bool {
        if !rec.damage.is_damaged() {
            return true;
        }
        if rec.threads.iter().all(|t| t.records == 0) {
            self.unreadable.push(format!(
                "{}: damaged, and no record survives ({})",
                path.display(),
                rec.damage.describe().unwrap_or_default()
            ));
            return false;
        }
        crate::warn_if_damaged(path, rec);
        self.damaged += 1;
        true
    }
}

/// Whether `p` is named as a dump or a ring file is.
fn has_recording_name(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e == "flightrec" || e == "flightrec-ring")
}

/// The recordings `paths` name: files as given, and the recordings in directories.
/// In a directory, a file named as a recording is one (and is unreadable when it is not);
/// other files are not looked at; a directory with no recording in it fails the gate, so
/// that a CI job pointed at the wrong place never passes on nothing.
fn inputs(paths: &[PathBuf]) -> Vec<Result<PathBuf, String>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = match std::fs::read_dir(p) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|f| f.is_file() && has_recording_name(f))
                    .collect(),
                Err(e) => {
                    out.push(Err(format!("{}: {e}", p.display())));
                    continue;
                }
            };
            if found.is_empty() {
                out.push(Err(format!(
                    "{}: holds no recording (no .flightrec or .flightrec-ring file)",
                    p.display()
                )));
            }
            found.sort();
            out.extend(found.into_iter().map(|f| {
                if flightrec_viewer::is_recording_file(&f) {
                    Ok(f)
                } else {
                    Err(format!("{}: not a recording", f.display()))
                }
            }));
        } else {
            out.push(Ok(p.clone()));
        }
    }
    out
}

/// Checks every recording `paths` name, printing each finding as a short paragraph.
pub fn run(
    paths: &[PathBuf],
    opts: &CheckOptions,
    out: &mut impl Write,
) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    if opts.merge {
        return run_merged(paths, opts, out);
    }
    let mut aside = Aside::default();
    for input in inputs(paths) {
        let path = match input {
            Ok(p) => p,
            Err(why) => {
                checked.unreadable.push(why);
                continue;
            }
        };
        // The previous recording is freed before the next is read: one at a time.
        aside.wait();
        let mut progress = crate::progress::Reading::start(&path);
        let read = flightrec_format::read_image(&path).and_then(|i| progress.decode(&i));
        let rec = match read {
            Ok(r) => r,
            Err(e) => {
                drop(progress);
                checked.unreadable.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        // Its warning, if damaged, is a line of its own, not drawn over.
        let admitted = progress.suspend(|| checked.admit(&path, &rec));
        progress.step("finding bugs");
        let analysis = admitted.then(|| Analysis::of(&rec, &opts.thresholds));
        drop(progress);
        let Some(mut analysis) = analysis else {
            continue;
        };
        checked.add(&path, &rec, &mut analysis, opts, out)?;
        aside.drop_later((rec, analysis));
    }
    checked.finish(opts, out)?;
    Ok(checked)
}

/// Checks the recordings `paths` name as one, merged in time order.
fn run_merged(
    paths: &[PathBuf],
    opts: &CheckOptions,
    out: &mut impl Write,
) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    let mut recs = Vec::new();
    let mut names = Vec::new();
    for input in inputs(paths) {
        let opened = input.and_then(|p| {
            flightrec_format::open(&p)
                .map(|r| (p.clone(), r))
                .map_err(|e| format!("{}: {e}", p.display()))
        });
        match opened {
            Ok((p, r)) => {
                if checked.admit(&p, &r) {
                    names.push(p.display().to_string());
                    recs.push(r);
                }
            }
            Err(why) => checked.unreadable.push(why),
        }
    }
    if recs.is_empty() {
        checked.finish(opts, out)?;
        return Ok(checked);
    }
    let (merged, labels) = merge(recs);
    let mut analysis = Analysis::of_processes(&merged, &labels, &opts.thresholds);
    let title = names.join(" + ");
    checked.add(Path::new(&title), &merged, &mut analysis, opts, out)?;
    Aside::default().drop_later((merged, analysis));
    checked.finish(opts, out)?;
    Ok(checked)
}

/// Recordings as one (`flightrec_analysis::merge`), with their processes' labels.
pub fn merge(mut recs: Vec<Recording>) -> (Recording, Vec<String>) {
    let processes = flightrec_analysis::merge::processes(&recs, &[]);
    for (k, rec) in recs.iter_mut().enumerate() {
        flightrec_analysis::merge::rename_into(k, rec, &processes[k].label);
    }
    let streams: Vec<_> = recs
        .iter_mut()
        .map(|r| std::mem::take(&mut r.records).into_iter())
        .collect();
    let records = flightrec_analysis::merge::merge_by_time(streams)
        .map(|(_, r)| r)
        .collect();
    let labels = processes.into_iter().map(|p| p.label).collect();
    (flightrec_analysis::merge::combine(recs, records), labels)
}

/// One finding as a paragraph: where, what, and its evidence records.
fn write_paragraph(path: &Path, f: &Finding, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}: {} {}: {}",
        path.display(),
        f.severity.slug(),
        f.kind.slug(),
        f.title
    )?;
    for e in &f.records {
        write!(
            out,
            "    {}  #{:<7} {}{}: {}",
            format_ts(e.ts),
            e.record,
            e.thread,
            e.task.as_ref().map_or(String::new(), |t| format!(" ({t})")),
            e.role
        )?;
        // A role that already says what the record says ("took `cache` while holding
        // `db`" for "took `cache`") is not followed by it again.
        if !e.role.contains(e.title.as_str()) {
            write!(out, ": {}", e.title)?;
        }
        if let Some(p) = &e.place {
            write!(out, "  at {p}")?;
        }
        writeln!(out)?;
    }
    if f.omitted > 0 {
        writeln!(
            out,
            "    … and {} more touch{} of {} in between, not shown",
            f.omitted,
            if f.omitted == 1 { "" } else { "es" },
            f.object.as_deref().unwrap_or("it")
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// `info`'s first section: each finding's title, worst first.
pub fn write_summary(found: &[Finding], out: &mut impl Write) -> anyhow::Result<()> {
    if found.is_empty() {
        writeln!(out, "findings:    none")?;
        return Ok(());
    }
    writeln!(
        out,
        "findings:    {} (flightrec check FILE shows their records)",
        found.len()
    )?;
    for f in found {
        writeln!(
            out,
            "  {:<8} {:<14} {}",
            f.severity.slug(),
            f.kind.slug(),
            f.title
        )?;
    }
    Ok(())
}
