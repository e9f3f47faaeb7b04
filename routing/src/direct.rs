//! Direct exchanges: a destination bound with key K receives the messages whose routing key is
//! K, byte for byte. One hash lookup whatever the number of bindings.

use std::hash::Hash;

use crate::by_key::ByKey;

pub(crate) fn route<D: Clone + Eq + Hash>(
    bindings: &ByKey<D>,
    routing_key: &[u8],
    out: &mut Vec<D>,
) {
    if let Some(dests) = bindings.get(routing_key) {
        out.extend(dests.keys().cloned());
    }
}

#[cfg(test)]
mod tests {
    use rmqd_codec::{FieldTable, FieldValue};

    use crate::test_support::{key, table};
    use crate::{BindingTable, ExchangeKind};

    fn route(bindings: &BindingTable<u32>, routing_key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        bindings.route(routing_key.as_bytes(), None, &mut out);
        out.sort();
        out
    }

    fn direct(bindings: &[(&str, u32)]) -> BindingTable<u32> {
        let mut table = BindingTable::new(ExchangeKind::Direct);
        for &(k, dest) in bindings {
            assert!(table.bind(&key(k), &FieldTable::new(), dest));
        }
        table
    }

    #[test]
    fn routes_on_the_exact_key_only() {
        let bindings = direct(&[("a", 1), ("A", 2), ("a.b", 3)]);
        assert_eq!(route(&bindings, "a"), [1]);
        assert_eq!(route(&bindings, "A"), [2]);
        assert_eq!(route(&bindings, "a.b"), [3]);
        for miss in ["a ", "", "b", "a.*", "#", "a.b.c"] {
            assert_eq!(route(&bindings, miss), Vec::<u32>::new(), "{miss:?}");
        }
    }

    #[test]
    fn wildcards_are_plain_characters() {
        let bindings = direct(&[("#", 1), ("*", 2)]);
        assert_eq!(route(&bindings, "#"), [1]);
        assert_eq!(route(&bindings, "*"), [2]);
        assert_eq!(route(&bindings, "a"), Vec::<u32>::new());
    }

    #[test]
    fn empty_key_binding_matches_the_empty_routing_key() {
        let bindings = direct(&[("", 1)]);
        assert_eq!(route(&bindings, ""), [1]);
        assert_eq!(route(&bindings, "a"), Vec::<u32>::new());
    }

    #[test]
    fn every_destination_bound_with_the_key_receives() {
        let bindings = direct(&[("k", 1), ("k", 2), ("k", 3), ("other", 4)]);
        assert_eq!(route(&bindings, "k"), [1, 2, 3]);
    }

    #[test]
    fn arguments_are_part_of_identity_but_not_of_matching() {
        let mut bindings = direct(&[("k", 1)]);
        let args = table(&[("x-anything", FieldValue::I32(1))]);
        assert!(bindings.bind(&key("k"), &args, 1));
        assert!(!bindings.bind(&key("k"), &args, 1));
        assert_eq!(bindings.len(), 2);
        assert_eq!(route(&bindings, "k"), [1]);
        assert!(bindings.unbind(&key("k"), &FieldTable::new(), &1));
        assert_eq!(route(&bindings, "k"), [1]);
        assert!(bindings.unbind(&key("k"), &args, &1));
        assert_eq!(route(&bindings, "k"), Vec::<u32>::new());
    }

    #[test]
    fn remove_destination_removes_all_its_keys() {
        let mut bindings = direct(&[("a", 1), ("b", 1), ("b", 2), ("c", 2)]);
        bindings.bind(&key("a"), &table(&[("x", 1.into())]), 1);
        assert_eq!(bindings.remove_destination(&1), 3);
        assert_eq!(bindings.len(), 2);
        assert_eq!(route(&bindings, "a"), Vec::<u32>::new());
        assert_eq!(route(&bindings, "b"), [2]);
        assert_eq!(bindings.remove_destination(&1), 0);
    }
}
