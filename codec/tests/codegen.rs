//! Generates `src/spec.rs` (method structs, the `Method` enum, basic properties and constants)
//! from RabbitMQ's machine-readable AMQP 0-9-1 spec, and fails if the checked-in file differs.
//!
//! After changing this generator or the spec, run:
//! `RMQD_REGENERATE=1 cargo test -p rmqd-codec --test codegen`

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/amqp-rabbitmq-0.9.1.json")
}

fn generated_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/spec.rs")
}

fn strategies_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/generated_strategies.rs")
}

#[test]
fn generated_spec_matches_the_json_spec() {
    let spec_text = std::fs::read_to_string(spec_path()).unwrap_or_else(|e| {
        panic!(
            "{} must be readable (shared/ sits beside the repository): {e}",
            spec_path().display()
        )
    });
    let spec: Value = serde_json::from_str(&spec_text).expect("spec is JSON");
    for (path, generated) in [
        (generated_path(), rustfmt(&generate(&spec))),
        (strategies_path(), rustfmt(&generate_strategies(&spec))),
    ] {
        if std::env::var_os("RMQD_REGENERATE").is_some() {
            std::fs::write(&path, &generated).expect("write generated file");
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} is stale: run `RMQD_REGENERATE=1 cargo test -p rmqd-codec --test codegen`",
            path.display()
        );
    }
}

fn rustfmt(source: &str) -> String {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("rustfmt is installed with the toolchain");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(source.as_bytes())
        .expect("feed rustfmt");
    let output = child.wait_with_output().expect("rustfmt runs");
    assert!(
        output.status.success(),
        "rustfmt rejected the generated code"
    );
    String::from_utf8(output.stdout).expect("rustfmt emits UTF-8")
}

/// A wire type from the spec's domain table, resolved to its primitive.
#[derive(Clone, Copy, PartialEq)]
enum Wire {
    Bit,
    Octet,
    Short,
    Long,
    LongLong,
    ShortStr,
    LongStr,
    Table,
    Timestamp,
}

impl Wire {
    fn parse(name: &str) -> Wire {
        match name {
            "bit" => Wire::Bit,
            "octet" => Wire::Octet,
            "short" => Wire::Short,
            "long" => Wire::Long,
            "longlong" => Wire::LongLong,
            "shortstr" => Wire::ShortStr,
            "longstr" => Wire::LongStr,
            "table" => Wire::Table,
            "timestamp" => Wire::Timestamp,
            other => panic!("unknown primitive type {other}"),
        }
    }

    fn rust_type(self) -> &'static str {
        match self {
            Wire::Bit => "bool",
            Wire::Octet => "u8",
            Wire::Short => "u16",
            Wire::Long => "u32",
            Wire::LongLong | Wire::Timestamp => "u64",
            Wire::ShortStr => "ShortStr",
            Wire::LongStr => "Bytes",
            Wire::Table => "FieldTable",
        }
    }

    fn read(self) -> &'static str {
        match self {
            Wire::Bit => unreachable!("bits are read through a BitReader"),
            Wire::Octet => "r.u8()?",
            Wire::Short => "r.u16()?",
            Wire::Long => "r.u32()?",
            Wire::LongLong | Wire::Timestamp => "r.u64()?",
            Wire::ShortStr => "r.short_str()?",
            Wire::LongStr => "r.long_str()?",
            Wire::Table => "FieldTable::decode(r)?",
        }
    }

    /// The proptest strategy for a value of this type (helpers in `tests/support/mod.rs`).
    fn strategy(self) -> &'static str {
        match self {
            Wire::Bit => "any::<bool>()",
            Wire::Octet => "any::<u8>()",
            Wire::Short => "any::<u16>()",
            Wire::Long => "any::<u32>()",
            Wire::LongLong | Wire::Timestamp => "any::<u64>()",
            Wire::ShortStr => "short_str()",
            Wire::LongStr => "long_str()",
            Wire::Table => "field_table()",
        }
    }

    fn write(self, value: &str) -> String {
        match self {
            Wire::Bit => unreachable!("bits are written through a BitWriter"),
            Wire::Octet => format!("out.put_u8({value});"),
            Wire::Short => format!("out.put_u16({value});"),
            Wire::Long => format!("out.put_u32({value});"),
            Wire::LongLong | Wire::Timestamp => format!("out.put_u64({value});"),
            Wire::ShortStr => format!("put_short_str(out, &{value});"),
            Wire::LongStr => format!("put_long_str(out, &{value});"),
            Wire::Table => format!("{value}.encode(out);"),
        }
    }
}

