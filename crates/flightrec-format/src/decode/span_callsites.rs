//! Which callsite each span id has: a sorted list rather than a hash map.

/// The callsite of every span id a recording names, sorted by id (one entry an id). A
/// recording names millions of spans: a hash map of them took about 50 bytes a span, with
/// its spare capacity and its control bytes; this takes 16, and a lookup is a binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanCallsites {
    /// Sorted by span id, one entry an id.
    by_span: Vec<(u64, u32)>,
}

impl SpanCallsites {
    /// The callsite of `span`, if the recording names it.
    pub fn get(&self, span: &u64) -> Option<&u32> {
        let i = self.by_span.binary_search_by_key(span, |&(s, _)| s).ok()?;
        Some(&self.by_span[i].1)
    }

    pub fn contains_key(&self, span: &u64) -> bool {
        self.get(span).is_some()
    }

    pub fn len(&self) -> usize {
        self.by_span.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_span.is_empty()
    }

    /// `(span, callsite)`, by span id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.by_span.iter().copied()
    }

    /// Sorts and keeps one entry an id: the last given, as a map's `insert` would.
    fn settle(&mut self) {
        // Stable, so equal ids keep the order they were given in.
        self.by_span.sort_by_key(|&(s, _)| s);
        let v = &mut self.by_span;
        let mut kept = 0;
        for i in 0..v.len() {
            if kept > 0 && v[kept - 1].0 == v[i].0 {
                v[kept - 1] = v[i];
            } else {
                v[kept] = v[i];
                kept += 1;
            }
        }
        v.truncate(kept);
        v.shrink_to_fit();
    }
}

impl FromIterator<(u64, u32)> for SpanCallsites {
    fn from_iter<I: IntoIterator<Item = (u64, u32)>>(iter: I) -> SpanCallsites {
        let mut s = SpanCallsites {
            by_span: iter.into_iter().collect(),
        };
        s.settle();
        s
    }
}

impl Extend<(u64, u32)> for SpanCallsites {
    fn extend<I: IntoIterator<Item = (u64, u32)>>(&mut self, iter: I) {
        self.by_span.extend(iter);
        self.settle();
    }
}

impl IntoIterator for SpanCallsites {
    type Item = (u64, u32);
    type IntoIter = std::vec::IntoIter<(u64, u32)>;
    fn into_iter(self) -> Self::IntoIter {
        self.by_span.into_iter()
    }
}

impl std::ops::Index<&u64> for SpanCallsites {
    type Output = u32;
    fn index(&self, span: &u64) -> &u32 {
        self.get(span).expect("a span the recording names")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looked up as a map would be: the last callsite given for an id wins, unknown ids
    /// are absent, and extending keeps the order.
    #[test]
    fn it_answers_as_a_map_would() {
        let mut s: SpanCallsites = [(5, 1), (2, 7), (5, 3), (9, 4)].into_iter().collect();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s.get(&5), s.get(&2), s.get(&9), s.get(&4)),
            (Some(&3), Some(&7), Some(&4), None)
        );
        s.extend([(4, 8), (2, 6)]);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [(2, 6), (4, 8), (5, 3), (9, 4)]
        );
        assert_eq!(s[&4], 8);
    }
}
