//! Bindings indexed by their exact binding key, for the kinds that look keys up: direct, and
//! topic once its trie has named the matching patterns. A reverse index by destination makes
//! deleting a queue cost the bindings that queue had, not the bindings the exchange has.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use rmqd_codec::{FieldTable, ShortStr};

use crate::args::Arguments;

/// The destinations bound under one key, each with the argument sets it is bound with (almost
/// always exactly one).
pub(crate) type Destinations<D> = HashMap<D, Vec<Arguments>>;

#[derive(Debug, Clone)]
pub(crate) struct ByKey<D> {
    by_key: HashMap<ShortStr, Destinations<D>>,
    keys_of: HashMap<D, HashSet<ShortStr>>,
    len: usize,
}

impl<D> Default for ByKey<D> {
    fn default() -> Self {
        ByKey {
            by_key: HashMap::new(),
            keys_of: HashMap::new(),
            len: 0,
        }
    }
}

impl<D: Clone + Eq + Hash> ByKey<D> {
    pub(crate) fn bind(&mut self, key: &ShortStr, args: &FieldTable, dest: D) -> bool {
        let args = Arguments::new(args);
        let dests = self.by_key.entry(key.clone()).or_default();
        match dests.entry(dest) {
            Entry::Occupied(mut bound) => {
                if bound.get().contains(&args) {
                    return false;
                }
                bound.get_mut().push(args);
            }
            Entry::Vacant(unbound) => {
                self.keys_of
                    .entry(unbound.key().clone())
                    .or_default()
                    .insert(key.clone());
                unbound.insert(vec![args]);
            }
        }
        self.len += 1;
        true
    }

    pub(crate) fn unbind(&mut self, key: &[u8], args: &FieldTable, dest: &D) -> bool {
        let Some(dests) = self.by_key.get_mut(key) else {
            return false;
        };
        let Some(variants) = dests.get_mut(dest) else {
            return false;
        };
        let args = Arguments::new(args);
        let Some(at) = variants.iter().position(|a| *a == args) else {
            return false;
        };
        variants.remove(at);
        if variants.is_empty() {
            dests.remove(dest);
            if dests.is_empty() {
                self.by_key.remove(key);
            }
            if let Some(keys) = self.keys_of.get_mut(dest) {
                keys.remove(key);
                if keys.is_empty() {
                    self.keys_of.remove(dest);
                }
            }
        }
        self.len -= 1;
        true
    }

    pub(crate) fn contains(&self, key: &[u8], args: &FieldTable, dest: &D) -> bool {
        self.by_key
            .get(key)
            .and_then(|dests| dests.get(dest))
            .is_some_and(|variants| variants.contains(&Arguments::new(args)))
    }

    /// Removes every binding to `dest`; `emptied` hears of each key no binding uses any more.
    pub(crate) fn remove_destination(
        &mut self,
        dest: &D,
        mut emptied: impl FnMut(&ShortStr),
    ) -> usize {
        let Some(keys) = self.keys_of.remove(dest) else {
            return 0;
        };
        let mut removed = 0;
        for key in &keys {
            if let Some(dests) = self.by_key.get_mut(key) {
                removed += dests.remove(dest).map_or(0, |variants| variants.len());
                if dests.is_empty() {
                    self.by_key.remove(key);
                    emptied(key);
                }
            }
        }
        self.len -= removed;
        removed
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Destinations<D>> {
        self.by_key.get(key)
    }

    pub(crate) fn has_key(&self, key: &[u8]) -> bool {
        self.by_key.contains_key(key)
    }
}

impl<D> ByKey<D> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldTable, &D)> {
        self.by_key.iter().flat_map(|(key, dests)| {
            dests.iter().flat_map(move |(dest, variants)| {
                variants.iter().map(move |args| (key, args.table(), dest))
            })
        })
    }

    #[cfg(test)]
    pub(crate) fn is_fully_empty(&self) -> bool {
        self.len == 0 && self.by_key.is_empty() && self.keys_of.is_empty()
    }
}