struct Field {
    rust_name: String,
    wire: Wire,
    default: Option<Value>,
}

struct MethodSpec {
    class_name: String,
    class_id: u64,
    name: String,
    id: u64,
    synchronous: bool,
    content: bool,
    fields: Vec<Field>,
}

impl MethodSpec {
    fn type_name(&self) -> String {
        format!("{}{}", camel(&self.class_name), camel(&self.name))
    }
    fn full_name(&self) -> String {
        format!("{}.{}", self.class_name, self.name)
    }
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn snake(name: &str) -> String {
    name.replace('-', "_")
}

fn const_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

fn resolve(spec: &Value, arg: &Value) -> Wire {
    if let Some(t) = arg["type"].as_str() {
        return Wire::parse(t);
    }
    let domain = arg["domain"]
        .as_str()
        .expect("argument has a type or a domain");
    let primitive = spec["domains"]
        .as_array()
        .expect("domains")
        .iter()
        .find(|d| d[0] == domain)
        .unwrap_or_else(|| panic!("unknown domain {domain}"))[1]
        .as_str()
        .expect("domain type");
    Wire::parse(primitive)
}

fn methods(spec: &Value) -> Vec<MethodSpec> {
    let mut out = Vec::new();
    for class in spec["classes"].as_array().expect("classes") {
        for method in class["methods"].as_array().expect("methods") {
            let fields = method["arguments"]
                .as_array()
                .expect("arguments")
                .iter()
                .map(|arg| {
                    let name = arg["name"].as_str().expect("argument name");
                    Field {
                        // `type` is a Rust keyword; `kind` is what exchange.declare's type is.
                        rust_name: if name == "type" {
                            "kind".to_string()
                        } else {
                            snake(name)
                        },
                        wire: resolve(spec, arg),
                        default: arg.get("default-value").cloned(),
                    }
                })
                .collect();
            out.push(MethodSpec {
                class_name: class["name"].as_str().expect("class name").to_string(),
                class_id: class["id"].as_u64().expect("class id"),
                name: method["name"].as_str().expect("method name").to_string(),
                id: method["id"].as_u64().expect("method id"),
                synchronous: method["synchronous"].as_bool().unwrap_or(false),
                content: method["content"].as_bool().unwrap_or(false),
                fields,
            });
        }
    }
    // Class then method id: a stable order whatever order the JSON lists classes in.
    out.sort_by_key(|m| (m.class_id, m.id));
    out
}

/// The Rust expression for a default, or None when `Default::default()` gives it already.
fn default_expr(wire: Wire, value: &Value) -> Option<String> {
    match (wire, value) {
        (Wire::Bit, Value::Bool(true)) => Some("true".into()),
        (Wire::Bit, Value::Bool(false)) => None,
        (_, Value::Number(n)) if n.as_u64() == Some(0) => None,
        (_, Value::Number(n)) => Some(n.to_string()),
        (Wire::ShortStr, Value::String(s)) if s.is_empty() => None,
        (Wire::ShortStr, Value::String(s)) => Some(format!("ShortStr::from_static({s:?})")),
        (Wire::LongStr, Value::String(s)) if s.is_empty() => None,
        (Wire::LongStr, Value::String(s)) => Some(format!("Bytes::from_static(b{s:?})")),
        (Wire::Table, Value::Object(o)) if o.is_empty() => None,
        (wire, value) => panic!("unsupported default {value} for {}", wire.rust_type()),
    }
}

fn generate(spec: &Value) -> String {
    let methods = methods(spec);
    let mut s = String::new();
    s.push_str(
        "//! AMQP 0-9-1 constants, classes, methods and basic properties.\n//!\n\
         //! @generated by `codec/tests/codegen.rs` from `shared/spec/amqp-rabbitmq-0.9.1.json`\n\
         //! (RabbitMQ's machine-readable spec). Do not edit by hand; regenerate with\n\
         //! `RMQD_REGENERATE=1 cargo test -p rmqd-codec --test codegen`.\n\n\
         use bytes::{BufMut, Bytes, BytesMut};\n\n\
         use crate::error::DecodeError;\nuse crate::field_table::FieldTable;\n\
         use crate::short_str::ShortStr;\n\
         use crate::wire::{BitReader, BitWriter, Reader, put_long_str, put_short_str};\n\n",
    );
    write_constants(&mut s, spec);
    write_class_ids(&mut s, spec);
    for method in &methods {
        write_method_struct(&mut s, method);
    }
    write_method_enum(&mut s, &methods);
    write_properties(&mut s, spec);
    s
}

fn write_constants(s: &mut String, spec: &Value) {
    let _ = writeln!(
        s,
        "/// The protocol version this codec speaks.\npub const PROTOCOL_VERSION: (u8, u8, u8) = ({}, {}, {});\n\
         /// The IANA-assigned AMQP port.\npub const PORT: u16 = {};\n",
        spec["major-version"], spec["minor-version"], spec["revision"], spec["port"]
    );
    let constants = spec["constants"].as_array().expect("constants");
    s.push_str("/// Frame types and framing limits.\npub mod frame {\n");
    for c in constants.iter().filter(|c| c.get("class").is_none()) {
        let name = c["name"].as_str().expect("constant name");
        let value = &c["value"];
        let ty = match name {
            "FRAME-MIN-SIZE" => "u32",
            "REPLY-SUCCESS" => continue,
            _ => "u8",
        };
        let short = name.strip_prefix("FRAME-").unwrap_or(name);
        let _ = writeln!(s, "pub const {}: {ty} = {value};", const_name(short));
    }
    s.push_str("}\n\n");

    s.push_str("/// Reply codes, for `connection.close`, `channel.close` and `basic.return`.\npub mod reply_code {\n");
    let codes: Vec<(String, u64, Option<&str>)> = constants
        .iter()
        .filter(|c| c.get("class").is_some() || c["name"] == "REPLY-SUCCESS")
        .map(|c| {
            (
                const_name(c["name"].as_str().expect("name")),
                c["value"].as_u64().expect("value"),
                c["class"].as_str(),
            )
        })
        .collect();
    for (name, value, _) in &codes {
        let _ = writeln!(s, "pub const {name}: u16 = {value};");
    }
    s.push_str(
        "\n/// The constant's name, as RabbitMQ puts it at the front of reply texts.\n\
         pub fn name(code: u16) -> &'static str {\nmatch code {\n",
    );
    for (name, value, _) in &codes {
        let _ = writeln!(s, "{value} => \"{name}\",");
    }
    s.push_str("_ => \"UNKNOWN\",\n}\n}\n\n");
    s.push_str(
        "/// Whether the code is a connection error (closes the connection) rather than a channel error.\n\
         pub fn is_hard_error(code: u16) -> bool {\nmatches!(code, ",
    );
    let hard: Vec<String> = codes
        .iter()
        .filter(|(_, _, class)| *class == Some("hard-error"))
        .map(|(name, _, _)| name.clone())
        .collect();
    s.push_str(&hard.join(" | "));
    s.push_str(")\n}\n}\n\n");
}

fn write_class_ids(s: &mut String, spec: &Value) {
    s.push_str("/// Class ids.\npub mod class_id {\n");
    let mut classes: Vec<(String, u64)> = spec["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| {
            (
                const_name(c["name"].as_str().expect("name")),
                c["id"].as_u64().expect("id"),
            )
        })
        .collect();
    classes.sort_by_key(|c| c.1);
    for (name, id) in classes {
        let _ = writeln!(s, "pub const {name}: u16 = {id};");
    }
    s.push_str("}\n\n");
}

