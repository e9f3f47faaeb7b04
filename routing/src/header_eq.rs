//! Header values compared as RabbitMQ up to 3.12 compares them: Erlang's `==` on the decoded
//! terms. A top-level value is compared without its type tag, so all integer types and
//! timestamps compare by value, integers equal floats of the same value, and `S` equals `x` with
//! the same bytes. Inside arrays and tables every element keeps its tag (RabbitMQ decodes them
//! to `{Type, Value}` tuples), so there the tags must agree as well.
//!
//! 3.13 switched to `=:=`, under which 1 and 1.0 differ, and started matching a timestamp header
//! as milliseconds; the project's reference broker is 3.10.

use rmqd_codec::FieldValue;

pub(crate) fn header_value_eq(a: &FieldValue, b: &FieldValue) -> bool {
    if let (Some(x), Some(y)) = (Number::of(a), Number::of(b)) {
        return x.equals(y);
    }
    match (a, b) {
        (FieldValue::Bool(x), FieldValue::Bool(y)) => x == y,
        (
            FieldValue::LongStr(x) | FieldValue::ByteArray(x),
            FieldValue::LongStr(y) | FieldValue::ByteArray(y),
        ) => x == y,
        (FieldValue::Decimal(x), FieldValue::Decimal(y)) => x == y,
        (FieldValue::Void, FieldValue::Void) => true,
        (FieldValue::Array(x), FieldValue::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| tagged_eq(x, y))
        }
        (FieldValue::Table(x), FieldValue::Table(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((kx, vx), (ky, vy))| kx == ky && tagged_eq(vx, vy))
        }
        // Both are Erlang lists (of pairs and of triples), so only the empty ones are equal.
        (FieldValue::Array(x), FieldValue::Table(y))
        | (FieldValue::Table(y), FieldValue::Array(x)) => x.is_empty() && y.is_empty(),
        _ => false,
    }
}

fn tagged_eq(a: &FieldValue, b: &FieldValue) -> bool {
    a.type_tag() == b.type_tag() && header_value_eq(a, b)
}

#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn of(value: &FieldValue) -> Option<Number> {
        Some(match *value {
            FieldValue::F32(f) => Number::Float(f.into()),
            FieldValue::F64(f) => Number::Float(f),
            FieldValue::Timestamp(t) => Number::Int(t.into()),
            _ => Number::Int(value.as_i64()?.into()),
        })
    }

    fn equals(self, other: Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => {
                int_equals_float(i, f)
            }
        }
    }
}

/// Erlang compares an integer with a float exactly: it never rounds the integer to a float that
/// would lose digits. So the float must be integral and equal. Every integer here lies within
/// ±2^64, so a float outside ±2^100 is unequal, and one inside converts to i128 exactly.
fn int_equals_float(i: i128, f: f64) -> bool {
    f.fract() == 0.0 && f.abs() < 2f64.powi(100) && f as i128 == i
}

#[cfg(test)]
mod tests {
    use rmqd_codec::Decimal;

    use super::*;
    use crate::test_support::{bytes, table};

    #[test]
    fn integers_compare_by_value_whatever_their_width() {
        let ones = [
            FieldValue::I8(1),
            FieldValue::U8(1),
            FieldValue::I16(1),
            FieldValue::U16(1),
            FieldValue::I32(1),
            FieldValue::U32(1),
            FieldValue::I64(1),
            FieldValue::Timestamp(1),
        ];
        for a in &ones {
            for b in &ones {
                assert!(header_value_eq(a, b), "{a:?} {b:?}");
            }
        }
        assert!(header_value_eq(&FieldValue::I8(-1), &FieldValue::I64(-1)));
        assert!(!header_value_eq(&FieldValue::U8(255), &FieldValue::I8(-1)));
        assert!(!header_value_eq(&FieldValue::I32(1), &FieldValue::I32(2)));
    }

    #[test]
    fn floats_compare_numerically_with_integers() {
        assert!(header_value_eq(&FieldValue::I32(1), &FieldValue::F64(1.0)));
        assert!(header_value_eq(&FieldValue::F32(1.0), &FieldValue::U8(1)));
        assert!(header_value_eq(
            &FieldValue::F32(1.5),
            &FieldValue::F64(1.5)
        ));
        assert!(header_value_eq(&FieldValue::I64(0), &FieldValue::F64(-0.0)));
        assert!(!header_value_eq(&FieldValue::I32(1), &FieldValue::F64(1.5)));
        // f32 0.1 widened is not the f64 nearest 0.1, in Erlang as here.
        assert!(!header_value_eq(
            &FieldValue::F32(0.1),
            &FieldValue::F64(0.1)
        ));
    }

