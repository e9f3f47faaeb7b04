//! Cells as rabbitmqctl's `--formatter json` prints them: field tables as
//! `[["key","type",value], ...]` with RabbitMQ's type names, addresses as lists of numbers.
//!
//! One departure: RabbitMQ prints an array as an object keyed by its elements' types, which
//! loses elements of the same type; rmqd prints it as `[["type",value], ...]`.

use std::net::IpAddr;

use rmqd_codec::{Decimal, FieldTable, FieldValue, ShortStr};
use serde_json::{Number, Value, json};

/// A field table (arguments, client properties) in the order it was given.
pub(crate) fn field_table(table: &FieldTable) -> Value {
    entries(table.iter())
}

/// A field table sorted by key, as RabbitMQ keeps binding arguments.
pub(crate) fn sorted_field_table(table: &FieldTable) -> Value {
    let mut sorted: Vec<_> = table.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    entries(sorted.into_iter())
}

fn entries<'a>(entries: impl Iterator<Item = (&'a ShortStr, &'a FieldValue)>) -> Value {
    Value::Array(
        entries
            .map(|(key, value)| {
                let (kind, value) = typed(value);
                json!([key.to_string_lossy(), kind, value])
            })
            .collect(),
    )
}

/// RabbitMQ's name for the value's type, and the value.
fn typed(value: &FieldValue) -> (&'static str, Value) {
    let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    match value {
        FieldValue::Bool(b) => ("bool", Value::Bool(*b)),
        FieldValue::I8(v) => ("byte", (*v).into()),
        FieldValue::U8(v) => ("unsignedbyte", (*v).into()),
        FieldValue::I16(v) => ("short", (*v).into()),
        FieldValue::U16(v) => ("unsignedshort", (*v).into()),
        FieldValue::I32(v) => ("signedint", (*v).into()),
        FieldValue::U32(v) => ("unsignedint", (*v).into()),
        FieldValue::I64(v) => ("long", (*v).into()),
        FieldValue::F32(v) => ("float", float(f64::from(*v))),
        FieldValue::F64(v) => ("double", float(*v)),
        FieldValue::Decimal(Decimal { scale, value }) => ("decimal", json!([scale, value])),
        FieldValue::LongStr(b) => ("longstr", String::from_utf8_lossy(b).into()),
        FieldValue::ByteArray(b) => ("binary", String::from_utf8_lossy(b).into()),
        FieldValue::Array(items) => (
            "array",
            Value::Array(
                items
                    .iter()
                    .map(|item| {
                        let (kind, value) = typed(item);
                        json!([kind, value])
                    })
                    .collect(),
            ),
        ),
        FieldValue::Timestamp(t) => ("timestamp", (*t).into()),
        FieldValue::Table(t) => ("table", field_table(t)),
        FieldValue::Void => ("void", "undefined".into()),
    }
}

/// `[127,0,0,1]`; an IPv6 address as its eight 16-bit groups.
pub(crate) fn address(ip: IpAddr) -> Value {
    match ip {
        IpAddr::V4(v4) => json!(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => json!(v4.octets()),
            None => json!(v6.segments()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rmqd_codec::ShortStr;

    fn key(k: &'static str) -> ShortStr {
        ShortStr::from_static(k)
    }

    #[test]
    fn field_tables_carry_rabbitmqs_type_names() {
        let table: FieldTable = [
            (key("x-max-length"), FieldValue::I32(10)),
            (
                key("x-dead-letter-exchange"),
                FieldValue::LongStr(Bytes::from_static(b"dlx")),
            ),
            (
                key("list"),
                FieldValue::Array(vec![FieldValue::I32(1), FieldValue::Bool(true)]),
            ),
            (key("none"), FieldValue::Void),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            field_table(&table),
            json!([
                ["x-max-length", "signedint", 10],
                ["x-dead-letter-exchange", "longstr", "dlx"],
                ["list", "array", [["signedint", 1], ["bool", true]]],
                ["none", "void", "undefined"]
            ])
        );
    }

    #[test]
    fn binding_arguments_are_sorted_by_key() {
        let table: FieldTable = [
            (
                key("x-match"),
                FieldValue::LongStr(Bytes::from_static(b"all")),
            ),
            (key("h"), FieldValue::LongStr(Bytes::from_static(b"v"))),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            sorted_field_table(&table),
            json!([["h", "longstr", "v"], ["x-match", "longstr", "all"]])
        );
    }

    #[test]
    fn addresses_are_lists_of_numbers() {
        assert_eq!(address("127.0.0.1".parse().unwrap()), json!([127, 0, 0, 1]));
        assert_eq!(
            address("::ffff:10.0.0.1".parse().unwrap()),
            json!([10, 0, 0, 1])
        );
        assert_eq!(
            address("::1".parse().unwrap()),
            json!([0, 0, 0, 0, 0, 0, 0, 1])
        );
    }
}
