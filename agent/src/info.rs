//! `flightrec info`: the header of a ring or dump in words, and per-thread counts.

use std::io::Write;
use std::path::Path;

use flightrec_format::Recording;
use serde_json::json;

use crate::cat::format_ts;

pub fn run(
    path: &Path,
    rec: &Recording,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let p = &rec.process;
    let d = &rec.damage;
    let overwritten: u64 = rec.threads.iter().map(|t| t.overwritten).sum();
    let dropped: u64 = rec.threads.iter().map(|t| t.dropped).sum();
    let present: u64 = rec.threads.iter().map(|t| t.records).sum();
    if as_json {
        let threads: Vec<_> = rec
            .threads
            .iter()
            .map(|t| {
                json!({
                    "index": t.index, "tid": t.tid, "name": t.name, "records": t.records,
                    "overwritten": t.overwritten, "dropped": t.dropped,
                    "fully_overwritten": t.fully_overwritten,
                    "lost_to_damage": t.lost_to_damage, "gaps": t.gaps,
                    "first_ts": t.first_ts, "last_ts": t.last_ts,
                })
            })
            .collect();
        let v = json!({
            "file": path.display().to_string(),
            "kind": if rec.is_dump { "dump" } else { "ring" },
            "service": p.service, "pid": p.pid, "host": p.host, "exe": p.exe, "args": p.args,
            "start_ts": rec.start_wall_ns,
            "trigger": {
                "reason": rec.trigger.reason.slug(), "signal": rec.trigger.signal,
                "fault_addr": rec.trigger.fault_addr, "tid": rec.trigger.tid,
                "ts": rec.trigger.wall_ns, "message": rec.trigger.message,
                "description": rec.trigger.describe(),
            },
            "chunk_size": rec.chunk_size, "chunk_count": rec.chunk_count, "file_size": rec.file_size,
            "records": present, "overwritten": overwritten, "dropped": dropped,
            "damage": {
                "missing_bytes": d.missing_bytes, "missing_chunks": d.missing_chunks,
                "bad_chunks": d.bad_chunks, "bad_chunk_tails": d.bad_chunk_tails,
                "claiming_chunks": d.claiming_chunks,
                "recycled_during_copy": d.recycled_during_copy, "meta_damaged": d.meta_damaged,
            },
            "threads": threads,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
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
    write!(out, "trigger:     {}", rec.trigger.describe())?;
    if rec.trigger.wall_ns > 0 {
        write!(out, " (at {})", format_ts(rec.trigger.wall_ns))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "ring:        {} chunks of {} KiB ({} bytes)",
        rec.chunk_count,
        rec.chunk_size / 1024,
        rec.file_size
    )?;
    writeln!(
        out,
        "records:     {} present, {overwritten} overwritten, {dropped} dropped",
        present
    )?;
    if d.is_damaged() {
        writeln!(
            out,
            "damage:      {} bytes missing, {} chunks missing, {} bad chunks, {} chunks with a bad tail{}",
            d.missing_bytes,
            d.missing_chunks,
            d.bad_chunks,
            d.bad_chunk_tails,
            if d.meta_damaged { ", meta log damaged" } else { "" }
        )?;
    } else {
        writeln!(out, "damage:      none")?;
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
        "  {:>5} {:>8}  {:<20} {:>9} {:>11} {:>8}  {:<30}  {:<30}",
        "index", "tid", "name", "records", "overwritten", "dropped", "first", "last"
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
            "  {:>5} {:>8}  {:<20} {:>9} {:>11} {:>8}  {:<30}  {:<30}{}",
            t.index,
            t.tid,
            t.name,
            t.records,
            overwritten,
            t.dropped,
            span(t.first_ts),
            span(t.last_ts),
            if t.gaps > 0 {
                format!("  ({} gaps)", t.gaps)
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}
