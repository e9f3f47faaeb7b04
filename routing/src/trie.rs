//! The topic binding keys of one exchange, as a trie over their dot-separated words, so that
//! routing costs what the routing key's words lead to rather than what the exchange holds.

use std::collections::{HashMap, HashSet};

use rmqd_codec::ShortStr;

#[derive(Debug, Clone, Default)]
pub(crate) struct PatternTrie {
    root: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    words: HashMap<Box<[u8]>, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// The binding key whose words end here.
    pattern: Option<ShortStr>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.words.is_empty()
            && self.star.is_none()
            && self.hash.is_none()
            && self.pattern.is_none()
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        1 + self.words.values().map(Node::count).sum::<usize>()
            + self.star.as_deref().map_or(0, Node::count)
            + self.hash.as_deref().map_or(0, Node::count)
    }
}

/// RabbitMQ splits "" into no words at all and any other key at every '.', so "a." is "a"
/// followed by an empty word, and no key is a single empty word.
fn words(key: &[u8]) -> Vec<&[u8]> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split(|&b| b == b'.').collect()
    }
}

/// What is left of a routing key: `None` once every word is used, which is not the same as
/// `Some(b"")`, one empty word still to match.
type Rest<'k> = Option<&'k [u8]>;

fn first_word(rest: &[u8]) -> (&[u8], Rest<'_>) {
    match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
        None => (rest, None),
    }
}

fn as_rest(key: &[u8]) -> Rest<'_> {
    (!key.is_empty()).then_some(key)
}

impl PatternTrie {
    /// Adds a binding key; adding one already present changes nothing.
    pub(crate) fn insert(&mut self, pattern: &ShortStr) {
        let mut node = &mut self.root;
        for word in words(pattern.as_bytes()) {
            node = match word {
                b"*" => node.star.get_or_insert_with(Box::default),
                b"#" => node.hash.get_or_insert_with(Box::default),
                _ => node.words.entry(word.into()).or_default(),
            };
        }
        node.pattern = Some(pattern.clone());
    }

    /// Removes a binding key and every node only it needed.
    pub(crate) fn remove(&mut self, pattern: &[u8]) {
        remove_below(&mut self.root, &words(pattern));
    }

    /// Calls `found` once with each binding key that matches `routing_key`.
    pub(crate) fn for_each_match<'t>(
        &'t self,
        routing_key: &[u8],
        found: impl FnMut(&'t ShortStr),
    ) {
        let mut walk = Walk {
            visited: HashSet::new(),
            found,
        };
        walk.visit(&self.root, as_rest(routing_key), 0);
    }

    #[cfg(test)]
    pub(crate) fn node_count(&self) -> usize {
        self.root.count()
    }
}

// Recursion depth is the pattern's word count, which a shortstr bounds at 256 (255 dots).
fn remove_below(node: &mut Node, words: &[&[u8]]) {
    let Some((&word, rest)) = words.split_first() else {
        node.pattern = None;
        return;
    };
    let slot = match word {
        b"*" => &mut node.star,
        b"#" => &mut node.hash,
        _ => {
            if let Some(child) = node.words.get_mut(word) {
                remove_below(child, rest);
                if child.is_empty() {
                    node.words.remove(word);
                }
            }
            return;
        }
    };
    if let Some(child) = slot {
        remove_below(child, rest);
        if child.is_empty() {
            *slot = None;
        }
    }
}

struct Walk<F> {
    /// (node, words left) states already explored; see `visit`.
    visited: HashSet<(*const Node, usize)>,
    found: F,
}

impl<F> Walk<F> {
    /// Every call goes one node deeper, so recursion depth is bounded by the trie's height (at
    /// most 257 nodes) whatever the routing key's length; '#' tries its word counts in a loop.
    /// `hashes` counts the '#' edges taken to reach `node`.
    fn visit<'t>(&mut self, node: &'t Node, rest: Rest<'_>, hashes: u8)
    where
        F: FnMut(&'t ShortStr),
    {
        // With at most one '#' on the path from the root, each (node, position) state is
        // reached at most once: the path fixes how many words every other edge takes. Below two,
        // many splits of the words between them reach the same state, and "#.#.#.#" against a
        // long key would branch exponentially; remembering states caps the work at
        // nodes × positions. Patterns with fewer '#' never allocate the set.
        if hashes >= 2 {
            let position = rest.map_or(usize::MAX, <[u8]>::len);
            if !self.visited.insert((node as *const Node, position)) {
                return;
            }
        }
        let Some(words) = rest else {
            if let Some(pattern) = &node.pattern {
                (self.found)(pattern);
            }
            if let Some(hash) = &node.hash {
                self.visit(hash, None, hashes.saturating_add(1));
            }
            return;
        };
        let (word, after) = first_word(words);
        if let Some(child) = node.words.get(word) {
            self.visit(child, after, hashes);
        }
        if let Some(star) = &node.star {
            self.visit(star, after, hashes);
        }
        if let Some(hash) = &node.hash {
            let hashes = hashes.saturating_add(1);
            let mut left = Some(words);
            loop {
                self.visit(hash, left, hashes);
                match left {
                    Some(words) => left = first_word(words).1,
                    None => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::key;

    fn matches(trie: &PatternTrie, routing_key: &str) -> Vec<String> {
        let mut found = Vec::new();
        trie.for_each_match(routing_key.as_bytes(), |p| found.push(p.to_string()));
        found.sort();
        found
    }

    #[test]
    fn each_matching_pattern_is_reported_once() {
        let mut trie = PatternTrie::default();
        for p in ["#.#", "#", "#.a.#", "*.#.#", "a", "#.#.#"] {
            trie.insert(&key(p));
        }
        assert_eq!(
            matches(&trie, "a"),
            ["#", "#.#", "#.#.#", "#.a.#", "*.#.#", "a"]
        );
        assert_eq!(
            matches(&trie, "a.a.a"),
            ["#", "#.#", "#.#.#", "#.a.#", "*.#.#"]
        );
    }

    #[test]
    fn inserting_twice_keeps_one_path() {
        let mut trie = PatternTrie::default();
        trie.insert(&key("a.*.#"));
        trie.insert(&key("a.*.#"));
        assert_eq!(trie.node_count(), 4);
        trie.remove(b"a.*.#");
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn removing_a_pattern_keeps_nodes_others_need() {
        let mut trie = PatternTrie::default();
        trie.insert(&key("a.b"));
        trie.insert(&key("a"));
        trie.insert(&key("a.b.c"));
        trie.remove(b"a.b");
        assert_eq!(trie.node_count(), 4);
        assert_eq!(matches(&trie, "a.b.c"), ["a.b.c"]);
        assert_eq!(matches(&trie, "a"), ["a"]);
        trie.remove(b"a.b.c");
        assert_eq!(trie.node_count(), 2);
        trie.remove(b"a");
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn removing_an_absent_pattern_changes_nothing() {
        let mut trie = PatternTrie::default();
        trie.insert(&key("a.b"));
        trie.remove(b"a");
        trie.remove(b"a.b.c");
        trie.remove(b"x.#");
        assert_eq!(trie.node_count(), 3);
        assert_eq!(matches(&trie, "a.b"), ["a.b"]);
    }
}
