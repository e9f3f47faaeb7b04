//! Proptest strategies shared by the codec's property tests.
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

mod generated_strategies;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use rmqd_codec::{Decimal, FieldTable, FieldValue, ShortStr};

pub use generated_strategies::{any_basic_properties, any_method};

pub fn short_str() -> impl Strategy<Value = ShortStr> {
    vec(any::<u8>(), 0..=255).prop_map(|b| ShortStr::new(b).expect("at most 255 bytes"))
}

pub fn long_str() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

/// Floats that compare equal to themselves, so a round trip can be checked with `==`.
fn float32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN != NaN", |f| !f.is_nan())
}

fn float64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan())
}

fn scalar() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        float32().prop_map(FieldValue::F32),
        float64().prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        long_str().prop_map(FieldValue::LongStr),
        long_str().prop_map(FieldValue::ByteArray),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ]
}

/// Any field value, with tables and arrays nested several levels deep.
pub fn field_value() -> impl Strategy<Value = FieldValue> {
    scalar().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(FieldValue::Array),
            vec((short_str(), inner), 0..8)
                .prop_map(|entries| FieldValue::Table(entries.into_iter().collect())),
        ]
    })
}

pub fn field_table() -> impl Strategy<Value = FieldTable> {
    vec((short_str(), field_value()), 0..6).prop_map(|entries| entries.into_iter().collect())
}
