//! Results: rows of metrics, the terminal tables (one server, or servers side by side with
//! ratios) and the JSON file.

use hdrhistogram::Histogram;

/// Which direction of a metric is better (for the ratio column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    Info,
}

/// One metric of a run.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: String,
    pub label: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub better: Better,
}

impl Row {
    pub fn new(
        key: &str,
        label: &str,
        value: Option<f64>,
        unit: &'static str,
        better: Better,
    ) -> Row {
        Row {
            key: key.into(),
            label: label.into(),
            value,
            unit,
            better,
        }
    }

    /// p50/p90/p99/p999/max rows (ms) of a histogram in microseconds.
    pub fn latency(key: &str, label: &str, h: &Histogram<u64>) -> Vec<Row> {
        let v = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0);
        let mut rows = vec![];
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            rows.push(Row::new(
                &format!("{key}_{name}_ms"),
                &format!("{label} {name}"),
                v(q),
                "ms",
                Better::Lower,
            ));
        }
        rows.push(Row::new(
            &format!("{key}_max_ms"),
            &format!("{label} max"),
            (!h.is_empty()).then(|| h.max() as f64 / 1000.0),
            "ms",
            Better::Lower,
        ));
        rows
    }
}

/// One scenario run against one server.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub scenario: String,
    pub server: String,
    pub server_kind: String,
    /// the load generator: "rust" (this harness's client) or "node" (socket.io-client)
    pub generator: String,
    pub description: String,
    pub params: serde_json::Value,
    pub rows: Vec<Row>,
    pub client_bound: bool,
    pub notes: Vec<String>,
    /// series for `--plot`
    pub plot: PlotData,
}

/// What `--plot` draws of one run.
#[derive(Debug, Clone, Default)]
pub struct PlotData {
    /// echo latency CDF: (ms, fraction of requests at or below)
    pub cdf: Vec<(f64, f64)>,
    /// fanout: (seq, ms from send to the LAST receiver) per broadcast, in send order
    pub last_ms: Vec<(u64, f64)>,
}

impl RunResult {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.key == key)
            .and_then(|r| r.value)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut metrics = serde_json::Map::new();
        for r in &self.rows {
            metrics.insert(
                r.key.clone(),
                r.value
                    .map_or(serde_json::Value::Null, |v| serde_json::json!(v)),
            );
        }
        serde_json::json!({
            "scenario": self.scenario,
            "server": self.server,
            "server_kind": self.server_kind,
            "generator": self.generator,
            "params": self.params,
            "client_bound": self.client_bound,
            "metrics": metrics,
            "notes": self.notes,
        })
    }
}

fn fmt_val(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(x) => {
            let num = if unit.is_empty() && x == x.trunc() && x.abs() < 10_000.0 {
                format!("{x:.0}")
            } else if x.abs() >= 10_000.0 {
                group(x.round() as i64)
            } else if x.abs() >= 100.0 {
                format!("{x:.0}")
            } else if x.abs() >= 10.0 {
                format!("{x:.1}")
            } else if x == x.trunc() && unit.is_empty() {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            };
            if unit.is_empty() {
                num
            } else if unit == "%" || unit == "/s" {
                format!("{num}{unit}")
            } else {
                format!("{num} {unit}")
            }
        }
    }
}

