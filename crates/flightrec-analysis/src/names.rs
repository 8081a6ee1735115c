//! Names and titles: one rule each, whatever reads them.

use std::borrow::Cow;

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

    /// A record's one-line title: a `follows_from` link names both spans; an event its
    /// message, else its callsite's name, else "event"; a span record its span's name.
    /// Cut at [`TITLE_MAX_CHARS`] characters.
    pub fn title(&self, r: &Record) -> Cow<'r, str> {
        match r.kind {
            RecordKind::FollowsFrom => {
                return Cow::Owned(format!(
                    "{} follows {}",
                    self.span_name(r.span),
                    self.span_name(r.follows.unwrap_or(0))
                ))
            }
            RecordKind::Event => {}
            _ => return Cow::Borrowed(self.span_name(r.span)),
        }
        let cs = self.callsite(r.callsite);
        if let Some((_, op)) = crate::locks::lock_op(self, r) {
            let name = cs.map_or("lock", |c| c.name.as_str());
            return Cow::Owned(cut(crate::locks::op_title(name, op)));
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
}
