//! What a scenario prints: a few lines for people, then exactly one JSON line (the last line of
//! stdout) for scripts, with the same numbers.
//!
//! ```text
//! {"scenario":"throughput","broker":{"product":"rmqd","version":"0.1.0","pid":123},
//!  "params":{...},"results":{"publish_rate":...,"broker_cpu_us_per_msg":...},"incidents":0}
//! ```

use serde_json::{Map, Value, json};

use crate::measure::{Percentiles, Window, human_bytes};

/// The broker as it introduced itself in `connection.start`.
#[derive(Debug, Clone, Default)]
pub struct BrokerInfo {
    pub product: String,
    pub version: String,
}

pub struct Report {
    scenario: String,
    label: Option<String>,
    broker: BrokerInfo,
    broker_pid: Option<u32>,
    params: Map<String, Value>,
    results: Map<String, Value>,
    /// (label, formatted value) in the order added, for the human summary.
    lines: Vec<(String, String)>,
    incidents: u64,
    first_incident: Option<String>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, label: Option<String>, broker_pid: Option<u32>) -> Self {
        Report {
            scenario: scenario.to_string(),
            label,
            broker: BrokerInfo::default(),
            broker_pid,
            params: Map::new(),
            results: Map::new(),
            lines: Vec::new(),
            incidents: 0,
            first_incident: None,
            notes: Vec::new(),
        }
    }

    pub fn broker(&mut self, info: BrokerInfo) -> &mut Self {
        self.broker = info;
        self
    }

    /// A parameter of the run (sizes, counts, modes): in the JSON "params" object.
    pub fn param(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.params.insert(key.to_string(), value.into());
        self
    }

    /// A measured number; None (no `--broker-pid`, nothing counted) is JSON null.
    pub fn num(&mut self, key: &str, value: Option<f64>, unit: &str, decimals: usize) -> &mut Self {
        let shown = match value {
            Some(v) => format!("{v:.decimals$} {unit}").trim_end().to_string(),
            None => "n/a".to_string(),
        };
        let json = value
            .filter(|v| v.is_finite())
            .map(|v| {
                let scale = 10f64.powi(decimals.max(1) as i32);
                json!((v * scale).round() / scale)
            })
            .unwrap_or(Value::Null);
        self.results.insert(key.to_string(), json);
        self.lines.push((key.to_string(), shown));
        self
    }

    pub fn count(&mut self, key: &str, value: u64) -> &mut Self {
        self.results.insert(key.to_string(), json!(value));
        self.lines.push((key.to_string(), value.to_string()));
        self
    }

    /// A byte count: exact in JSON, KiB/MiB for people.
    pub fn bytes(&mut self, key: &str, value: Option<f64>) -> &mut Self {
        let shown = value.map(human_bytes).unwrap_or_else(|| "n/a".into());
        let json = match value {
            // Whole bytes as integers; per-item averages keep one decimal.
            Some(v) if v.is_finite() && v.abs() >= 1e4 => json!(v.round() as i64),
            Some(v) if v.is_finite() => json!((v * 10.0).round() / 10.0),
            _ => Value::Null,
        };
        self.results.insert(key.to_string(), json);
        self.lines.push((key.to_string(), shown));
        self
    }

    pub fn note(&mut self, text: impl Into<String>) -> &mut Self {
        self.notes.push(text.into());
        self
    }

    pub fn incidents(&mut self, count: u64, first: Option<String>) -> &mut Self {
        self.incidents = count;
        self.first_incident = first;
        self
    }

    /// Latency percentiles under `prefix` (`latency` gives latency_p50_us, latency_p99_us…).
    pub fn latency(&mut self, prefix: &str, p: Option<Percentiles>) -> &mut Self {
        let get = |f: fn(&Percentiles) -> f64| p.as_ref().map(f);
        self.num(&format!("{prefix}_p50_us"), get(|p| p.p50), "µs", 0);
        self.num(&format!("{prefix}_p90_us"), get(|p| p.p90), "µs", 0);
        self.num(&format!("{prefix}_p99_us"), get(|p| p.p99), "µs", 0);
        self.num(&format!("{prefix}_p999_us"), get(|p| p.p999), "µs", 0);
        self.num(&format!("{prefix}_max_us"), get(|p| p.max), "µs", 0);
        self.count(
            &format!("{prefix}_samples"),
            p.map(|p| p.count as u64).unwrap_or(0),
        );
        self
    }

    /// The broker's and the client's CPU and the broker's RSS over a window. `per` names the
    /// unit of work the CPU time is divided by (`msg` gives broker_cpu_us_per_msg).
    pub fn window(&mut self, w: &Window, per: &str, count: u64) -> &mut Self {
        self.num("elapsed_s", Some(w.secs()), "s", 2);
        self.num(
            &format!("broker_cpu_us_per_{per}"),
            w.broker_cpu_us_per(count),
            "µs",
            2,
        );
        self.num("broker_cpu_cores", w.broker_cores(), "cores", 2);
        self.num("broker_cpu_sys_share", w.broker_sys_share(), "", 2);
        self.num(
            &format!("client_cpu_us_per_{per}"),
            w.client_cpu_us_per(count),
            "µs",
            2,
        );
        self.num("client_cpu_cores", w.client_cores(), "cores", 2);
        self.bytes(
            "broker_rss_start_bytes",
            w.broker_rss_start.map(|b| b as f64),
        );
        self.bytes("broker_rss_end_bytes", w.broker_rss_end.map(|b| b as f64));
        if w.broker_rss_peak.is_some() {
            self.bytes("broker_rss_peak_bytes", w.broker_rss_peak.map(|b| b as f64));
        }
        self
    }

    pub fn print(&self) {
        let who = match &self.label {
            Some(label) => format!(" [{label}]"),
            None => String::new(),
        };
        println!(
            "== {}{who}: {} {}{}",
            self.scenario,
            self.broker.product,
            self.broker.version,
            self.broker_pid
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default()
        );
        if !self.params.is_empty() {
            let params: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
                .collect();
            println!("   {}", params.join(" "));
        }
        let width = self.lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.lines {
            println!("   {key:<width$}  {value}");
        }
        if self.incidents > 0 {
            println!(
                "   incidents: {} (first: {})",
                self.incidents,
                self.first_incident.as_deref().unwrap_or("?")
            );
        }
        for note in &self.notes {
            println!("   note: {note}");
        }
        println!("{}", self.json());
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "label": self.label,
            "broker": {
                "product": self.broker.product,
                "version": self.broker.version,
                "pid": self.broker_pid,
            },
            "params": self.params,
            "results": self.results,
            "incidents": self.incidents,
            "first_incident": self.first_incident,
            "notes": self.notes,
        })
    }
}