fn group(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The table of one run.
pub fn print_single(r: &RunResult) {
    println!();
    println!(
        "== {} | {} | {}{}",
        r.scenario,
        r.server,
        r.description,
        if r.client_bound {
            " | CLIENT-BOUND"
        } else {
            ""
        }
    );
    let w = r
        .rows
        .iter()
        .map(|x| x.label.len())
        .max()
        .unwrap_or(10)
        .max(10);
    for row in &r.rows {
        println!("  {:<w$}  {:>14}", row.label, fmt_val(row.value, row.unit));
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}

/// Side-by-side table of the same scenario on several servers; the ratio column is the first
/// server's value over each other server's.
pub fn print_compare(runs: &[RunResult]) {
    let Some(first) = runs.first() else { return };
    println!();
    println!("== compare {} | {}", first.scenario, first.description);
    let w = first
        .rows
        .iter()
        .map(|x| x.label.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let names: Vec<String> = runs
        .iter()
        .map(|r| {
            let mut n = r.server_kind.clone();
            if r.client_bound {
                n.push_str(" (client-bound)");
            }
            n
        })
        .collect();
    let colw = names.iter().map(|n| n.len()).max().unwrap_or(14).max(14);
    let mut head = format!("  {:<w$}", "metric");
    for n in &names {
        head.push_str(&format!("  {n:>colw$}"));
    }
    for other in &runs[1..] {
        head.push_str(&format!(
            "  {:>18}",
            format!("{}/{}", first.server_kind, short(&other.server_kind))
        ));
    }
    println!("{head}");
    for row in &first.rows {
        let mut line = format!("  {:<w$}", row.label);
        for r in runs {
            line.push_str(&format!("  {:>colw$}", fmt_val(r.get(&row.key), row.unit)));
        }
        for other in &runs[1..] {
            let ratio = match (row.value, other.get(&row.key)) {
                (Some(a), Some(b)) if b != 0.0 && row.better != Better::Info => {
                    let x = a / b;
                    let better_first = match row.better {
                        Better::Higher => x > 1.0,
                        Better::Lower => x < 1.0,
                        Better::Info => false,
                    };
                    let mark = if (x - 1.0).abs() < 0.02 {
                        " "
                    } else if better_first {
                        "+"
                    } else {
                        "-"
                    };
                    format!("{x:.2}x {mark}")
                }
                _ => "".into(),
            };
            line.push_str(&format!("  {ratio:>18}"));
        }
        println!("{line}");
    }
    println!(
        "  (ratio: {} / other; '+' = {} better, '-' = worse)",
        first.server_kind, first.server_kind
    );
    for r in runs {
        for n in &r.notes {
            println!("  note [{}]: {n}", r.server_kind);
        }
    }
}

fn short(kind: &str) -> &str {
    kind.split('-').next().unwrap_or(kind)
}

/// Writes all results to `path` as JSON.
pub fn write_json(
    path: &std::path::Path,
    runs: &[RunResult],
    machine: serde_json::Value,
) -> std::io::Result<()> {
    let v = serde_json::json!({
        "tool": "ringio loadtest",
        "version": env!("CARGO_PKG_VERSION"),
        "machine": machine,
        "runs": runs.iter().map(RunResult::to_json).collect::<Vec<_>>(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
}

/// The floor table: per scenario, server CPU per op, ops/s and median latency of every server
/// next to the floor's (raw TCP on monoio, same machine, same run), with each server / floor.
pub fn print_floor(groups: &[Vec<RunResult>]) {
    println!();
    println!(
        "== floor: the same load with no protocol (raw TCP on monoio, same run, same machine)"
    );
    println!("   echo floor: each connection writes the echo request's size in raw bytes and reads it back");
    println!(
        "   fanout floor: one 42-byte frame encoded once per broadcast, written to every receiver;"
    );
    println!("   the trigger's shard forwards the seq to the other shards (one socketpair each)");
    let metrics: [(&str, &str, &'static str); 4] = [
        ("server_cpu_us_per_op", "server CPU per op", "us"),
        ("ops_per_s", "ops/s", "/s"),
        ("rtt_p50_ms", "echo RTT p50", "ms"),
        ("last_p50_ms", "send -> LAST receiver p50", "ms"),
    ];
    for g in groups {
        let Some(floor) = g.iter().find(|r| r.server_kind == "floor") else {
            continue;
        };
        let others: Vec<&RunResult> = g.iter().filter(|r| r.server_kind != "floor").collect();
        let mut head = format!("  {:<10}{:<28}", "scenario", "metric");
        for r in &others {
            head.push_str(&format!("{:>20}", short(&r.server_kind)));
        }
        head.push_str(&format!("{:>20}", "floor"));
        for r in &others {
            head.push_str(&format!(
                "{:>20}",
                format!("{}/floor", short(&r.server_kind))
            ));
        }
        println!("{head}");
        for (key, label, unit) in metrics {
            if floor.get(key).is_none() {
                continue;
            }
            let mut line = format!("  {:<10}{:<28}", floor.scenario, label);
            for r in &others {
                line.push_str(&format!("{:>20}", fmt_val(r.get(key), unit)));
            }
            line.push_str(&format!("{:>20}", fmt_val(floor.get(key), unit)));
            for r in &others {
                let ratio = match (r.get(key), floor.get(key)) {
                    (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
                    _ => "-".into(),
                };
                line.push_str(&format!("{ratio:>16}"));
            }
            println!("{line}");
        }
        for r in g {
            if r.client_bound {
                println!(
                    "  {:<8}note: {} was CLIENT-BOUND",
                    r.scenario, r.server_kind
                );
            }
        }
    }
}

/// The CPU table of `compare`: per scenario and generator, CPU per operation three ways (the
/// server process, the client = every generator process, the whole machine from /proc/stat),
/// ops/s and median latency for every server, with each server / `base` (ringio / Node).
pub fn print_cpu(groups: &[Vec<RunResult>], base: &str, other: &str) {
    let metrics: [(&str, &str, &'static str); 9] = [
        ("server_cpu_us_per_op", "server CPU per op", "us"),
        ("client_cpu_us_per_op", "client CPU per op", "us"),
        ("machine_cpu_us_per_op", "machine CPU per op", "us"),
        ("ops_per_s", "ops/s", "/s"),
        ("rtt_p50_ms", "p50", "ms"),
        ("rtt_p99_ms", "p99", "ms"),
        ("last_p50_ms", "send -> LAST p50", "ms"),
        ("server_cpu_hold_pct", "server CPU idle hold", "%"),
        ("machine_cpu_hold_pct", "machine CPU idle hold", "%"),
    ];
    println!();
    println!(
        "== CPU per operation, three ways: the server process / the client (all generator \
         processes) / the whole machine (/proc/stat busy: user+nice+system+irq+softirq+steal)"
    );
    for g in groups {
        let runs: Vec<&RunResult> = g.iter().filter(|r| r.server_kind != "floor").collect();
        let Some(first) = runs.first() else { continue };
        let a = runs.iter().find(|r| short(&r.server_kind) == base);
        let b = runs.iter().find(|r| short(&r.server_kind) == other);
        println!();
        let mut head = format!("  {:<10}{:<10}{:<22}", "scenario", "generator", "metric");
        for r in &runs {
            head.push_str(&format!("{:>16}", short(&r.server_kind)));
        }
        if a.is_some() && b.is_some() {
            head.push_str(&format!("{:>16}", format!("{base}/{other}")));
        }
        println!("{head}");
        for (key, label, unit) in metrics {
            if runs.iter().all(|r| r.get(key).is_none()) {
                continue;
            }
            let mut line = format!(
                "  {:<10}{:<10}{:<22}",
                first.scenario, first.generator, label
            );
            for r in &runs {
                line.push_str(&format!("{:>16}", fmt_val(r.get(key), unit)));
            }
            if let (Some(a), Some(b)) = (a, b) {
                let ratio = match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) if y != 0.0 => format!("{:.2}x", x / y),
                    _ => "-".into(),
                };
                line.push_str(&format!("{ratio:>16}"));
            }
            println!("{line}");
        }
        for r in &runs {
            if r.client_bound {
                println!(
                    "  {:<20}note: {} was CLIENT-BOUND",
                    format!("{} {}", r.scenario, r.generator),
                    r.server_kind
                );
            }
        }
    }
}
