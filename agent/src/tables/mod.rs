//! A recording as tables: Parquet files that DuckDB, Spark, Trino/Athena and Polars query
//! across thousands of dumps. `docs/tables.md` is their contract.
//!
//! One file per table per recording, named by the recording's id (the name its dump has
//! in the bucket), so a fleet's files union by directory. Everything is read through the
//! reading layer (`flightrec_analysis`), the one meaning every reader shares: the spans,
//! tasks, lock intervals and findings are those `cat`, the exporters and the viewer show.
//!
//! Files are written under temporary names and renamed only when all of a recording's
//! tables are complete: a final name never holds half a table.

mod columns;
mod fill;
pub mod schema;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub use fill::recording_id;

/// The tables, in the order they are written.
pub const TABLES: [&str; 6] = [
    "recordings",
    "records",
    "spans",
    "tasks",
    "locks",
    "findings",
];

/// One table file written for a recording.
#[derive(Debug, Clone)]
pub struct Written {
    pub table: &'static str,
    pub path: PathBuf,
    pub rows: u64,
}

/// A recording's tables, as written.
#[derive(Debug, Clone)]
pub struct Made {
    /// The recording's id (every row's `recording_id`, every file's name).
    pub id: String,
    pub written: Vec<Written>,
    /// The kinds of its findings (`lock_order`...), once each.
    pub finding_kinds: Vec<String>,
}

/// What a recording's id is: the name of its dump where it lies, without the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdFrom {
    /// A local file's name (`checkout-4242-20261206T101500.123Z-panic`), else (standard
    /// input) the name the dump would have in a bucket.
    FileName,
    /// The dump's name in a bucket (`<host>-<pid>-<time>-<trigger>`).
    Bucket,
}

/// A recording's tables, written as `<dir>/<table>/<recording id>.parquet`. The recording
/// is decoded whole once: memory grows with the records it holds (never with the ring's
/// capacity, since a dump's image holds only the chunks it kept).
pub fn write_recording(
    input: &Path,
    image: &flightrec_format::Image,
    dir: &Path,
    id_from: IdFrom,
) -> anyhow::Result<Made> {
    let rec = image.decode()?;
    crate::warn_if_damaged(input, &rec);
    let file_stem = input
        .file_stem()
        .filter(|_| input.as_os_str() != "-")
        .map(|s| s.to_string_lossy().into_owned());
    let id = match (id_from, file_stem) {
        (IdFrom::FileName, Some(stem)) => stem,
        _ => recording_id(&rec),
    };
    let mut tmps = Vec::new();
    let mut files = Vec::new();
    for table in TABLES {
        let table_dir = dir.join(table);
        std::fs::create_dir_all(&table_dir)
            .with_context(|| format!("creating {}", table_dir.display()))?;
        // Nameless until complete: a killed export leaves nothing that looks like output.
        let tmp = crate::output_file::OutputFile::new_in(&table_dir)
            .with_context(|| format!("writing in {}", table_dir.display()))?;
        files.push(BufWriter::with_capacity(1 << 20, tmp.file().try_clone()?));
        tmps.push((table, tmp, table_dir.join(format!("{id}.parquet"))));
    }
    let (rows, finding_kinds) = fill::write_all(&rec, &id, files).with_context(|| {
        format!(
            "{}: writing its tables into {}",
            input.display(),
            dir.display()
        )
    })?;
    let mut written = Vec::new();
    for ((table, tmp, path), rows) in tmps.into_iter().zip(rows) {
        tmp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(Written { table, path, rows });
    }
    Ok(Made {
        id,
        written,
        finding_kinds,
    })
}

/// `flightrec export FILE... --format parquet -o DIR`: each recording's tables under `DIR`,
/// one line per recording.
pub fn export(inputs: &[PathBuf], dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    if inputs.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        anyhow::bail!("standard input (-) can be given once");
    }
    if dir.as_os_str() == "-" {
        anyhow::bail!("parquet writes a directory of tables: say which with -o DIR, not -o -");
    }
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "{}: not a directory (parquet writes a directory of tables)",
            dir.display()
        );
    }
    for input in inputs {
        let image =
            flightrec_format::read_image(input).with_context(|| input.display().to_string())?;
        let made = write_recording(input, &image, dir, IdFrom::FileName)?;
        let rows: Vec<String> = made
            .written
            .iter()
            // Rows per table, by the table's name: a threaded program's `tasks` table holds
            // requests, so "2586 tasks" would say what it is not.
            .map(|w| format!("{} rows in {}", w.rows, w.table))
            .collect();
        writeln!(
            out,
            "{}: {} -> {} ({})",
            input.display(),
            made.id,
            dir.display(),
            rows.join(", ")
        )?;
    }
    Ok(())
}