fn write_method_struct(s: &mut String, m: &MethodSpec) {
    let ty = m.type_name();
    let custom_default: Vec<(String, String)> = m
        .fields
        .iter()
        .filter_map(|f| {
            let value = f.default.as_ref()?;
            Some((f.rust_name.clone(), default_expr(f.wire, value)?))
        })
        .collect();
    let _ = writeln!(s, "/// `{}` ({}/{}).", m.full_name(), m.class_id, m.id);
    if custom_default.is_empty() {
        s.push_str("#[derive(Debug, Clone, PartialEq, Default)]\n");
    } else {
        s.push_str("#[derive(Debug, Clone, PartialEq)]\n");
    }
    let _ = writeln!(s, "pub struct {ty} {{");
    for f in &m.fields {
        let _ = writeln!(s, "pub {}: {},", f.rust_name, f.wire.rust_type());
    }
    s.push_str("}\n\n");

    if !custom_default.is_empty() {
        let _ = writeln!(
            s,
            "impl Default for {ty} {{\nfn default() -> Self {{\n{ty} {{"
        );
        for f in &m.fields {
            match custom_default.iter().find(|(n, _)| *n == f.rust_name) {
                Some((_, expr)) => {
                    let _ = writeln!(s, "{}: {expr},", f.rust_name);
                }
                None => {
                    let _ = writeln!(s, "{}: Default::default(),", f.rust_name);
                }
            }
        }
        s.push_str("}\n}\n}\n\n");
    }

    let _ = writeln!(
        s,
        "impl {ty} {{\npub const CLASS_ID: u16 = {};\npub const METHOD_ID: u16 = {};\npub const NAME: &'static str = \"{}\";\n",
        m.class_id,
        m.id,
        m.full_name()
    );
    // decode
    let reader = if m.fields.is_empty() { "_r" } else { "r" };
    let _ = writeln!(
        s,
        "fn decode({reader}: &mut Reader<'_>) -> Result<Self, DecodeError> {{"
    );
    let mut in_bits = false;
    for f in &m.fields {
        if f.wire == Wire::Bit {
            if !in_bits {
                s.push_str("let mut bits = BitReader::new();\n");
                in_bits = true;
            }
            let _ = writeln!(s, "let {} = bits.next(r)?;", f.rust_name);
        } else {
            in_bits = false;
            let _ = writeln!(s, "let {} = {};", f.rust_name, f.wire.read());
        }
    }
    let names: Vec<&str> = m.fields.iter().map(|f| f.rust_name.as_str()).collect();
    let _ = writeln!(s, "Ok({ty} {{ {} }})\n}}\n", names.join(", "));
    // encode
    let out = if m.fields.is_empty() { "_out" } else { "out" };
    let _ = writeln!(s, "fn encode(&self, {out}: &mut BytesMut) {{");
    let mut in_bits = false;
    for f in &m.fields {
        if f.wire == Wire::Bit {
            if !in_bits {
                s.push_str("let mut bits = BitWriter::new();\n");
                in_bits = true;
            }
            let _ = writeln!(s, "bits.push(out, self.{});", f.rust_name);
        } else {
            if in_bits {
                s.push_str("bits.flush(out);\n");
                in_bits = false;
            }
            s.push_str(&f.wire.write(&format!("self.{}", f.rust_name)));
            s.push('\n');
        }
    }
    if in_bits {
        s.push_str("bits.flush(out);\n");
    }
    s.push_str("}\n}\n\n");
    let _ = writeln!(
        s,
        "impl From<{ty}> for Method {{\nfn from(m: {ty}) -> Method {{\nMethod::{ty}(m)\n}}\n}}\n"
    );
}

