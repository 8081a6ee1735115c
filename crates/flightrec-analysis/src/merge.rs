//! Several recordings as one: their records in one time order, each named by its process.
//!
//! Recordings from different processes (or hosts) are aligned on wall-clock time: every
//! record's `ts` is already ns since the Unix epoch, from each recording's own clock anchors.
//! Between hosts, that alignment is only as good as the hosts' clock sync.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use flightrec_format::{Record, Recording};

/// Merges per-recording record streams (each in time order) into one, by time (ties by
/// recording, then stream order). Yields `(recording index, record)`. Memory: one record
/// per stream.
pub fn merge_by_time<I>(streams: Vec<I>) -> impl Iterator<Item = (usize, Record)>
where
    I: Iterator<Item = Record>,
{
    let mut streams = streams;
    let mut heads: Vec<Option<Record>> = streams.iter_mut().map(|s| s.next()).collect();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|r| Reverse((r.ts, i))))
        .collect();
    std::iter::from_fn(move || {
        let Reverse((_, i)) = heap.pop()?;
        let r = heads[i].take()?;
        heads[i] = streams[i].next();
        if let Some(n) = &heads[i] {
            heap.push(Reverse((n.ts, i)));
        }
        Some((i, r))
    })
}

/// How a recording's process is named among several: `service[pid]`, with the host when
/// the recordings come from more than one.
pub fn process_label(rec: &Recording, with_host: bool) -> String {
    let p = &rec.process;
    if with_host {
        format!("{}[{}]@{}", p.service, p.pid, p.host)
    } else {
        format!("{}[{}]", p.service, p.pid)
    }
}

/// Whether the recordings come from more than one host (their alignment is then only as
/// good as the hosts' clock sync).
pub fn several_hosts(recs: &[&Recording]) -> bool {
    recs.windows(2)
        .any(|w| w[0].process.host != w[1].process.host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_format::RecordKind;
    use std::sync::Arc;

    fn rec(ts: i64) -> Record {
        Record {
            ts,
            thread: 0,
            kind: RecordKind::Event,
            callsite: 1,
            span: 0,
            parent: None,
            follows: None,
            fields: Vec::new(),
            truncated: false,
            spans: Arc::from(&[][..]),
        }
    }

    #[test]
    fn streams_merge_in_time_order_ties_by_stream() {
        let a = vec![rec(1), rec(5), rec(9)];
        let b = vec![rec(2), rec(5), rec(10), rec(11)];
        let c: Vec<Record> = Vec::new();
        let merged: Vec<(usize, i64)> =
            merge_by_time(vec![a.into_iter(), b.into_iter(), c.into_iter()])
                .map(|(i, r)| (i, r.ts))
                .collect();
        assert_eq!(
            merged,
            vec![(0, 1), (1, 2), (0, 5), (1, 5), (0, 9), (1, 10), (1, 11)]
        );
    }
}