    #[test]
    fn integer_and_float_compare_exactly_beyond_float_precision() {
        let two_53 = 9_007_199_254_740_992_i64;
        assert!(header_value_eq(
            &FieldValue::I64(two_53),
            &FieldValue::F64(two_53 as f64)
        ));
        assert!(!header_value_eq(
            &FieldValue::I64(two_53 + 1),
            &FieldValue::F64(two_53 as f64)
        ));
        assert!(header_value_eq(
            &FieldValue::I64(i64::MIN),
            &FieldValue::F64(-(2f64.powi(63)))
        ));
        assert!(!header_value_eq(
            &FieldValue::I64(i64::MAX),
            &FieldValue::F64(2f64.powi(63))
        ));
        assert!(!header_value_eq(
            &FieldValue::I64(0),
            &FieldValue::F64(f64::NAN)
        ));
        assert!(!header_value_eq(
            &FieldValue::I64(0),
            &FieldValue::F64(f64::INFINITY)
        ));
    }

    #[test]
    fn long_strings_and_byte_arrays_compare_by_bytes() {
        assert!(header_value_eq(&"abc".into(), &bytes("abc")));
        assert!(header_value_eq(&bytes("abc"), &bytes("abc")));
        assert!(!header_value_eq(&"abc".into(), &"abd".into()));
        assert!(!header_value_eq(&"1".into(), &FieldValue::I32(1)));
    }

    #[test]
    fn booleans_equal_only_booleans() {
        assert!(header_value_eq(&true.into(), &true.into()));
        assert!(!header_value_eq(&true.into(), &false.into()));
        assert!(!header_value_eq(&true.into(), &FieldValue::I32(1)));
        assert!(!header_value_eq(&false.into(), &FieldValue::Void));
    }

    #[test]
    fn decimals_compare_as_scale_and_value() {
        let d = |scale, value| FieldValue::Decimal(Decimal { scale, value });
        assert!(header_value_eq(&d(2, 100), &d(2, 100)));
        // 1.00 and 1.0 are different tuples to Erlang.
        assert!(!header_value_eq(&d(2, 100), &d(1, 10)));
        assert!(!header_value_eq(&d(0, 1), &FieldValue::I32(1)));
    }

    #[test]
    fn nested_values_keep_their_types() {
        let arr = |v: Vec<FieldValue>| FieldValue::Array(v);
        assert!(header_value_eq(
            &arr(vec![FieldValue::I32(1), "a".into()]),
            &arr(vec![FieldValue::I32(1), "a".into()])
        ));
        assert!(!header_value_eq(
            &arr(vec![FieldValue::I32(1)]),
            &arr(vec![FieldValue::I64(1)])
        ));
        assert!(!header_value_eq(
            &arr(vec!["a".into()]),
            &arr(vec![bytes("a")])
        ));
        assert!(!header_value_eq(
            &arr(vec![FieldValue::I32(1)]),
            &arr(vec![FieldValue::I32(1), FieldValue::I32(1)])
        ));
        let t = |v: FieldValue| FieldValue::Table(table(&[("k", v)]));
        assert!(header_value_eq(
            &t(FieldValue::I16(3)),
            &t(FieldValue::I16(3))
        ));
        assert!(!header_value_eq(
            &t(FieldValue::I16(3)),
            &t(FieldValue::U16(3))
        ));
        let ab = table(&[("a", 1.into()), ("b", 2.into())]);
        let ba = table(&[("b", 2.into()), ("a", 1.into())]);
        assert!(!header_value_eq(&ab.into(), &ba.into()));
    }

    #[test]
    fn empty_array_equals_empty_table_at_top_level_only() {
        let empty_array = FieldValue::Array(Vec::new());
        let empty_table = FieldValue::Table(rmqd_codec::FieldTable::new());
        assert!(header_value_eq(&empty_array, &empty_table));
        assert!(!header_value_eq(
            &FieldValue::Array(vec![empty_array]),
            &FieldValue::Array(vec![empty_table])
        ));
    }
}