fn write_method_enum(s: &mut String, methods: &[MethodSpec]) {
    s.push_str("/// Every AMQP 0-9-1 method, with RabbitMQ's extensions.\n#[derive(Debug, Clone, PartialEq)]\npub enum Method {\n");
    for m in methods {
        let _ = writeln!(s, "{0}({0}),", m.type_name());
    }
    s.push_str("}\n\nimpl Method {\n");

    let arms = |s: &mut String, f: &dyn Fn(&MethodSpec) -> String| {
        for m in methods {
            let _ = writeln!(s, "Method::{}(_) => {},", m.type_name(), f(m));
        }
    };
    s.push_str("pub fn class_id(&self) -> u16 {\nmatch self {\n");
    arms(s, &|m| m.class_id.to_string());
    s.push_str("}\n}\n\npub fn method_id(&self) -> u16 {\nmatch self {\n");
    arms(s, &|m| m.id.to_string());
    s.push_str("}\n}\n\n/// The spec's name, such as `basic.publish`.\npub fn name(&self) -> &'static str {\nmatch self {\n");
    arms(s, &|m| format!("\"{}\"", m.full_name()));
    s.push_str("}\n}\n\n");

    let matches = |s: &mut String, doc: &str, fname: &str, pick: &dyn Fn(&MethodSpec) -> bool| {
        let names: Vec<String> = methods
            .iter()
            .filter(|m| pick(m))
            .map(|m| format!("Method::{}(_)", m.type_name()))
            .collect();
        let _ = writeln!(
            s,
            "{doc}\npub fn {fname}(&self) -> bool {{\nmatches!(self, {})\n}}\n",
            names.join(" | ")
        );
    };
    matches(
        s,
        "/// Whether a content header and body frames follow this method.",
        "carries_content",
        &|m| m.content,
    );
    matches(
        s,
        "/// Whether the spec marks this method synchronous: the peer must answer it.",
        "is_synchronous",
        &|m| m.synchronous,
    );

    s.push_str(
        "/// Decodes the arguments of the method `class_id`/`method_id` from a method frame's payload.\n\
         pub(crate) fn decode(class_id: u16, method_id: u16, r: &mut Reader<'_>) -> Result<Method, DecodeError> {\n\
         Ok(match (class_id, method_id) {\n",
    );
    for m in methods {
        let _ = writeln!(
            s,
            "({}, {}) => {{\nr.set_context(\"{}\");\nMethod::{}({}::decode(r)?)\n}}",
            m.class_id,
            m.id,
            m.full_name(),
            m.type_name(),
            m.type_name()
        );
    }
    s.push_str("_ => return Err(DecodeError::UnknownMethod { class_id, method_id }),\n})\n}\n\n");

    s.push_str("/// Writes the method's arguments (not the class and method ids).\npub(crate) fn encode_arguments(&self, out: &mut BytesMut) {\nmatch self {\n");
    for m in methods {
        let _ = writeln!(s, "Method::{}(m) => m.encode(out),", m.type_name());
    }
    s.push_str("}\n}\n}\n\n");
}

