//! `flightrec info`: the findings, the header of a ring or dump in words, and per-thread
//! counts.

use std::io::Write;
use std::path::Path;

use flightrec_analysis::locks::{describe_deadlock, locks, LockState};
use flightrec_analysis::{Analysis, Names};
use flightrec_format::Recording;
use serde_json::{json, Value as Json};

use crate::cat::format_ts;

/// The header and per-thread counts of `rec`, and what `analysis` resolved of it.
pub fn run(
    path: &Path,
    rec: &Recording,
    analysis: &Analysis,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let names = Names::new(rec);
    let lock_list = locks(rec);
    let (found, folded, lock_state) = (&analysis.findings, &analysis.folded, &analysis.locks);
    let p = &rec.process;
    let d = &rec.damage;
    // Counts from damaged chunk headers can be anything: saturate, never overflow.
    let overwritten: u64 = rec
        .threads
        .iter()
        .fold(0, |n, t| n.saturating_add(t.overwritten));
    let dropped: u64 = rec
        .threads
        .iter()
        .fold(0, |n, t| n.saturating_add(t.dropped));
    let present: u64 = rec
        .threads
        .iter()
        .fold(0, |n, t| n.saturating_add(t.records));
    let stacks = flightrec_analysis::stacks::stacks(rec);
    if as_json {
        let report = flightrec_analysis::Report::of(rec, analysis);
        let threads: Vec<_> = rec
            .threads
            .iter()
            .map(|t| {
                json!({
                    "index": t.index, "tid": t.tid, "name": t.name, "records": t.records,
                    "overwritten": t.overwritten, "dropped": t.dropped,
                    "fully_overwritten": t.fully_overwritten,
                    "lost_to_damage": t.lost_to_damage, "gaps": t.gaps,
                    "first_ts": t.first_ts, "last_ts": t.last_ts, "covers_ns": t.covers_ns(),
                })
            })
            .collect();
        let v = json!({
            "file": path.display().to_string(),
            "kind": if rec.is_dump { "dump" } else { "ring" },
            "findings": report.findings,
            "service": p.service, "pid": p.pid, "host": p.host, "exe": p.exe, "args": p.args,
            "start_ts": rec.start_wall_ns,
            "trigger": {
                "reason": rec.trigger.reason.slug(), "signal": rec.trigger.signal,
                "fault_addr": rec.trigger.fault_addr, "tid": rec.trigger.tid,
                "ts": rec.trigger.wall_ns, "message": rec.trigger.message,
                "description": rec.trigger.describe(),
            },
            "ending": ending_json(rec.ending),
            "history": {
                "attached_chunks": rec.history.attached,
                "archived_chunks": rec.history.archived,
                "skipped_chunks": rec.history.skipped,
            },
            "folded_triggers": folded.iter().map(|f| json!({
                "ts": f.ts, "tid": f.tid,
                "reason": f.reason, "description": f.description,
            })).collect::<Vec<_>>(),
            "chunk_size": rec.chunk_size, "chunk_count": rec.chunk_count, "file_size": rec.file_size,
            "records": present, "overwritten": overwritten, "dropped": dropped,
            "damage": {
                "cut": d.cut, "missing_bytes": d.missing_bytes, "missing_chunks": d.missing_chunks,
                "bad_chunks": d.bad_chunks, "bad_chunk_tails": d.bad_chunk_tails,
                "claiming_chunks": d.claiming_chunks,
                "recycled_during_copy": d.recycled_during_copy, "meta_damaged": d.meta_damaged,
                "checksum_mismatch": d.checksum_mismatch.iter().map(|s| format!("{s:?}").to_lowercase()).collect::<Vec<_>>(),
                "compression_corrupt": d.compression_corrupt,
            },
            "threads": threads,
            "locks": report.locks,
            "tasks": report.tasks,
            "stacks": stacks_json(&stacks),
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    crate::check::write_summary(found, out)?;
    writeln!(
        out,
        "file:        {} ({})",
        path.display(),
        if rec.is_dump { "dump" } else { "ring file" }
    )?;
    writeln!(out, "service:     {}", p.service)?;
    writeln!(out, "pid:         {}", p.pid)?;
    writeln!(out, "host:        {}", p.host)?;
    writeln!(out, "exe:         {}", p.exe)?;
    writeln!(out, "args:        {}", p.args.join(" "))?;
    writeln!(out, "started:     {}", format_ts(rec.start_wall_ns))?;
    if rec.trigger.reason == flightrec_format::TriggerReason::None
        && rec.ending != flightrec_format::Ending::Unrecorded
    {
        writeln!(out, "trigger:     none (no dump was asked for)")?;
    } else {
        write!(out, "trigger:     {}", rec.trigger.describe())?;
        if rec.trigger.wall_ns > 0 {
            write!(out, " (at {})", format_ts(rec.trigger.wall_ns))?;
        }
        writeln!(out)?;
    }
    for f in folded {
        writeln!(
            out,
            "also:        {} (at {}, folded into this dump)",
            f.description,
            format_ts(f.ts)
        )?;
    }
    write!(
        out,
        "ended:       {}",
        rec.ending.describe_with(rec.trigger.reason)
    )?;
    match rec.ending {
        flightrec_format::Ending::Closed { wall_ns }
        | flightrec_format::Ending::Stopped { wall_ns, .. }
            if wall_ns > 0 =>
        {
            write!(out, " (at {})", format_ts(wall_ns))?
        }
        _ => {}
    }
    writeln!(out)?;
    let h = rec.history;
    writeln!(
        out,
        "ring:        {} chunks of {} KiB ({} bytes)",
        u64::from(rec.chunk_count).saturating_sub(h.attached),
        rec.chunk_size / 1024,
        rec.file_size
            .saturating_sub(h.attached * u64::from(rec.chunk_size))
    )?;
    if h.attached > 0 || h.archived > 0 || h.skipped > 0 {
        writeln!(
            out,
            "history:     {} chunks read from disk ({} written there, {} left out: budget, disk, or recycled first)",
            h.attached, h.archived, h.skipped
        )?;
    }
    writeln!(
        out,
        "records:     {} present, {overwritten} overwritten, {dropped} dropped",
        present
    )?;
    match d.describe() {
        Some(what) => writeln!(out, "damage:      {what}")?,
        None => writeln!(out, "damage:      none")?,
    }
    if d.recycled_during_copy > 0 {
        writeln!(
            out,
            "note:        {} chunks were recycled while the dump was copied",
            d.recycled_during_copy
        )?;
    }
    writeln!(out, "threads:     {}", rec.threads.len())?;
    writeln!(
        out,
        "  {:>5} {:>8}  {:<20} {:>9} {:>11} {:>8}  {:<30}  {:<30}  {:>10}",
        "index", "tid", "name", "records", "overwritten", "dropped", "first", "last", "covers"
    )?;
    for t in &rec.threads {
        let span = |ts: Option<i64>| ts.map_or_else(|| "-".to_string(), format_ts);
        let overwritten = if t.fully_overwritten {
            "all".to_string()
        } else if t.lost_to_damage {
            "? (damaged)".to_string()
        } else {
            t.overwritten.to_string()
        };
        writeln!(
            out,
            "  {:>5} {:>8}  {:<20} {:>9} {:>11} {:>8}  {:<30}  {:<30}  {:>10}{}",
            t.index,
            t.tid,
            t.name,
            t.records,
            overwritten,
            t.dropped,
            span(t.first_ts),
            span(t.last_ts),
            t.covers_ns()
                .map_or_else(|| "-".into(), flightrec_analysis::locks::duration),
            if t.gaps > 0 {
                format!("  ({} gap{})", t.gaps, if t.gaps == 1 { "" } else { "s" })
            } else {
                String::new()
            }
        )?;
    }
    write_locks(rec, &names, &lock_list, lock_state, out)?;
    if !stacks.is_empty() {
        writeln!(out, "stacks:      {}", stacks.len())?;
        write!(out, "{}", flightrec_analysis::stacks::render(&stacks))?;
        if let Some(hint) = flightrec_analysis::stacks::lines_hint(rec, &stacks) {
            writeln!(out, "  ({hint})")?;
        }
    }
    Ok(())
}

/// How the process ended, as data: `how` is `unrecorded`, `closed` or `stopped`.
fn ending_json(ending: flightrec_format::Ending) -> Json {
    match ending {
        flightrec_format::Ending::Unrecorded => json!({ "how": ending.slug() }),
        flightrec_format::Ending::Closed { wall_ns } => {
            json!({ "how": ending.slug(), "ts": wall_ns })
        }
        flightrec_format::Ending::Stopped { signal, wall_ns } => json!({
            "how": ending.slug(), "signal": signal,
            "signal_name": flightrec_format::trigger::signal_name(signal), "ts": wall_ns,
        }),
    }
}

/// The native stacks as data.
pub fn stacks_json(stacks: &[flightrec_analysis::stacks::ThreadStack]) -> Json {
    Json::Array(
        stacks
            .iter()
            .map(|t| {
                json!({
                    "tid": t.tid, "thread": t.thread,
                    "reason": format!("{:?}", t.reason).to_lowercase(),
                    "outcome": format!("{:?}", t.outcome).to_lowercase(),
                    "signal": t.signal, "ts": t.ts, "headline": t.headline(), "note": t.note,
                    "frames": t.frames.iter().map(|f| json!({
                        "address": f.address, "module": f.module, "offset": f.offset,
                        "function": f.function, "file": f.file, "line": f.line,
                        "inlined": f.inlined, "text": f.describe(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn write_locks(
    rec: &Recording,
    names: &Names<'_>,
    list: &[flightrec_analysis::LockInfo],
    state: &LockState,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let end = rec.trigger.wall_ns;
    let since = |t: i64| {
        if end > t {
            format!(
                "since {} ({:.3} s before the trigger)",
                format_ts(t),
                (end - t) as f64 / 1e9
            )
        } else {
            format!("since {}", format_ts(t))
        }
    };
    writeln!(out, "locks:       {}", list.len())?;
    for cycle in &state.deadlocks {
        writeln!(out, "  DEADLOCK:  {}", describe_deadlock(names, cycle))?;
    }
    for w in &state.waits {
        writeln!(
            out,
            "  waiting    {} waits for {}{} {}",
            names.thread_label(w.thread),
            names.lock_label(w.lock),
            if w.shared { " (shared)" } else { "" },
            since(w.since)
        )?;
    }
    for h in &state.holds {
        writeln!(
            out,
            "  holding    {} holds {}{} {}",
            names.thread_label(h.thread),
            names.lock_label(h.lock),
            if h.shared { " (shared)" } else { "" },
            since(h.since)
        )?;
    }
    writeln!(
        out,
        "  {:<24} {:<12} {:>8} {:>9} {:>12} {:>12}  made at",
        "lock", "kind", "taken", "contended", "max wait", "max hold"
    )?;
    for l in list {
        let s = state.stats.get(&l.id).copied().unwrap_or_default();
        writeln!(
            out,
            "  {:<24} {:<12} {:>8} {:>9} {:>12} {:>12}  {}",
            l.name,
            l.kind,
            s.acquisitions,
            s.contended,
            flightrec_analysis::locks::duration(s.max_wait_ns),
            flightrec_analysis::locks::duration(s.max_hold_ns),
            l.place.as_deref().unwrap_or("?")
        )?;
    }
    Ok(())
}
