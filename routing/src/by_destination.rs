//! Bindings grouped by destination, for the kinds whose routing visits every binding anyway:
//! fanout, which ignores keys, and headers, which tests each binding's arguments. Grouping lets
//! a destination be appended once however many of its bindings match, with no set to build.

use std::hash::Hash;

use rmqd_codec::{FieldTable, ShortStr};

use crate::args::Arguments;
use crate::hash::HashMap;

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    key: ShortStr,
    args: Arguments,
}

impl Binding {
    /// The arguments, sorted by key.
    pub(crate) fn args(&self) -> &FieldTable {
        self.args.table()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ByDestination<D> {
    by_dest: HashMap<D, Vec<Binding>>,
    len: usize,
}

impl<D> Default for ByDestination<D> {
    fn default() -> Self {
        ByDestination {
            by_dest: HashMap::default(),
            len: 0,
        }
    }
}

impl<D: Clone + Eq + Hash> ByDestination<D> {
    pub(crate) fn bind(&mut self, key: &ShortStr, args: &FieldTable, dest: D) -> bool {
        let args = Arguments::new(args);
        let bindings = self.by_dest.entry(dest).or_default();
        if bindings.iter().any(|b| b.key == *key && b.args == args) {
            return false;
        }
        bindings.push(Binding {
            key: key.clone(),
            args,
        });
        self.len += 1;
        true
    }

    pub(crate) fn unbind(&mut self, key: &[u8], args: &FieldTable, dest: &D) -> bool {
        let Some(bindings) = self.by_dest.get_mut(dest) else {
            return false;
        };
        let args = Arguments::new(args);
        let Some(at) = bindings
            .iter()
            .position(|b| b.key.as_bytes() == key && b.args == args)
        else {
            return false;
        };
        bindings.remove(at);
        if bindings.is_empty() {
            self.by_dest.remove(dest);
        }
        self.len -= 1;
        true
    }

    pub(crate) fn contains(&self, key: &[u8], args: &FieldTable, dest: &D) -> bool {
        let Some(bindings) = self.by_dest.get(dest) else {
            return false;
        };
        let args = Arguments::new(args);
        bindings
            .iter()
            .any(|b| b.key.as_bytes() == key && b.args == args)
    }

    pub(crate) fn remove_destination(&mut self, dest: &D) -> usize {
        let removed = self
            .by_dest
            .remove(dest)
            .map_or(0, |bindings| bindings.len());
        self.len -= removed;
        removed
    }
}

impl<D> ByDestination<D> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Each destination with its bindings, never an empty list.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (&D, &[Binding])> {
        self.by_dest
            .iter()
            .map(|(dest, bindings)| (dest, bindings.as_slice()))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldTable, &D)> {
        self.groups().flat_map(|(dest, bindings)| {
            bindings.iter().map(move |b| (&b.key, b.args.table(), dest))
        })
    }
}