fn write_properties(s: &mut String, spec: &Value) {
    let props = basic_properties(spec);
    assert!(
        props.len() <= 15,
        "one flag word holds 15 properties; continuation words are not generated"
    );
    s.push_str("/// The basic class's content properties. `None` is a property whose flag bit is clear.\n#[derive(Debug, Clone, PartialEq, Default)]\npub struct BasicProperties {\n");
    for (name, wire) in &props {
        let _ = writeln!(s, "pub {name}: Option<{}>,", wire.rust_type());
    }
    s.push_str("}\n\nimpl BasicProperties {\n");
    let used: u16 = (0..props.len()).map(|i| 1u16 << (15 - i)).sum();
    let _ = writeln!(
        s,
        "/// Flag bits that no basic property uses (including the continuation bit).\npub(crate) const UNUSED_FLAGS: u16 = {:#06x};\n",
        !used
    );
    s.push_str("pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {\nlet flags = r.u16()?;\nif flags & Self::UNUSED_FLAGS != 0 {\nreturn Err(DecodeError::InvalidPropertyFlags(flags));\n}\n");
    for (i, (name, wire)) in props.iter().enumerate() {
        let _ = writeln!(
            s,
            "let {name} = if flags & (1 << {}) != 0 {{ Some({}) }} else {{ None }};",
            15 - i,
            wire.read()
        );
    }
    let names: Vec<&str> = props.iter().map(|(n, _)| n.as_str()).collect();
    let _ = writeln!(s, "Ok(BasicProperties {{ {} }})\n}}\n", names.join(", "));

    s.push_str("pub(crate) fn encode(&self, out: &mut BytesMut) {\nlet mut flags: u16 = 0;\n");
    for (i, (name, _)) in props.iter().enumerate() {
        let _ = writeln!(
            s,
            "if self.{name}.is_some() {{ flags |= 1 << {}; }}",
            15 - i
        );
    }
    s.push_str("out.put_u16(flags);\n");
    for (name, wire) in &props {
        let write = match wire {
            Wire::Table => "v.encode(out);".to_string(),
            Wire::ShortStr => "put_short_str(out, v);".to_string(),
            Wire::LongStr => "put_long_str(out, v);".to_string(),
            numeric => numeric.write("*v"),
        };
        let _ = writeln!(s, "if let Some(v) = &self.{name} {{ {write} }}");
    }
    s.push_str("}\n}\n");
}

