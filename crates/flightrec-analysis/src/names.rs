//! Names and titles: one rule each, whatever reads them.

use std::borrow::Cow;
use std::num::NonZeroU64;

use flightrec_format::{Callsite, Record, RecordKind, Recording};

/// Titles longer than this many characters are cut, and end in `…`.
pub const TITLE_MAX_CHARS: usize = 200;

/// The name of a span whose callsite is unknown (its creation was overwritten and no
/// context record named it).
pub const UNKNOWN_SPAN: &str = "span";

/// The name of a thread the recording does not describe.
pub const UNKNOWN_THREAD: &str = "?";

/// Resolved names over one recording's metadata. Free to make: it only borrows.
#[derive(Clone, Copy)]
pub struct Names<'r> {
    rec: &'r Recording,
}

impl<'r> Names<'r> {
    pub fn new(rec: &'r Recording) -> Names<'r> {
        Names { rec }
    }

    /// The recording the names are read from.
    pub fn recording(&self) -> &'r Recording {
        self.rec
    }

    pub fn callsite(&self, id: u32) -> Option<&'r Callsite> {
        self.rec.callsites.get(&id)
    }

    /// A field's name: from its callsite, else `field<index>`.
    pub fn field_name(&self, callsite: u32, index: u8) -> Cow<'r, str> {
        match self
            .callsite(callsite)
            .and_then(|c| c.fields.get(index as usize))
        {
            Some(n) => Cow::Borrowed(n.as_str()),
            None => Cow::Owned(format!("field{index}")),
        }
    }

    /// The callsite a span was created at, when known.
    pub fn span_callsite(&self, span: u64) -> Option<u32> {
        self.rec.span_callsites.get(&span).copied()
    }

    /// A span's name: its callsite's, else [`UNKNOWN_SPAN`].
    pub fn span_name(&self, span: u64) -> &'r str {
        self.callsite_name(self.span_callsite(span))
    }

    /// A (span) callsite's name, else [`UNKNOWN_SPAN`].
    pub fn callsite_name(&self, callsite: Option<u32>) -> &'r str {
        callsite
            .and_then(|c| self.callsite(c))
            .map_or(UNKNOWN_SPAN, |c| c.name.as_str())
    }

    /// A thread's name and OS thread id; [`UNKNOWN_THREAD`] and 0 when not described.
    pub fn thread(&self, index: u32) -> (&'r str, u64) {
        // `Recording::threads` is ordered by index.
        let threads = &self.rec.threads;
        match threads.binary_search_by_key(&index, |t| t.index) {
            Ok(i) => (threads[i].name.as_str(), threads[i].tid),
            Err(_) => threads
                .iter()
                .find(|t| t.index == index)
                .map_or((UNKNOWN_THREAD, 0), |t| (t.name.as_str(), t.tid)),
        }
    }

    /// A thread as people read it: its name, with its tid when another thread of the
    /// recording has the same name (three `tokio-worker`s), so no two read alike.
    pub fn thread_label(&self, index: u32) -> String {
        let (name, tid) = self.thread(index);
        let shared = self
            .rec
            .threads
            .iter()
            .any(|t| t.name == name && t.index != index);
        if shared {
            format!("{name}[{tid}]")
        } else {
            name.to_string()
        }
    }

    /// Where in the code `r` was written, `file:line`: a lock acquisition's own site (the
    /// caller of `lock()`), else its callsite's.
    pub fn place(&self, r: &Record) -> Option<String> {
        let site = self
            .lock_op(r)
            .and_then(|_| crate::lock_ops::acquisition_site(r))
            .and_then(|s| self.callsite(s))
            .filter(|c| flightrec_format::meta::lock_site::is(c));
        let c = site.or_else(|| self.callsite(r.callsite))?;
        let f = c.file.as_ref()?;
        Some(match c.line {
            Some(l) => format!("{f}:{l}"),
            None => f.clone(),
        })
    }

    /// The lock event `r` is, if it is one: the lock's id and what happened.
    pub fn lock_op(&self, r: &Record) -> Option<(u32, crate::lock_ops::LockOp)> {
        crate::lock_ops::lock_op(self.callsite(r.callsite), r)
    }

    /// A recorded lock's plain name: the one it was given or its type's, else `lock 7` when
    /// the recording does not describe it (for JSON and the viewer's bars;
    /// [`Names::lock_label`] is for sentences).
    pub fn lock_name(&self, id: u32) -> String {
        self.callsite(id)
            .map_or_else(|| format!("lock {id}"), |c| c.name.clone())
    }

    /// A recorded lock as people read it: `` `cache` `` when it was given a name, else its
    /// type and where it was made (`` `Mutex<u64>` made at src/shop.rs:40 ``), so two
    /// unnamed locks of one type read apart; `lock 7` when the recording does not
    /// describe it.
    pub fn lock_label(&self, id: u32) -> String {
        let Some(c) = self.callsite(id) else {
            return self.lock_name(id);
        };
        let kind = c.module.as_deref().unwrap_or("");
        let unnamed = !kind.is_empty()
            && c.name.starts_with(kind)
            && c.name[kind.len()..].starts_with('<')
            && c.name.ends_with('>');
        match (&c.file, c.line) {
            (Some(f), Some(l)) if unnamed => format!("`{}` made at {f}:{l}", c.name),
            (Some(f), None) if unnamed => format!("`{}` made in {f}", c.name),
            _ => format!("`{}`", c.name),
        }
    }

    /// A record's one-line title: a `follows_from` link names both spans; an event its
    /// message, else its callsite's name, else "event"; a span record its span's name.
    /// Cut at [`TITLE_MAX_CHARS`] characters.
    pub fn title(&self, r: &Record) -> Cow<'r, str> {
        match r.kind {
            RecordKind::FollowsFrom => {
                return Cow::Owned(format!(
                    "{} follows {}",
                    self.span_name(r.span),
                    self.span_name(r.follows().map_or(0, NonZeroU64::get))
                ))
            }
            RecordKind::Event => {}
            _ => return Cow::Borrowed(self.span_name(r.span)),
        }
        let cs = self.callsite(r.callsite);
        if let Some((id, op)) = self.lock_op(r) {
            return Cow::Owned(cut(crate::lock_ops::op_title(&self.lock_label(id), op)));
        }
        let message = r.fields.iter().find(|f| {
            cs.and_then(|c| c.fields.get(f.index as usize))
                .is_some_and(|n| n == "message")
        });
        if let Some(f) = message {
            return Cow::Owned(cut(f.value.to_text()));
        }
        cs.map_or(Cow::Borrowed("event"), |c| Cow::Borrowed(c.name.as_str()))
    }
}

