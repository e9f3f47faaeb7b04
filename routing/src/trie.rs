//! The topic binding keys of one exchange, as a trie over their dot-separated words, so that
//! routing costs what the routing key's words lead to rather than what the exchange holds.
//! Each binding key's node holds what is bound under it, so that a match needs no second lookup
//! by the whole key.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use crate::hash::{HashMap, HashSet};

#[derive(Debug, Clone)]
pub(crate) struct PatternTrie<V> {
    root: Node<V>,
}

impl<V> Default for PatternTrie<V> {
    fn default() -> Self {
        PatternTrie {
            root: Node::default(),
        }
    }
}

#[derive(Debug, Clone)]
struct Node<V> {
    words: HashMap<Word, Node<V>>,
    star: Option<Box<Node<V>>>,
    hash: Option<Box<Node<V>>>,
    /// What is bound under the binding key whose words end here. Boxed because most nodes are
    /// inner ones with nothing bound, and every slot of their parents' maps (at least four per
    /// map) would carry the room otherwise: a quarter more memory at 100,000 bindings, for no
    /// fewer cache misses in simulation.
    value: Option<Box<V>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            words: HashMap::default(),
            star: None,
            hash: None,
            value: None,
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.star.is_none() && self.hash.is_none() && self.value.is_none()
    }

    /// The child a binding key's word leads to, if there is one.
    fn child(&self, word: &[u8]) -> Option<&Node<V>> {
        match word {
            b"*" => self.star.as_deref(),
            b"#" => self.hash.as_deref(),
            _ => self.words.get(word),
        }
    }

    fn child_mut(&mut self, word: &[u8]) -> Option<&mut Node<V>> {
        match word {
            b"*" => self.star.as_deref_mut(),
            b"#" => self.hash.as_deref_mut(),
            _ => self.words.get_mut(word),
        }
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        1 + self.words.values().map(Node::count).sum::<usize>()
            + self.star.as_deref().map_or(0, Node::count)
            + self.hash.as_deref().map_or(0, Node::count)
    }
}

/// Words this long or shorter are kept in the map's own slots.
const INLINE: usize = 22;

/// A literal word of a binding key. With many bindings the trie's maps do not stay in cache,
/// and a boxed word would cost one more miss per level of every walk; most words are short
/// enough to sit beside their hash. 22 bytes keep the enum at 24, a box's 16 plus what the tag
/// and length take anyway.
#[derive(Debug, Clone)]
enum Word {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<[u8]>),
}

