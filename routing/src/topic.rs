//! Topic exchanges: binding keys are patterns of dot-separated words where `*` stands for
//! exactly one word and `#` for any number, none included. The bindings are kept in a trie of
//! their keys, so that finding the matching keys also finds their destinations.

use std::hash::Hash;

use rmqd_codec::{FieldTable, ShortStr};

use crate::by_key::{ByKey, Destinations, KeyIndex};
use crate::hash::HashSet;
use crate::trie::PatternTrie;

/// Each binding key's node holds the key, for listing, and its destinations.
pub(crate) type TopicKeys<D> = PatternTrie<(ShortStr, Destinations<D>)>;

impl<D> KeyIndex<D> for TopicKeys<D> {
    fn get(&self, key: &[u8]) -> Option<&Destinations<D>> {
        PatternTrie::get(self, key).map(|(_, dests)| dests)
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Destinations<D>> {
        PatternTrie::get_mut(self, key).map(|(_, dests)| dests)
    }

    fn get_or_insert(&mut self, key: &ShortStr) -> &mut Destinations<D> {
        let (_, dests) =
            self.get_or_insert_with(key.as_bytes(), || (key.clone(), Destinations::default()));
        dests
    }

    fn remove(&mut self, key: &[u8]) {
        PatternTrie::remove(self, key);
    }

    fn iter<'a>(&'a self) -> impl Iterator<Item = (&'a ShortStr, &'a Destinations<D>)>
    where
        D: 'a,
    {
        self.values().map(|(key, dests)| (key, dests))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TopicIndex<D> {
    bindings: ByKey<D, TopicKeys<D>>,
}

impl<D> Default for TopicIndex<D> {
    fn default() -> Self {
        TopicIndex {
            bindings: ByKey::default(),
        }
    }
}

impl<D: Clone + Eq + Hash> TopicIndex<D> {
    pub(crate) fn bind(&mut self, key: &ShortStr, args: &FieldTable, dest: D) -> bool {
        self.bindings.bind(key, args, dest)
    }

    pub(crate) fn unbind(&mut self, key: &[u8], args: &FieldTable, dest: &D) -> bool {
        self.bindings.unbind(key, args, dest)
    }

    pub(crate) fn remove_destination(&mut self, dest: &D) -> usize {
        self.bindings.remove_destination(dest)
    }

    pub(crate) fn route(&self, routing_key: &[u8], out: &mut Vec<D>) {
        let mut distinct = Distinct {
            start: out.len(),
            out,
            matched: false,
            seen: None,
        };
        self.bindings
            .keys()
            .for_each_match(routing_key, |(_, dests)| distinct.add(dests));
    }

    pub(crate) fn bindings(&self) -> &ByKey<D, TopicKeys<D>> {
        &self.bindings
    }

    #[cfg(test)]
    pub(crate) fn trie_node_count(&self) -> usize {
        self.bindings.keys().node_count()
    }
}

/// Up to this many destinations appended, a further one is checked against them one by one:
/// cheaper than hashing for the few queues a message usually reaches, and quadratic only up to
/// a bound.
const SCAN_UP_TO: usize = 16;

/// Appends destinations once each although several matching patterns may share them.
struct Distinct<'o, D> {
    out: &'o mut Vec<D>,
    /// Where this route's destinations start in `out`: what was there before is the caller's.
    start: usize,
    matched: bool,
    /// The destinations appended so far, once they are too many to scan.
    seen: Option<HashSet<D>>,
}

impl<D: Clone + Eq + Hash> Distinct<'_, D> {
    fn add(&mut self, dests: &Destinations<D>) {
        if !self.matched {
            // One pattern's destinations are distinct already: the usual single match needs
            // no check at all.
            self.out.extend(dests.keys().cloned());
            self.matched = true;
            return;
        }
        let appended = self.out.len() - self.start;
        if self.seen.is_none() && appended + dests.len() <= SCAN_UP_TO {
            for dest in dests.keys() {
                if !self.out[self.start..].contains(dest) {
                    self.out.push(dest.clone());
                }
            }
            return;
        }
        let seen = self
            .seen
            .get_or_insert_with(|| self.out[self.start..].iter().cloned().collect());
        for dest in dests.keys() {
            if !seen.contains(dest) {
                seen.insert(dest.clone());
                self.out.push(dest.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use rmqd_codec::FieldValue;

    use super::*;
    use crate::test_support::{key, table};

    fn index(bindings: &[(&str, u32)]) -> TopicIndex<u32> {
        let mut index = TopicIndex::default();
        for &(k, dest) in bindings {
            index.bind(&key(k), &FieldTable::new(), dest);
        }
        index
    }

    fn route(index: &TopicIndex<u32>, routing_key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        index.route(routing_key.as_bytes(), &mut out);
        let count = out.len();
        out.sort();
        out.dedup();
        assert_eq!(out.len(), count, "a destination was appended twice");
        out
    }

    fn matches(pattern: &str, routing_key: &str) -> bool {
        route(&index(&[(pattern, 1)]), routing_key) == [1]
    }

    #[test]
    fn hash_matches_zero_words() {
        assert!(matches("#", ""));
        assert!(matches("a.#", "a"));
        assert!(matches("#.b", "b"));
        assert!(matches("a.#.b", "a.b"));
    }

    #[test]
    fn hash_matches_every_key() {
        for k in ["", "a", "a.b", "a.b.c", ".", "..", "a..b", "#", "*"] {
            assert!(matches("#", k), "{k:?}");
        }
    }

    #[test]
    fn hash_matches_many_words() {
        assert!(matches("a.#", "a.b.c.d"));
        assert!(matches("#.b", "x.y.b"));
        assert!(matches("a.#.b", "a.x.y.b"));
        assert!(!matches("a.#.b", "a.x.y"));
        assert!(!matches("a.#", "b.a"));
        assert!(!matches("#.b", "b.a"));
    }

    #[test]
    fn empty_binding_key_matches_only_empty_routing_key() {
        assert!(matches("", ""));
        for k in ["a", ".", "#", "*"] {
            assert!(!matches("", k), "{k:?}");
        }
    }

    #[test]
    fn star_matches_exactly_one_word() {
        assert!(matches("*", "a"));
        assert!(!matches("*", ""));
        assert!(!matches("*", "a.b"));
        assert!(!matches("*", "."));
        assert!(matches("a.*", "a.b"));
        assert!(!matches("a.*", "a"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("*.b", "a.b"));
        assert!(!matches("*.b", "b"));
    }

    #[test]
    fn star_matches_an_empty_word() {
        assert!(matches("a.*", "a."));
        assert!(matches("*.*", "."));
        assert!(matches("*.a", ".a"));
    }

    #[test]
    fn star_hash_needs_at_least_one_word() {
        assert!(!matches("*.#", ""));
        assert!(matches("*.#", "a"));
        assert!(matches("*.#", "a.b.c"));
        assert!(!matches("#.*", ""));
        assert!(matches("#.*", "a"));
    }

    #[test]
    fn empty_words_are_words() {
        assert!(matches("a.*.b", "a..b"));
        assert!(!matches("a.b", "a..b"));
        assert!(matches("a..b", "a..b"));
        assert!(!matches("a..b", "a.b"));
        assert!(matches("a.#.b", "a..b"));
        assert!(matches(".", "."));
        assert!(!matches(".", ""));
        assert!(matches("a.", "a."));
        assert!(!matches("a.", "a"));
    }

    #[test]
    fn wildcards_count_only_as_whole_words() {
        assert!(matches("a*", "a*"));
        assert!(!matches("a*", "ab"));
        assert!(matches("#a", "#a"));
        assert!(!matches("#a", "ba"));
        assert!(!matches("a", "*"));
        assert!(!matches("a", "#"));
        assert!(matches("*", "#"));
    }

    #[test]
    fn literal_words_match_byte_for_byte() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.B"));
        assert!(!matches("a.b", "a.b "));
        assert!(matches("é.ü", "é.ü"));
    }

    #[test]
    fn destination_matched_by_several_patterns_appears_once() {
        let index = index(&[("#", 1), ("a.*", 1), ("a.b", 1), ("a.#", 2), ("*.b", 3)]);
        assert_eq!(route(&index, "a.b"), [1, 2, 3]);
        assert_eq!(route(&index, "a"), [1, 2]);
        assert_eq!(route(&index, "c"), [1]);
    }

    #[test]
    fn many_shared_destinations_appear_once() {
        // The trie reports a.b, a.*, *.b, # in that order, so the second pattern is checked by
        // scanning and the third switches to a set; the union is the same whatever the order.
        let mut bindings = Vec::new();
        for (pattern, dests) in [("a.b", 0..8), ("a.*", 4..12), ("*.b", 10..30), ("#", 0..40)] {
            bindings.extend(dests.map(|dest| (pattern, dest)));
        }
        let index = index(&bindings);
        assert_eq!(route(&index, "a.b"), (0..40).collect::<Vec<_>>());
        assert_eq!(route(&index, "x.b"), (0..40).collect::<Vec<_>>());
        assert_eq!(route(&index, "a.x"), (0..40).collect::<Vec<_>>());
        assert_eq!(route(&index, "x"), (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn arguments_distinguish_bindings_but_route_once() {
        let mut index = TopicIndex::default();
        let with = table(&[("x", FieldValue::I32(1))]);
        assert!(index.bind(&key("a.*"), &FieldTable::new(), 7));
        assert!(index.bind(&key("a.*"), &with, 7));
        assert!(!index.bind(&key("a.*"), &with, 7));
        assert_eq!(route(&index, "a.b"), [7]);
        assert!(index.unbind(b"a.*", &FieldTable::new(), &7));
        assert_eq!(route(&index, "a.b"), [7]);
        assert!(index.unbind(b"a.*", &with, &7));
        assert_eq!(route(&index, "a.b"), Vec::<u32>::new());
        assert_eq!(index.trie_node_count(), 1);
    }

    #[test]
    fn remove_destination_prunes_patterns_only_it_used() {
        let mut index = index(&[("a.#", 1), ("a.#", 2), ("b.*", 1), ("c", 2)]);
        assert_eq!(index.remove_destination(&1), 2);
        assert_eq!(route(&index, "a.x"), [2]);
        assert_eq!(route(&index, "b.x"), Vec::<u32>::new());
        assert_eq!(index.trie_node_count(), 4);
        assert_eq!(index.remove_destination(&2), 2);
        assert_eq!(index.remove_destination(&2), 0);
        assert_eq!(index.trie_node_count(), 1);
        assert!(index.bindings().is_fully_empty());
    }

    #[test]
    fn many_hashes_against_a_long_key_finish_at_once() {
        let long: Vec<&str> = vec!["w"; 100];
        let long_key = long.join(".");
        let mut pattern = vec!["#"; 10];
        pattern.push("x");
        let index = index(&[(&pattern.join("."), 1), ("#.#.#.#.#.#.#.#", 2)]);
        assert_eq!(route(&index, &long_key), [2]);
        assert_eq!(route(&index, &format!("{long_key}.x")), [1, 2]);
        // A 255-byte key of empty words is the most words a routing key can have.
        assert_eq!(route(&index, &".".repeat(255)), [2]);
    }

    #[test]
    fn churn_leaves_only_the_root() {
        // A small xorshift keeps the sequence reproducible without another dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        const WORDS: [&str; 8] = ["a", "b", "c", "", "*", "#", "long-word", "*"];
        let mut index = TopicIndex::default();
        let mut live = Vec::new();
        for _ in 0..100_000 {
            let words: Vec<&str> = (0..next(6)).map(|_| WORDS[next(8) as usize]).collect();
            let binding = (key(&words.join(".")), next(100) as u32);
            if index.bind(&binding.0, &FieldTable::new(), binding.1) {
                live.push(binding);
            }
            if !live.is_empty() && next(3) == 0 {
                let (k, dest) = live.swap_remove(next(live.len() as u64) as usize);
                assert!(index.unbind(k.as_bytes(), &FieldTable::new(), &dest));
            }
        }
        assert_eq!(index.bindings().len(), live.len());
        while !live.is_empty() {
            let (k, dest) = live.swap_remove(next(live.len() as u64) as usize);
            assert!(index.unbind(k.as_bytes(), &FieldTable::new(), &dest));
        }
        assert_eq!(index.trie_node_count(), 1);
        assert!(index.bindings().is_fully_empty());
    }

    /// RabbitMQ's rule, written plainly: the trie must agree with it.
    fn reference_match(pattern: &[&str], words: &[&str]) -> bool {
        match pattern.split_first() {
            None => words.is_empty(),
            Some((&"#", rest)) => {
                (0..=words.len()).any(|skip| reference_match(rest, &words[skip..]))
            }
            Some((&"*", rest)) => !words.is_empty() && reference_match(rest, &words[1..]),
            Some((word, rest)) => words.first() == Some(word) && reference_match(rest, &words[1..]),
        }
    }

    fn split(key: &str) -> Vec<&str> {
        if key.is_empty() {
            Vec::new()
        } else {
            key.split('.').collect()
        }
    }

    fn dotted(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(alphabet), 0..=max).prop_map(|w| w.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn trie_agrees_with_the_plain_matcher(
            bindings in prop::collection::vec(
                (dotted(&["a", "b", "c", "*", "#", ""], 5), 0u32..6),
                0..24,
            ),
            routing_keys in prop::collection::vec(dotted(&["a", "b", "c", ""], 6), 1..16),
        ) {
            let mut index = TopicIndex::default();
            for (pattern, dest) in &bindings {
                index.bind(&key(pattern), &FieldTable::new(), *dest);
            }
            for routing_key in &routing_keys {
                let expected: BTreeSet<u32> = bindings
                    .iter()
                    .filter(|(pattern, _)| reference_match(&split(pattern), &split(routing_key)))
                    .map(|(_, dest)| *dest)
                    .collect();
                let expected: Vec<u32> = expected.into_iter().collect();
                prop_assert_eq!(route(&index, routing_key), expected, "key {:?}", routing_key);
            }
        }
    }
}