/// Cuts `s` to [`TITLE_MAX_CHARS`] characters, marking the cut with `…`.
fn cut(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(TITLE_MAX_CHARS) {
        s.truncate(at);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cut_at_the_limit_in_characters_not_bytes() {
        let long: String = "é".repeat(TITLE_MAX_CHARS + 5);
        let t = cut(long);
        assert_eq!(t.chars().count(), TITLE_MAX_CHARS + 1);
        assert!(t.ends_with('…'));
        let exact: String = "a".repeat(TITLE_MAX_CHARS);
        assert_eq!(cut(exact.clone()), exact);
    }

    fn sample() -> Recording {
        flightrec_format::decode(&flightrec_format::testing::sample_image(1)).unwrap()
    }

    #[test]
    fn unnamed_locks_of_one_type_read_apart_and_named_ones_by_their_name() {
        let mut rec = sample();
        let lock = |id, name: &str, line| Callsite {
            module: Some("Mutex".into()),
            file: Some("src/shop.rs".into()),
            line: Some(line),
            ..flightrec_format::testing::callsite(id, false, name, &["op", "ns"])
        };
        rec.callsites.insert(90, lock(90, "Mutex<u64>", 40));
        rec.callsites.insert(91, lock(91, "Mutex<u64>", 52));
        rec.callsites.insert(92, lock(92, "cache", 60));
        // A name that merely starts like a type is a name.
        rec.callsites.insert(93, lock(93, "Mutexes", 61));
        let names = Names::new(&rec);
        assert_eq!(names.lock_label(90), "`Mutex<u64>` made at src/shop.rs:40");
        assert_eq!(names.lock_label(91), "`Mutex<u64>` made at src/shop.rs:52");
        assert_eq!(names.lock_label(92), "`cache`");
        assert_eq!(names.lock_label(93), "`Mutexes`");
        assert_eq!(names.lock_label(94), "lock 94");
    }

    #[test]
    fn threads_that_share_a_name_are_told_apart_by_tid_and_others_are_not() {
        let mut rec = sample();
        let mut t = rec.threads[0].clone();
        t.name = "worker".into();
        rec.threads = (0..3)
            .map(|i| flightrec_format::ThreadSummary {
                index: i,
                tid: 100 + i as u64,
                ..t.clone()
            })
            .collect();
        rec.threads[2].name = "main".into();
        let names = Names::new(&rec);
        assert_eq!(names.thread_label(0), "worker[100]");
        assert_eq!(names.thread_label(1), "worker[101]");
        assert_eq!(names.thread_label(2), "main");
    }
}
