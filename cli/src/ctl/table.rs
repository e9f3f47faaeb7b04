//! Rows as rabbitmqctl prints them: tab-separated cells under a header line, or with
//! `--formatter json` an array with one object per line, keys in column order.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rmqd_broker::admin::spec::Render;
use serde_json::Value;

/// The header (unless left out) and one line per row; nothing at all when there are no rows,
/// as rabbitmqctl does.
pub(super) fn print_table(
    out: &mut impl Write,
    columns: &[(String, Render)],
    rows: &[Vec<Value>],
    headers: bool,
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if headers {
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        writeln!(out, "{}", names.join("\t"))?;
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(columns)
            .map(|(value, (_, render))| text(*render, value))
            .collect();
        writeln!(out, "{}", cells.join("\t"))?;
    }
    Ok(())
}

/// `[` and `]` on lines of their own, one object per line between them, each after the first
/// led by a comma.
pub(super) fn print_json(
    out: &mut impl Write,
    columns: &[(String, Render)],
    rows: &[Vec<Value>],
) -> io::Result<()> {
    writeln!(out, "[")?;
    for (n, row) in rows.iter().enumerate() {
        let fields: Vec<String> = columns
            .iter()
            .zip(row)
            .map(|((name, _), value)| format!("{}:{value}", Value::from(name.as_str())))
            .collect();
        let lead = if n == 0 { "" } else { "," };
        writeln!(out, "{lead}{{{}}}", fields.join(","))?;
    }
    writeln!(out, "]")
}

/// A cell as the table shows it.
pub(super) fn text(render: Render, value: &Value) -> String {
    match (render, value) {
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (Render::List, Value::Array(items)) => {
            let items: Vec<String> = items.iter().map(|i| text(Render::Plain, i)).collect();
            format!("[{}]", items.join(", "))
        }
        (Render::FieldTable, Value::Array(entries)) => field_table(entries),
        (Render::Address, Value::Array(parts)) => {
            address(parts).unwrap_or_else(|| value.to_string())
        }
        (Render::Tuple, Value::Array(items)) => {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            format!("{{{}}}", items.join(","))
        }
        (Render::NodeStates, Value::Object(nodes)) => {
            let nodes: Vec<String> = nodes
                .iter()
                .map(|(node, state)| format!("{{{node}, {}}}", text(Render::Plain, state)))
                .collect();
            format!("[{}]", nodes.join(", "))
        }
        (_, other) => other.to_string(),
    }
}

/// `[["key","type",value], ...]` as Erlang prints the table: `[{"key",value}, ...]`.
fn field_table(entries: &[Value]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .map(|entry| match entry.as_array().map(Vec::as_slice) {
            Some([key, Value::String(kind), value]) => {
                format!("{{{key},{}}}", field_value(kind, value))
            }
            _ => entry.to_string(),
        })
        .collect();
    format!("[{}]", entries.join(","))
}

fn field_value(kind: &str, value: &Value) -> String {
    match (kind, value) {
        ("table", Value::Array(entries)) => field_table(entries),
        ("array", Value::Array(items)) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(kind), value]) => field_value(kind, value),
                    _ => item.to_string(),
                })
                .collect();
            format!("[{}]", items.join(","))
        }
        ("binary", Value::String(bytes)) => format!("<<{}>>", Value::from(bytes.as_str())),
        ("decimal", Value::Array(parts)) => {
            let parts: Vec<String> = parts.iter().map(Value::to_string).collect();
            format!("{{{}}}", parts.join(","))
        }
        ("void", _) => "undefined".to_string(),
        // Strings quoted and escaped as Erlang's ~p does; numbers and booleans as they are.
        (_, other) => other.to_string(),
    }
}

fn address(parts: &[Value]) -> Option<String> {
    let numbers: Option<Vec<u16>> = parts
        .iter()
        .map(|p| p.as_u64().and_then(|n| u16::try_from(n).ok()))
        .collect();
    let numbers = numbers?;
    let ip = match numbers.as_slice() {
        [a, b, c, d] => IpAddr::V4(Ipv4Addr::new(
            u8::try_from(*a).ok()?,
            u8::try_from(*b).ok()?,
            u8::try_from(*c).ok()?,
            u8::try_from(*d).ok()?,
        )),
        [a, b, c, d, e, f, g, h] => IpAddr::V6(Ipv6Addr::new(*a, *b, *c, *d, *e, *f, *g, *h)),
        _ => return None,
    };
    Some(ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_as_in_rabbitmqctls_tables() {
        assert_eq!(text(Render::Plain, &json!("q1")), "q1");
        assert_eq!(text(Render::Plain, &json!(true)), "true");
        assert_eq!(text(Render::Plain, &json!(null)), "");
        assert_eq!(
            text(Render::List, &json!(["monitoring", "management"])),
            "[monitoring, management]"
        );
        assert_eq!(text(Render::List, &json!([])), "[]");
        assert_eq!(text(Render::Address, &json!([127, 0, 0, 1])), "127.0.0.1");
        assert_eq!(text(Render::Tuple, &json!([0, 9, 1])), "{0,9,1}");
        assert_eq!(
            text(Render::NodeStates, &json!({"rmqd@vm": "running"})),
            "[{rmqd@vm, running}]"
        );
    }

    #[test]
    fn field_tables_read_as_erlang_prints_them() {
        let arguments = json!([
            ["x-max-length", "signedint", 10],
            ["x-dead-letter-exchange", "longstr", "dlx"],
            [
                "a-list",
                "array",
                [["signedint", 1], ["longstr", "s"], ["bool", true]]
            ],
            ["d-dec", "decimal", [1, 15]],
            ["f-bytes", "binary", "raw"],
            ["g-none", "void", "undefined"],
            [
                "h-table",
                "table",
                [["k", "longstr", "v"], ["n", "signedint", 1]]
            ],
            ["j-str", "longstr", "with \"quote\" and \\ tab\t"]
        ]);
        // What RabbitMQ 3.10.8 prints for the same arguments.
        assert_eq!(
            text(Render::FieldTable, &arguments),
            r#"[{"x-max-length",10},{"x-dead-letter-exchange","dlx"},{"a-list",[1,"s",true]},{"d-dec",{1,15}},{"f-bytes",<<"raw">>},{"g-none",undefined},{"h-table",[{"k","v"},{"n",1}]},{"j-str","with \"quote\" and \\ tab\t"}]"#
        );
        assert_eq!(text(Render::FieldTable, &json!([])), "[]");
    }

    #[test]
    fn json_rows_keep_the_column_order_one_object_per_line() {
        let columns = vec![
            ("name".to_string(), Render::Plain),
            ("messages".to_string(), Render::Plain),
        ];
        let rows = vec![vec![json!("q1"), json!(5)], vec![json!("q2"), json!(3)]];
        let mut out = Vec::new();
        print_json(&mut out, &columns, &rows).expect("written");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "[\n{\"name\":\"q1\",\"messages\":5}\n,{\"name\":\"q2\",\"messages\":3}\n]\n"
        );
        let mut out = Vec::new();
        print_json(&mut out, &columns, &[]).expect("written");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "[\n]\n");
    }

    #[test]
    fn a_table_without_rows_has_no_header_either() {
        let columns = vec![("name".to_string(), Render::Plain)];
        let mut out = Vec::new();
        print_table(&mut out, &columns, &[], true).expect("written");
        assert!(out.is_empty());
        print_table(&mut out, &columns, &[vec![json!("/")]], true).expect("written");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "name\n/\n");
    }
}
