//! Fanout exchanges: every bound destination receives every message; keys are ignored.

use std::hash::Hash;

use crate::by_destination::ByDestination;

pub(crate) fn route<D: Clone + Eq + Hash>(bindings: &ByDestination<D>, out: &mut Vec<D>) {
    out.extend(bindings.groups().map(|(dest, _)| dest.clone()));
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

    #[test]
    fn every_destination_receives_whatever_the_key() {
        let mut bindings = BindingTable::new(ExchangeKind::Fanout);
        bindings.bind(&key(""), &FieldTable::new(), 1);
        bindings.bind(&key("a"), &FieldTable::new(), 2);
        bindings.bind(&key("#"), &FieldTable::new(), 3);
        for routing_key in ["", "a", "b.c", "#"] {
            assert_eq!(route(&bindings, routing_key), [1, 2, 3]);
        }
    }

    #[test]
    fn destination_bound_several_times_receives_once() {
        let mut bindings = BindingTable::new(ExchangeKind::Fanout);
        assert!(bindings.bind(&key("a"), &FieldTable::new(), 1));
        assert!(bindings.bind(&key("b"), &FieldTable::new(), 1));
        assert!(bindings.bind(&key("a"), &table(&[("x", FieldValue::Void)]), 1));
        assert_eq!(bindings.len(), 3);
        assert_eq!(route(&bindings, "z"), [1]);
    }

    #[test]
    fn key_and_arguments_are_part_of_identity() {
        let mut bindings = BindingTable::new(ExchangeKind::Fanout);
        assert!(bindings.bind(&key("a"), &FieldTable::new(), 1));
        assert!(!bindings.bind(&key("a"), &FieldTable::new(), 1));
        assert!(!bindings.unbind(&key("b"), &FieldTable::new(), &1));
        assert!(!bindings.unbind(&key("a"), &table(&[("x", 1.into())]), &1));
        assert!(bindings.unbind(&key("a"), &FieldTable::new(), &1));
        assert!(bindings.is_empty());
        assert_eq!(route(&bindings, "a"), Vec::<u32>::new());
    }
}