impl Word {
    fn new(word: &[u8]) -> Word {
        match u8::try_from(word.len()) {
            Ok(len) if word.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..word.len()].copy_from_slice(word);
                Word::Inline { len, bytes }
            }
            _ => Word::Boxed(word.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Word::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Word::Boxed(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for Word {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Hash and Eq must agree with the slice's, which lookups by a routing key's word use.
impl Hash for Word {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Word {
    fn eq(&self, other: &Word) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Word {}

/// What is left of a key: `None` once every word is used, which is not the same as
/// `Some(b"")`, one empty word still to match.
type Rest<'k> = Option<&'k [u8]>;

fn first_word(rest: &[u8]) -> (&[u8], Rest<'_>) {
    match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
        None => (rest, None),
    }
}

/// RabbitMQ splits "" into no words at all and any other key at every '.', so "a." is "a"
/// followed by an empty word, and no key is a single empty word.
fn as_rest(key: &[u8]) -> Rest<'_> {
    (!key.is_empty()).then_some(key)
}

/// The words of a key, split as [`as_rest`] says.
fn words(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = as_rest(key);
    std::iter::from_fn(move || {
        let (word, after) = first_word(rest?);
        rest = after;
        Some(word)
    })
}

impl<V> PatternTrie<V> {
    /// What is bound under exactly this binding key.
    pub(crate) fn get(&self, pattern: &[u8]) -> Option<&V> {
        let mut node = &self.root;
        for word in words(pattern) {
            node = node.child(word)?;
        }
        node.value.as_deref()
    }

    pub(crate) fn get_mut(&mut self, pattern: &[u8]) -> Option<&mut V> {
        let mut node = &mut self.root;
        for word in words(pattern) {
            node = node.child_mut(word)?;
        }
        node.value.as_deref_mut()
    }

    /// What is bound under this binding key, made with `new` if nothing was.
    pub(crate) fn get_or_insert_with(&mut self, pattern: &[u8], new: impl FnOnce() -> V) -> &mut V {
        let mut node = &mut self.root;
        for word in words(pattern) {
            node = match word {
                b"*" => node.star.get_or_insert_with(Box::default),
                b"#" => node.hash.get_or_insert_with(Box::default),
                _ => node.words.entry(Word::new(word)).or_default(),
            };
        }
        node.value.get_or_insert_with(|| Box::new(new()))
    }

    /// Removes a binding key's value and every node only it needed.
    pub(crate) fn remove(&mut self, pattern: &[u8]) -> Option<V> {
        remove_below(&mut self.root, as_rest(pattern))
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        let mut stack = vec![&self.root];
        std::iter::from_fn(move || {
            while let Some(node) = stack.pop() {
                stack.extend(node.words.values());
                stack.extend(node.star.as_deref());
                stack.extend(node.hash.as_deref());
                if let Some(value) = node.value.as_deref() {
                    return Some(value);
                }
            }
            None
        })
    }

    /// Calls `found` once with the value of each binding key that matches `routing_key`.
    pub(crate) fn for_each_match<'t>(&'t self, routing_key: &[u8], found: impl FnMut(&'t V)) {
        let mut walk = Walk {
            visited: None,
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
fn remove_below<V>(node: &mut Node<V>, rest: Rest<'_>) -> Option<V> {
    let Some(words) = rest else {
        return node.value.take().map(|b| *b);
    };
    let (word, after) = first_word(words);
    let slot = match word {
        b"*" => &mut node.star,
        b"#" => &mut node.hash,
        _ => {
            let child = node.words.get_mut(word)?;
            let removed = remove_below(child, after);
            if child.is_empty() {
                node.words.remove(word);
            }
            return removed;
        }
    };
    let child = slot.as_deref_mut()?;
    let removed = remove_below(child, after);
    if child.is_empty() {
        *slot = None;
    }
    removed
}

struct Walk<V, F> {
    /// (node, words left) states already explored; see `visit`. None until the walk takes a
    /// second '#', so that the usual walk does not even seed a hasher.
    visited: Option<HashSet<(*const Node<V>, usize)>>,
    found: F,
}

impl<V, F> Walk<V, F> {
    /// Every call goes one node deeper, so recursion depth is bounded by the trie's height (at
    /// most 257 nodes) whatever the routing key's length; '#' tries its word counts in a loop.
    /// `hashes` counts the '#' edges taken to reach `node`.
    fn visit<'t>(&mut self, node: &'t Node<V>, rest: Rest<'_>, hashes: u8)
    where
        F: FnMut(&'t V),
    {
        // With at most one '#' on the path from the root, each (node, position) state is
        // reached at most once: the path fixes how many words every other edge takes. Below two,
        // many splits of the words between them reach the same state, and "#.#.#.#" against a
        // long key would branch exponentially; remembering states caps the work at
        // nodes × positions. Patterns with fewer '#' never allocate the set.
        if hashes >= 2 {
            let position = rest.map_or(usize::MAX, <[u8]>::len);
            let visited = self.visited.get_or_insert_with(HashSet::default);
            if !visited.insert((node as *const Node<V>, position)) {
                return;
            }
        }
        let Some(words) = rest else {
            if let Some(value) = node.value.as_deref() {
                (self.found)(value);
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

    fn insert(trie: &mut PatternTrie<String>, pattern: &str) {
        trie.get_or_insert_with(pattern.as_bytes(), || pattern.to_string());
    }

    fn matches(trie: &PatternTrie<String>, routing_key: &str) -> Vec<String> {
        let mut found = Vec::new();
        trie.for_each_match(routing_key.as_bytes(), |p| found.push(p.clone()));
        found.sort();
        found
    }

    #[test]
    fn each_matching_pattern_is_reported_once() {
        let mut trie = PatternTrie::default();
        for p in ["#.#", "#", "#.a.#", "*.#.#", "a", "#.#.#"] {
            insert(&mut trie, p);
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
    fn long_and_short_words_are_found_alike() {
        let long = "x".repeat(INLINE + 1);
        let longest = "y".repeat(255);
        let mut trie = PatternTrie::default();
        for p in [
            "",
            "a..b",
            &"z".repeat(INLINE),
            &long,
            &longest,
            &format!("{long}.*"),
        ] {
            insert(&mut trie, p);
        }
        assert_eq!(matches(&trie, &long), [long.as_str()]);
        assert_eq!(matches(&trie, &longest), [longest.as_str()]);
        assert_eq!(matches(&trie, &"z".repeat(INLINE)), ["z".repeat(INLINE)]);
        assert_eq!(
            matches(&trie, &"z".repeat(INLINE - 1)),
            Vec::<String>::new()
        );
        assert_eq!(matches(&trie, &format!("{long}.q")), [format!("{long}.*")]);
        assert_eq!(matches(&trie, "a..b"), ["a..b"]);
        trie.remove(longest.as_bytes());
        trie.remove(long.as_bytes());
        assert_eq!(matches(&trie, &longest), Vec::<String>::new());
        assert_eq!(matches(&trie, &format!("{long}.q")), [format!("{long}.*")]);
    }

    #[test]
    fn lookups_by_binding_key_take_wildcards_as_edges() {
        let mut trie = PatternTrie::default();
        for p in ["a.*", "a.#", "#", "", "a..b"] {
            insert(&mut trie, p);
        }
        for p in ["a.*", "a.#", "#", "", "a..b"] {
            assert_eq!(trie.get(p.as_bytes()).map(String::as_str), Some(p));
        }
        for p in ["a.b", "a", "*", "a.b.c", "a.", "a.*.#"] {
            assert_eq!(trie.get(p.as_bytes()), None, "{p:?}");
        }
        if let Some(value) = trie.get_mut(b"a.#") {
            value.push('!');
        }
        assert_eq!(matches(&trie, "a.x"), ["#", "a.#!", "a.*"]);
        let mut all: Vec<&str> = trie.values().map(String::as_str).collect();
        all.sort();
        assert_eq!(all, ["", "#", "a.#!", "a.*", "a..b"]);
        assert_eq!(trie.remove(b"a.#").as_deref(), Some("a.#!"));
        assert_eq!(trie.remove(b"a.#"), None);
    }

    #[test]
    fn inserting_twice_keeps_one_path() {
        let mut trie = PatternTrie::default();
        insert(&mut trie, "a.*.#");
        insert(&mut trie, "a.*.#");
        assert_eq!(trie.node_count(), 4);
        trie.remove(b"a.*.#");
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn removing_a_pattern_keeps_nodes_others_need() {
        let mut trie = PatternTrie::default();
        insert(&mut trie, "a.b");
        insert(&mut trie, "a");
        insert(&mut trie, "a.b.c");
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
        insert(&mut trie, "a.b");
        trie.remove(b"a");
        trie.remove(b"a.b.c");
        trie.remove(b"x.#");
        assert_eq!(trie.node_count(), 3);
        assert_eq!(matches(&trie, "a.b"), ["a.b"]);
    }
}
