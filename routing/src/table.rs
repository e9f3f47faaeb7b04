//! The bindings of one exchange, whatever its kind.

use std::hash::Hash;

use rmqd_codec::{FieldTable, ShortStr};

use crate::by_destination::ByDestination;
use crate::by_key::ByKey;
use crate::kind::ExchangeKind;
use crate::topic::TopicIndex;
use crate::{direct, fanout, headers};

/// All bindings whose source is one exchange, indexed for routing by the exchange's kind.
///
/// A binding is identified by its routing key, its arguments and its destination. Arguments
/// are compared as RabbitMQ compares them: regardless of the order of different keys but with
/// exact types and values, so `{a: 1, b: 2}` and `{b: 2, a: 1}` are the same binding while an
/// `I32` 1 and an `I64` 1 make two. Like RabbitMQ, the table keeps arguments sorted by key, and
/// [`iter`](Self::iter) lists them that way.
#[derive(Debug, Clone)]
pub struct BindingTable<D> {
    index: Index<D>,
}

#[derive(Debug, Clone)]
enum Index<D> {
    Direct(ByKey<D>),
    Fanout(ByDestination<D>),
    Topic(TopicIndex<D>),
    Headers(ByDestination<D>),
}

impl<D: Clone + Eq + Hash> BindingTable<D> {
    pub fn new(kind: ExchangeKind) -> Self {
        let index = match kind {
            ExchangeKind::Direct => Index::Direct(ByKey::default()),
            ExchangeKind::Fanout => Index::Fanout(ByDestination::default()),
            ExchangeKind::Topic => Index::Topic(TopicIndex::default()),
            ExchangeKind::Headers => Index::Headers(ByDestination::default()),
        };
        BindingTable { index }
    }

    pub fn kind(&self) -> ExchangeKind {
        match self.index {
            Index::Direct(_) => ExchangeKind::Direct,
            Index::Fanout(_) => ExchangeKind::Fanout,
            Index::Topic(_) => ExchangeKind::Topic,
            Index::Headers(_) => ExchangeKind::Headers,
        }
    }

    /// Adds a binding; returns false (and changes nothing) if an identical binding
    /// (same routing key, same arguments, same destination) exists already.
    pub fn bind(&mut self, routing_key: &ShortStr, arguments: &FieldTable, destination: D) -> bool {
        match &mut self.index {
            Index::Direct(b) => b.bind(routing_key, arguments, destination),
            Index::Topic(t) => t.bind(routing_key, arguments, destination),
            Index::Fanout(b) | Index::Headers(b) => b.bind(routing_key, arguments, destination),
        }
    }

    /// Removes exactly that binding; false if it did not exist.
    pub fn unbind(
        &mut self,
        routing_key: &ShortStr,
        arguments: &FieldTable,
        destination: &D,
    ) -> bool {
        let key = routing_key.as_bytes();
        match &mut self.index {
            Index::Direct(b) => b.unbind(key, arguments, destination),
            Index::Topic(t) => t.unbind(key, arguments, destination),
            Index::Fanout(b) | Index::Headers(b) => b.unbind(key, arguments, destination),
        }
    }

    /// Whether that exact binding exists.
    pub fn contains(
        &self,
        routing_key: &ShortStr,
        arguments: &FieldTable,
        destination: &D,
    ) -> bool {
        let key = routing_key.as_bytes();
        match &self.index {
            Index::Direct(b) => b.contains(key, arguments, destination),
            Index::Topic(t) => t.bindings().contains(key, arguments, destination),
            Index::Fanout(b) | Index::Headers(b) => b.contains(key, arguments, destination),
        }
    }

    /// Removes every binding to `destination`; returns how many. Costs what that destination
    /// had bound here, so calling it on every exchange when a queue goes is cheap.
    pub fn remove_destination(&mut self, destination: &D) -> usize {
        match &mut self.index {
            Index::Direct(b) => b.remove_destination(destination),
            Index::Topic(t) => t.remove_destination(destination),
            Index::Fanout(b) | Index::Headers(b) => b.remove_destination(destination),
        }
    }

    /// Appends the destinations a message with this routing key and headers reaches. Each
    /// destination appears at most once in what this call appends, even when several bindings
    /// match; a message with several routing keys (`CC`/`BCC`) needs one call per key and the
    /// caller's own de-duplication across them. `headers` is the message's headers property
    /// (only the headers kind looks at it).
    pub fn route(&self, routing_key: &[u8], headers: Option<&FieldTable>, out: &mut Vec<D>) {
        match &self.index {
            Index::Direct(b) => direct::route(b, routing_key, out),
            Index::Fanout(b) => fanout::route(b, out),
            Index::Topic(t) => t.route(routing_key, out),
            Index::Headers(b) => headers::route(b, headers, out),
        }
    }

