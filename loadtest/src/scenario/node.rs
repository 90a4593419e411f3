//! The Node generator (`--generator node`): the official socket.io-client 4.8 (pinned in
//! loadtest/generator/node/package-lock.json) driven by `generator.js`, one or more processes
//! speaking the protocol of `multi.rs`. `npm ci` runs there when node_modules is missing.

use super::params::{Params, Target};
use crate::server::workspace_root;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// loadtest/generator/node
pub fn dir() -> PathBuf {
    workspace_root()
        .join("loadtest")
        .join("generator")
        .join("node")
}

/// Installs the generator's npm packages when they are missing.
pub fn ensure_installed() -> Result<(), String> {
    crate::server::npm_install(&dir(), "socket.io-client")
}

/// "socket.io-client 4.8.4" (the installed version; the pinned one before `npm ci`).
pub fn client_label() -> String {
    static LABEL: OnceLock<String> = OnceLock::new();
    LABEL
        .get_or_init(|| {
            let version = |p: PathBuf, ptr: &str| {
                let s = std::fs::read_to_string(p).ok()?;
                let v: serde_json::Value = serde_json::from_str(&s).ok()?;
                v.pointer(ptr)?.as_str().map(str::to_string)
            };
            let d = dir();
            let v = version(
                d.join("node_modules/socket.io-client/package.json"),
                "/version",
            )
            .or_else(|| version(d.join("package.json"), "/dependencies/socket.io-client"))
            .unwrap_or_else(|| "4.8".into());
            format!("socket.io-client {v}")
        })
        .clone()
}

/// The JSON parameters of Node generator process `k`.
fn params_json(targets: &[Target], src_ips: usize, p: &Params, k: usize) -> serde_json::Value {
    let urls: Vec<String> = targets
        .iter()
        .map(|t| format!("http://{}", t.host_header))
        .collect();
    serde_json::json!({
        "scenario": p.scenario.name(),
        "targets": urls,
        "conns": p.conns,
        "in_flight": p.in_flight,
        "proc_index": k,
        "procs": p.procs,
        "src_ips": src_ips,
        "rate": p.rate,
        "payload_len": p.payload_len,
        "open_rate": p.open_rate,
        "duration_s": p.duration.as_secs_f64(),
        "broadcasts": p.broadcasts,
        "interval_ms": p.interval.as_secs_f64() * 1000.0,
        "burst": p.burst.max(1),
        "transports": p.node_transports,
        "connect_timeout_ms": super::runner::CONNECT_TIMEOUT.as_millis() as u64,
    })
}

/// The command lines of Node generator processes 0..N of `p.procs` (installing the npm
/// packages first when needed).
pub fn commands(targets: &[Target], src_ips: usize, p: &Params) -> Result<Vec<Command>, String> {
    ensure_installed()?;
    let script = dir().join("generator.js");
    Ok((0..p.procs)
        .map(|k| {
            let mut cmd = Command::new("node");
            cmd.arg(&script)
                .arg(params_json(targets, src_ips, p, k).to_string())
                .current_dir(dir());
            cmd
        })
        .collect())
}
