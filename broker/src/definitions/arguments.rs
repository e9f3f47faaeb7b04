//! Queue, exchange and binding arguments: JSON objects in a definitions file, AMQP field tables
//! in the broker. The types are the ones RabbitMQ picks (`rabbit_misc:to_amqp_table`): an
//! integer is a signed 64-bit `l`, a string a long string `S`, a boolean `t`, any other number a
//! double `d`, a list an array `A`, an object a table `F`, null a void `V`. Export reverses it.

use bytes::Bytes;
use rmqd_codec::{Decimal, FieldTable, FieldValue, MAX_NESTING, ShortStr};
use serde_json::{Map, Number, Value};

/// Converts a JSON object of arguments; the error says which key and why.
pub(crate) fn to_field_table(json: &Map<String, Value>) -> Result<FieldTable, String> {
    table(json, 0)
}

fn table(json: &Map<String, Value>, depth: usize) -> Result<FieldTable, String> {
    json.iter()
        .map(|(key, value)| {
            let name = ShortStr::new(Bytes::copy_from_slice(key.as_bytes()))
                .map_err(|e| format!("argument name '{key}': {e}"))?;
            let value = field_value(value, depth).map_err(|e| format!("argument '{key}': {e}"))?;
            Ok((name, value))
        })
        .collect()
}

fn field_value(json: &Value, depth: usize) -> Result<FieldValue, String> {
    if depth >= MAX_NESTING {
        return Err(format!("nested deeper than {MAX_NESTING} levels"));
    }
    Ok(match json {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => FieldValue::I64(i),
            // A u64 above i64::MAX: RabbitMQ cannot encode it either.
            _ if n.is_u64() => return Err(format!("{n} does not fit a signed 64-bit integer")),
            (None, Some(f)) => FieldValue::F64(f),
            (None, None) => return Err(format!("{n} is not a number AMQP can carry")),
        },
        Value::String(s) => FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes())),
        Value::Array(items) => FieldValue::Array(
            items
                .iter()
                .map(|v| field_value(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => FieldValue::Table(table(map, depth + 1)?),
    })
}

/// The JSON object RabbitMQ would write for these arguments. A key given twice keeps its first
/// value, the one lookups see.
pub(crate) fn to_json(table: &FieldTable) -> Map<String, Value> {
    let mut json = Map::new();
    for (key, value) in table.iter() {
        let key = key.to_string_lossy().into_owned();
        if !json.contains_key(&key) {
            json.insert(key, json_value(value));
        }
    }
    json
}

fn json_value(value: &FieldValue) -> Value {
    match value {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I8(v) => (*v).into(),
        FieldValue::U8(v) => (*v).into(),
        FieldValue::I16(v) => (*v).into(),
        FieldValue::U16(v) => (*v).into(),
        FieldValue::I32(v) => (*v).into(),
        FieldValue::U32(v) => (*v).into(),
        FieldValue::I64(v) => (*v).into(),
        FieldValue::Timestamp(v) => (*v).into(),
        // NaN and infinities have no JSON form.
        FieldValue::F32(v) => Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number),
        FieldValue::F64(v) => Number::from_f64(*v).map_or(Value::Null, Value::Number),
        FieldValue::Decimal(Decimal { scale, value }) => {
            Number::from_f64(f64::from(*value) / 10f64.powi(i32::from(*scale)))
                .map_or(Value::Null, Value::Number)
        }
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        FieldValue::Array(items) => Value::Array(items.iter().map(json_value).collect()),
        FieldValue::Table(t) => Value::Object(to_json(t)),
        FieldValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn json_types_become_rabbitmqs_field_types() {
        let args = object(json!({
            "x-message-ttl": 60000,
            "x-dead-letter-exchange": "dlx",
            "flag": true,
            "ratio": 0.5,
            "list": ["a", 1, false],
            "nested": {"n": -7},
            "nothing": null,
        }));
        let table = to_field_table(&args).unwrap();
        let tag = |key: &str| table.get(key).map(|v| char::from(v.type_tag()));
        assert_eq!(tag("x-message-ttl"), Some('l'));
        assert_eq!(tag("x-dead-letter-exchange"), Some('S'));
        assert_eq!(tag("flag"), Some('t'));
        assert_eq!(tag("ratio"), Some('d'));
        assert_eq!(tag("list"), Some('A'));
        assert_eq!(tag("nested"), Some('F'));
        assert_eq!(tag("nothing"), Some('V'));
        assert_eq!(table.get("x-message-ttl"), Some(&FieldValue::I64(60000)));
        assert_eq!(to_json(&table), args);
    }

    #[test]
    fn integers_beyond_i64_are_refused_naming_the_argument() {
        let args = object(json!({"x-max-length": u64::MAX}));
        let err = to_field_table(&args).unwrap_err();
        assert_eq!(
            err,
            "argument 'x-max-length': 18446744073709551615 does not fit a signed 64-bit integer"
        );
    }

    #[test]
    fn names_longer_than_a_shortstr_are_refused() {
        let mut args = Map::new();
        args.insert("k".repeat(256), Value::Bool(true));
        let err = to_field_table(&args).unwrap_err();
        assert!(err.contains("256 bytes do not fit in a shortstr"), "{err}");
    }

    #[test]
    fn any_integer_width_a_client_sent_exports_as_a_number() {
        let table: FieldTable = [
            (ShortStr::from_static("a"), FieldValue::I32(5)),
            (ShortStr::from_static("b"), FieldValue::U8(7)),
            (
                ShortStr::from_static("c"),
                FieldValue::Decimal(Decimal {
                    scale: 2,
                    value: 150,
                }),
            ),
            (ShortStr::from_static("a"), FieldValue::I32(6)),
        ]
        .into_iter()
        .collect();
        assert_eq!(to_json(&table), object(json!({"a": 5, "b": 7, "c": 1.5})));
    }

    /// Values in the types JSON import produces, nested.
    fn imported_value() -> impl Strategy<Value = FieldValue> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(FieldValue::Bool),
            any::<i64>().prop_map(FieldValue::I64),
            // Binary fractions: short in decimal, so they parse back exactly without
            // serde_json's slower float_roundtrip mode.
            (any::<i32>(), 0..8u32)
                .prop_map(|(n, k)| FieldValue::F64(f64::from(n) / f64::from(1u32 << k))),
            ".{0,12}".prop_map(|s| FieldValue::LongStr(Bytes::from(s))),
            Just(FieldValue::Void),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
                prop::collection::btree_map("[a-z-]{1,10}", inner, 0..6).prop_map(|m| {
                    FieldValue::Table(
                        m.into_iter()
                            .map(|(k, v)| (ShortStr::truncating(k), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn arguments_survive_json_both_ways(
            entries in prop::collection::btree_map("[a-z-]{1,16}", imported_value(), 0..8)
        ) {
            let table: FieldTable = entries
                .into_iter()
                .map(|(k, v)| (ShortStr::truncating(k), v))
                .collect();
            let json = to_json(&table);
            // Through the text too: a float must come back as the same float.
            let text = serde_json::to_string(&json).unwrap();
            let reread: Map<String, Value> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&reread, &json);
            prop_assert_eq!(to_field_table(&reread).unwrap(), table);
        }
    }
}
