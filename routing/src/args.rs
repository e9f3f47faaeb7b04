//! Binding arguments as RabbitMQ stores and compares them. RabbitMQ sorts a binding's arguments
//! by key before storing the binding (a stable sort: entries under a repeated key keep their
//! order) and then tells bindings apart by exact term equality. So `{a: 1, b: 2}` and
//! `{b: 2, a: 1}` are one binding, while `{a: 1 as I32}` and `{a: 1 as I64}` are two.

use rmqd_codec::{FieldTable, FieldValue};

/// A binding's arguments, sorted by key.
#[derive(Debug, Clone)]
pub(crate) struct Arguments(FieldTable);

impl Arguments {
    pub(crate) fn new(args: &FieldTable) -> Self {
        let mut entries: Vec<_> = args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        Arguments(entries.into_iter().collect())
    }

    pub(crate) fn table(&self) -> &FieldTable {
        &self.0
    }
}

impl PartialEq for Arguments {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0.iter())
                .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
    }
}

// `identical` is reflexive, NaN included, which is what Eq asks.
impl Eq for Arguments {}

/// Erlang's `=:=` on typed values: same type tag and same value. Floats compare by bit pattern
/// rather than IEEE equality so that a binding with a NaN argument can still be unbound. Nested
/// tables are compared in their own order: RabbitMQ only sorts the top level.
fn identical(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::F32(x), FieldValue::F32(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::F64(x), FieldValue::F64(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::Array(x), FieldValue::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| identical(x, y))
        }
        (FieldValue::Table(x), FieldValue::Table(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((kx, vx), (ky, vy))| kx == ky && identical(vx, vy))
        }
        // The derived equality already demands the same variant; for these it is exact.
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{bytes, table};

    fn same(a: &FieldTable, b: &FieldTable) -> bool {
        Arguments::new(a) == Arguments::new(b)
    }

    #[test]
    fn order_between_keys_does_not_matter() {
        let a = table(&[("a", 1.into()), ("b", "x".into())]);
        let b = table(&[("b", "x".into()), ("a", 1.into())]);
        assert!(same(&a, &b));
    }

    #[test]
    fn repeated_keys_keep_their_relative_order() {
        let a = table(&[("a", 1.into()), ("b", 0.into()), ("a", 2.into())]);
        let b = table(&[("b", 0.into()), ("a", 1.into()), ("a", 2.into())]);
        let c = table(&[("a", 2.into()), ("a", 1.into()), ("b", 0.into())]);
        assert!(same(&a, &b));
        assert!(!same(&a, &c));
    }

    #[test]
    fn integer_width_is_part_of_identity() {
        let narrow = table(&[("a", FieldValue::I32(1))]);
        let wide = table(&[("a", FieldValue::I64(1))]);
        assert!(!same(&narrow, &wide));
    }

    #[test]
    fn long_string_and_byte_array_differ() {
        let s = table(&[("a", "x".into())]);
        let x = table(&[("a", bytes("x"))]);
        assert!(!same(&s, &x));
    }

    #[test]
    fn nested_tables_are_compared_in_their_own_order() {
        let ab = table(&[("a", 1.into()), ("b", 2.into())]);
        let ba = table(&[("b", 2.into()), ("a", 1.into())]);
        assert!(!same(
            &table(&[("t", ab.clone().into())]),
            &table(&[("t", ba.into())])
        ));
        assert!(same(
            &table(&[("t", ab.clone().into())]),
            &table(&[("t", ab.into())])
        ));
    }

    #[test]
    fn nan_argument_is_identical_to_itself() {
        let a = table(&[("a", FieldValue::F64(f64::NAN))]);
        assert!(same(&a, &a));
        let zero = table(&[("a", FieldValue::F64(0.0))]);
        let negative_zero = table(&[("a", FieldValue::F64(-0.0))]);
        assert!(!same(&zero, &negative_zero));
    }

    #[test]
    fn extra_entry_makes_a_difference() {
        let a = table(&[("a", 1.into())]);
        let b = table(&[("a", 1.into()), ("a", 1.into())]);
        assert!(!same(&a, &b));
        assert!(same(&FieldTable::new(), &FieldTable::new()));
    }
}
