//! The shape of the code, checked on every test run: imports point down the layers, the
//! sans-IO core reads no clock and touches no runtime, and files and functions stay small.
//!
//! ```text
//! server  >  cluster  >  sio  >  engine  >  rt  >  proto        client > proto (and rt)
//! ```

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn files_of(sub: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    rust_files(&Path::new(ROOT).join(sub), &mut v);
    v.into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(ROOT).unwrap().display().to_string(), text)
        })
        .collect()
}

/// Lines of code, comments and doc comments left out.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// Every line of a layer that names something it must not.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    // test code may read the clock (a virtual clock needs an origin)
    for (path, text) in files_of(layer)
        .into_iter()
        .filter(|(p, _)| !is_test_file(p))
    {
        for (n, line) in code_lines(&text) {
            for f in forbidden {
                if line.contains(f) {
                    bad.push(format!("{path}:{n}: names `{f}`: {}", line.trim()));
                }
            }
        }
    }
    bad
}

#[test]
fn imports_point_down() {
    let mut bad = Vec::new();
    let above_proto = [
        "crate::rt",
        "crate::engine",
        "crate::sio",
        "crate::cluster",
        "crate::server",
    ];
    let upper = [
        "crate::client",
        "crate::demo",
        "crate::Server",
        "crate::Socket",
    ];
    let proto_no_io = [
        "monoio",
        "Instant::now",
        "SystemTime::now",
        "std::net::TcpStream",
    ];
    let proto_forbidden: Vec<&str> = above_proto
        .iter()
        .chain(&upper)
        .chain(&proto_no_io)
        .copied()
        .collect();
    bad.extend(violations("src/proto", &proto_forbidden));
    bad.extend(violations(
        "src/rt",
        &[
            "crate::engine",
            "crate::sio",
            "crate::cluster",
            "crate::server",
            "crate::client",
            "crate::demo",
        ],
    ));
    // the engine never names Socket.IO: neither the layer nor its packet codec
    bad.extend(violations(
        "src/engine",
        &[
            "crate::sio",
            "proto::sio",
            "crate::cluster",
            "crate::server",
            "crate::client",
            "crate::demo",
            "Socket::",
            "Namespace",
        ],
    ));
    bad.extend(violations(
        "src/sio",
        &[
            "crate::server",
            "crate::cluster",
            "crate::client",
            "crate::demo",
        ],
    ));
    // the Redis adapter implements the Socket.IO layer's cluster interface; the server
    // layer above installs it
    bad.extend(violations(
        "src/cluster",
        &[
            "crate::server",
            "crate::client",
            "crate::demo",
            "crate::engine",
        ],
    ));
    bad.extend(violations(
        "src/client",
        &[
            "crate::engine",
            "crate::sio",
            "crate::cluster",
            "crate::server",
            "crate::demo",
        ],
    ));
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

fn is_test_file(path: &str) -> bool {
    path.starts_with("tests/") || path.ends_with("/tests.rs")
}

#[test]
fn files_and_functions_stay_small() {
    let mut bad = Vec::new();
    let mut all = files_of("src");
    all.extend(files_of("tests"));
    all.extend(files_of("benches"));
    all.extend(files_of("loadtest/src"));
    all.extend(files_of("fuzz/src"));
    all.extend(files_of("fuzz/examples"));
    for (path, text) in &all {
        let max = if is_test_file(path) { 900 } else { 600 };
        let lines = text.lines().count();
        if lines > max {
            bad.push(format!("{path}: {lines} lines (at most {max})"));
        }
        bad.extend(long_functions(path, text, 120));
    }
    assert!(bad.is_empty(), "too large:\n{}", bad.join("\n"));
}

/// Functions longer than `max` lines, found from rustfmt's layout: a `fn` line, then the line
/// that closes it at the same indentation.
fn long_functions(path: &str, text: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "async fn ",
            "pub async fn ",
        ]
        .iter()
        .chain(&[
            "pub(crate) async fn ",
            "const fn ",
            "pub const fn ",
            "unsafe fn ",
        ])
        .any(|p| t.starts_with(p));
        if !is_fn || t.ends_with(';') {
            continue;
        }
        let indent = l.len() - t.len();
        let close = " ".repeat(indent) + "}";
        let end = lines[i + 1..]
            .iter()
            .position(|x| *x == close || x.starts_with(&(close.clone() + " ")));
        if let Some(end) = end {
            let len = end + 2;
            if len > max {
                bad.push(format!("{path}:{}: function of {len} lines: {t}", i + 1));
            }
        }
    }
    bad
}