    /// The number of bindings.
    pub fn len(&self) -> usize {
        match &self.index {
            Index::Direct(b) => b.len(),
            Index::Topic(t) => t.bindings().len(),
            Index::Fanout(b) | Index::Headers(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every binding as (routing key, arguments, destination), for listing and for export, in
    /// no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldTable, &D)> {
        let (direct, topic, grouped) = match &self.index {
            Index::Direct(b) => (Some(b), None, None),
            Index::Topic(t) => (None, Some(t.bindings()), None),
            Index::Fanout(b) | Index::Headers(b) => (None, None, Some(b)),
        };
        direct
            .into_iter()
            .flat_map(ByKey::iter)
            .chain(topic.into_iter().flat_map(ByKey::iter))
            .chain(grouped.into_iter().flat_map(ByDestination::iter))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use rmqd_codec::FieldValue;

    use super::*;
    use crate::test_support::{key, table};

    const KINDS: [ExchangeKind; 4] = [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
        ExchangeKind::Headers,
    ];

    fn listing(bindings: &BindingTable<u32>) -> BTreeSet<(String, String, u32)> {
        bindings
            .iter()
            .map(|(k, args, dest)| (k.to_string(), format!("{args:?}"), *dest))
            .collect()
    }

    #[test]
    fn new_table_is_empty_and_has_its_kind() {
        for kind in KINDS {
            let bindings = BindingTable::<u32>::new(kind);
            assert_eq!(bindings.kind(), kind);
            assert!(bindings.is_empty());
            assert_eq!(bindings.iter().count(), 0);
        }
    }

    #[test]
    fn binding_twice_is_refused_for_every_kind() {
        for kind in KINDS {
            let mut bindings = BindingTable::new(kind);
            let args = table(&[("a", 1.into())]);
            assert!(bindings.bind(&key("k"), &args, 1u32));
            assert!(!bindings.bind(&key("k"), &args, 1));
            assert!(bindings.bind(&key("k"), &FieldTable::new(), 1));
            assert!(bindings.bind(&key("j"), &args, 1));
            assert!(bindings.bind(&key("k"), &args, 2));
            assert_eq!(bindings.len(), 4, "{kind:?}");
        }
    }

    #[test]
    fn argument_order_does_not_make_a_new_binding() {
        for kind in KINDS {
            let mut bindings = BindingTable::new(kind);
            let ab = table(&[("a", 1.into()), ("b", "x".into())]);
            let ba = table(&[("b", "x".into()), ("a", 1.into())]);
            assert!(bindings.bind(&key("k"), &ab, 1u32));
            assert!(!bindings.bind(&key("k"), &ba, 1));
            assert!(bindings.contains(&key("k"), &ba, &1));
            assert!(bindings.unbind(&key("k"), &ba, &1));
            assert!(bindings.is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn unbinding_what_is_not_there_changes_nothing() {
        for kind in KINDS {
            let mut bindings = BindingTable::new(kind);
            bindings.bind(&key("k"), &FieldTable::new(), 1u32);
            assert!(!bindings.unbind(&key("k"), &FieldTable::new(), &2));
            assert!(!bindings.unbind(&key("j"), &FieldTable::new(), &1));
            assert!(!bindings.unbind(&key("k"), &table(&[("a", FieldValue::Void)]), &1));
            assert_eq!(bindings.len(), 1);
            assert!(bindings.contains(&key("k"), &FieldTable::new(), &1));
            assert!(!bindings.contains(&key("k"), &FieldTable::new(), &2));
        }
    }

    #[test]
    fn iter_lists_every_binding_with_sorted_arguments() {
        for kind in KINDS {
            let mut bindings = BindingTable::new(kind);
            bindings.bind(&key("k"), &table(&[("b", 2.into()), ("a", 1.into())]), 1u32);
            bindings.bind(&key("k"), &FieldTable::new(), 2);
            bindings.bind(&key("j"), &FieldTable::new(), 2);
            let sorted = format!("{:?}", table(&[("a", 1.into()), ("b", 2.into())]));
            let empty = format!("{:?}", FieldTable::new());
            let expected = BTreeSet::from([
                ("k".to_string(), sorted, 1),
                ("k".to_string(), empty.clone(), 2),
                ("j".to_string(), empty, 2),
            ]);
            assert_eq!(listing(&bindings), expected, "{kind:?}");
        }
    }

    #[test]
    fn route_appends_to_what_out_holds() {
        for kind in KINDS {
            let mut bindings = BindingTable::new(kind);
            bindings.bind(&key("k"), &FieldTable::new(), 1u32);
            let mut out = vec![1, 9];
            bindings.route(b"k", None, &mut out);
            assert_eq!(out, [1, 9, 1], "{kind:?}");
        }
    }

    #[test]
    fn remove_destination_counts_and_keeps_others() {
        for kind in KINDS {
            let mut bindings = BindingTable::new(kind);
            bindings.bind(&key("a"), &FieldTable::new(), 1u32);
            bindings.bind(&key("a"), &table(&[("x", 1.into())]), 1);
            bindings.bind(&key("b"), &FieldTable::new(), 1);
            bindings.bind(&key("a"), &FieldTable::new(), 2);
            assert_eq!(bindings.remove_destination(&1), 3, "{kind:?}");
            assert_eq!(bindings.remove_destination(&3), 0);
            assert_eq!(bindings.len(), 1);
            let mut out = Vec::new();
            bindings.route(b"a", None, &mut out);
            assert_eq!(out, [2], "{kind:?}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Bind(usize, usize, u32),
        Unbind(usize, usize, u32),
        RemoveDestination(u32),
    }

    const KEYS: [&str; 7] = ["", "a", "a.b", "*", "#", "a.#", "*.b"];
    const PROBES: [&str; 6] = ["", "a", "a.b", "b", "a.b.c", "x.b"];

    fn arguments(i: usize) -> FieldTable {
        match i {
            0 => FieldTable::new(),
            1 => table(&[("a", 1.into())]),
            2 => table(&[("x-match", "any".into()), ("a", 1.into()), ("b", 2.into())]),
            3 => table(&[("b", FieldValue::Void)]),
            _ => table(&[("a", FieldValue::I64(1)), ("b", 2.into())]),
        }
    }

    fn probe_headers() -> Vec<Option<FieldTable>> {
        vec![
            None,
            Some(table(&[("a", 1.into())])),
            Some(table(&[("b", 2.into())])),
            Some(table(&[("a", 1.into()), ("b", 2.into())])),
        ]
    }

    fn routes(bindings: &BindingTable<u32>) -> Vec<Vec<u32>> {
        let mut all = Vec::new();
        for probe in PROBES {
            for headers in probe_headers() {
                let mut out = Vec::new();
                bindings.route(probe.as_bytes(), headers.as_ref(), &mut out);
                let count = out.len();
                out.sort();
                out.dedup();
                assert_eq!(out.len(), count, "a destination was appended twice");
                all.push(out);
            }
        }
        all
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..KEYS.len(), 0..5usize, 0..4u32).prop_map(|(k, a, d)| Op::Bind(k, a, d)),
            4 => (0..KEYS.len(), 0..5usize, 0..4u32).prop_map(|(k, a, d)| Op::Unbind(k, a, d)),
            1 => (0..4u32).prop_map(Op::RemoveDestination),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn churn_equals_building_from_the_survivors(
            kind in prop::sample::select(KINDS.to_vec()),
            ops in prop::collection::vec(op(), 0..60),
        ) {
            let mut bindings = BindingTable::new(kind);
            let mut survivors = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Bind(k, a, d) => {
                        let added = bindings.bind(&key(KEYS[k]), &arguments(a), d);
                        prop_assert_eq!(added, survivors.insert((k, a, d)));
                    }
                    Op::Unbind(k, a, d) => {
                        let removed = bindings.unbind(&key(KEYS[k]), &arguments(a), &d);
                        prop_assert_eq!(removed, survivors.remove(&(k, a, d)));
                    }
                    Op::RemoveDestination(d) => {
                        let before = survivors.len();
                        survivors.retain(|&(_, _, dest)| dest != d);
                        prop_assert_eq!(bindings.remove_destination(&d), before - survivors.len());
                    }
                }
            }
            let mut rebuilt = BindingTable::new(kind);
            for &(k, a, d) in &survivors {
                prop_assert!(rebuilt.bind(&key(KEYS[k]), &arguments(a), d));
            }
            prop_assert_eq!(bindings.len(), survivors.len());
            prop_assert_eq!(bindings.len(), rebuilt.len());
            prop_assert_eq!(listing(&bindings), listing(&rebuilt));
            prop_assert_eq!(routes(&bindings), routes(&rebuilt));
            for &(k, a, d) in &survivors {
                prop_assert!(bindings.contains(&key(KEYS[k]), &arguments(a), &d));
            }
        }
    }
}