fn basic_properties(spec: &Value) -> Vec<(String, Wire)> {
    let basic = spec["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["name"] == "basic")
        .expect("the basic class");
    basic["properties"]
        .as_array()
        .expect("basic properties")
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("property name");
            // `type` is a keyword; `message_type` says what it is.
            let rust_name = if name == "type" {
                "message_type".to_string()
            } else {
                snake(name)
            };
            (rust_name, resolve(spec, p))
        })
        .collect()
}

/// Strategies that build every method and any basic properties, for the round-trip properties.
fn generate_strategies(spec: &Value) -> String {
    let methods = methods(spec);
    let mut s = String::from(
        "//! Proptest strategies for every method and for basic properties.\n//!\n\
         //! @generated by `codec/tests/codegen.rs`; regenerate with\n\
         //! `RMQD_REGENERATE=1 cargo test -p rmqd-codec --test codegen`.\n\n\
         use proptest::prelude::*;\nuse proptest::strategy::Union;\nuse rmqd_codec::*;\n\n\
         use super::{field_table, long_str, short_str};\n\n\
         /// Any method of the spec, with any argument values.\n\
         pub fn any_method() -> BoxedStrategy<Method> {\nUnion::new(vec![\n",
    );
    for m in &methods {
        let ty = m.type_name();
        if m.fields.is_empty() {
            let _ = writeln!(s, "Just(Method::{ty}({ty} {{}})).boxed(),");
            continue;
        }
        let strategies: Vec<&str> = m.fields.iter().map(|f| f.wire.strategy()).collect();
        let names: Vec<&str> = m.fields.iter().map(|f| f.rust_name.as_str()).collect();
        let _ = writeln!(
            s,
            "({},).prop_map(|({},)| Method::{ty}({ty} {{ {} }})).boxed(),",
            strategies.join(", "),
            names.join(", "),
            names.join(", ")
        );
    }
    s.push_str("])\n.boxed()\n}\n\n");
    let props = basic_properties(spec);
    let strategies: Vec<String> = props
        .iter()
        .map(|(_, w)| format!("proptest::option::of({})", w.strategy()))
        .collect();
    let names: Vec<&str> = props.iter().map(|(n, _)| n.as_str()).collect();
    // Tuples of strategies stop at 12 elements; split the properties in two halves.
    let half = props.len() / 2;
    let _ = writeln!(
        s,
        "/// Any basic properties, each present or absent.\n\
         pub fn any_basic_properties() -> impl Strategy<Value = BasicProperties> {{\n\
         (({},), ({},)).prop_map(|(({},), ({},))| BasicProperties {{ {} }})\n}}",
        strategies[..half].join(", "),
        strategies[half..].join(", "),
        names[..half].join(", "),
        names[half..].join(", "),
        names.join(", ")
    );
    s
}
