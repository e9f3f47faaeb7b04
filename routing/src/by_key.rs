//! Bindings indexed by their exact binding key, for the kinds that look keys up: direct, whose
//! keys sit in a hash map, and topic, whose keys sit in the pattern trie that routing walks. A
//! reverse index by destination makes deleting a queue cost the bindings that queue had, not the
//! bindings the exchange has.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use rmqd_codec::{FieldTable, ShortStr};

use crate::args::Arguments;
use crate::hash::{HashMap, HashSet};

/// The destinations bound under one key, each with the argument sets it is bound with (almost
/// always exactly one).
pub(crate) type Destinations<D> = HashMap<D, Vec<Arguments>>;

/// Where [`ByKey`] keeps each key's destinations. ByKey removes a key once its last destination
/// goes, so that routing never finds a key with nobody bound to it.
pub(crate) trait KeyIndex<D>: Default {
    fn get(&self, key: &[u8]) -> Option<&Destinations<D>>;
    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Destinations<D>>;
    /// The destinations under `key`, none yet if the key is new.
    fn get_or_insert(&mut self, key: &ShortStr) -> &mut Destinations<D>;
    fn remove(&mut self, key: &[u8]);
    fn iter<'a>(&'a self) -> impl Iterator<Item = (&'a ShortStr, &'a Destinations<D>)>
    where
        D: 'a;
}

/// Keys looked up whole, as direct exchanges do.
pub(crate) type KeyMap<D> = HashMap<ShortStr, Destinations<D>>;

impl<D> KeyIndex<D> for KeyMap<D> {
    fn get(&self, key: &[u8]) -> Option<&Destinations<D>> {
        HashMap::get(self, key)
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Destinations<D>> {
        HashMap::get_mut(self, key)
    }

    fn get_or_insert(&mut self, key: &ShortStr) -> &mut Destinations<D> {
        self.entry(key.clone()).or_default()
    }

    fn remove(&mut self, key: &[u8]) {
        HashMap::remove(self, key);
    }

    fn iter<'a>(&'a self) -> impl Iterator<Item = (&'a ShortStr, &'a Destinations<D>)>
    where
        D: 'a,
    {
        HashMap::iter(self)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ByKey<D, K = KeyMap<D>> {
    by_key: K,
    keys_of: HashMap<D, HashSet<ShortStr>>,
    len: usize,
}

impl<D, K: Default> Default for ByKey<D, K> {
    fn default() -> Self {
        ByKey {
            by_key: K::default(),
            keys_of: HashMap::default(),
            len: 0,
        }
    }
}

impl<D: Clone + Eq + Hash, K: KeyIndex<D>> ByKey<D, K> {
    pub(crate) fn bind(&mut self, key: &ShortStr, args: &FieldTable, dest: D) -> bool {
        let args = Arguments::new(args);
        let dests = self.by_key.get_or_insert(key);
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

    /// Removes every binding to `dest`; returns how many.
    pub(crate) fn remove_destination(&mut self, dest: &D) -> usize {
        let Some(keys) = self.keys_of.remove(dest) else {
            return 0;
        };
        let mut removed = 0;
        for key in &keys {
            if let Some(dests) = self.by_key.get_mut(key.as_bytes()) {
                removed += dests.remove(dest).map_or(0, |variants| variants.len());
                if dests.is_empty() {
                    self.by_key.remove(key.as_bytes());
                }
            }
        }
        self.len -= removed;
        removed
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Destinations<D>> {
        self.by_key.get(key)
    }

    /// The keys with their destinations, for routing.
    pub(crate) fn keys(&self) -> &K {
        &self.by_key
    }

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
        self.len == 0 && self.by_key.iter().next().is_none() && self.keys_of.is_empty()
    }
}
