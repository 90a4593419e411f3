//! Stable-toolchain driver for the fuzz checks: no libFuzzer, no sanitizer, no coverage feedback.
//!
//! Runs every input under fuzz/seeds/<target>/, fuzz/corpus/<target>/ and
//! fuzz/regressions/<target>/, then N pseudo-random mutations of them (bit flips, byte
//! insert/delete/duplicate, dictionary tokens from fuzz/dicts/<target>.dict, crossover).
//! A failing check prints the panic, writes the input to
//! fuzz/artifacts/replay/<target>/crash-<hash> and exits 1.
//!
//! Usage: replay [--iters N] [--secs S] [--seed X] [--only-files] [TARGET...] [FILE...]
//!   --iters N      mutations per target (default 20000)
//!   --secs S       stop mutating a target after S seconds (default: no limit)
//!   --seed X       RNG seed (default: fixed; same seed, same inputs)
//!   FILE           a path that exists is run against every named target (or all)
//!
//! Build and run (from fuzz/): cargo run --release --no-default-features --example replay -- --iters 100000

use std::io::Write;
use std::panic;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringio_fuzz::TARGETS;

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const MAX_LEN: usize = 4096;
const INTERESTING: &[u8] =
    b"\x00\x01\x7e\x7f\x80\x81\xfe\xff\x1e\r\n ,-/[]{}\":0123456789b?&=\x88\x89\x8a";

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Parses a libFuzzer dictionary: lines `name="value"` or `"value"` with `\\`, `\"`, `\xNN`.
fn load_dict(path: &Path) -> Vec<Vec<u8>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let (Some(a), Some(b)) = (line.find('"'), line.rfind('"')) else {
            continue;
        };
        if b <= a {
            continue;
        }
        let s = line[a + 1..b].as_bytes();
        let mut v = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'\\' && i + 1 < s.len() {
                if s[i + 1] == b'x' && i + 3 < s.len() {
                    if let Ok(b) =
                        u8::from_str_radix(std::str::from_utf8(&s[i + 2..i + 4]).unwrap_or(""), 16)
                    {
                        v.push(b);
                        i += 4;
                        continue;
                    }
                }
                v.push(s[i + 1]);
                i += 2;
            } else {
                v.push(s[i]);
                i += 1;
            }
        }
        out.push(v);
    }
    out
}

fn read_dir_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_file() {
            if let Ok(d) = std::fs::read(&p) {
                out.push((p, d));
            }
        }
    }
}

fn mutate(rng: &mut Rng, pool: &[Vec<u8>], dict: &[Vec<u8>]) -> Vec<u8> {
    let mut v = pool[rng.below(pool.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let n = v.len();
        match rng.below(11) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                v[i] = rng.next() as u8;
            }
            2 if n > 0 => {
                let i = rng.below(n);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => {
                let i = rng.below(n + 1);
                let k = 1 + rng.below(8);
                let ins: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
                v.splice(i..i, ins);
            }
            4 if n > 0 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(16));
                v.drain(i..i + k);
            }
            5 if n > 0 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(32));
                let chunk = v[i..i + k].to_vec();
                let at = rng.below(n + 1);
                v.splice(at..at, chunk);
            }
            6 | 7 if !dict.is_empty() => {
                let tok = &dict[rng.below(dict.len())];
                let i = rng.below(n + 1);
                if rng.below(2) == 0 || i + tok.len() > n {
                    v.splice(i..i, tok.iter().copied());
                } else {
                    v[i..i + tok.len()].copy_from_slice(tok);
                }
            }
            8 => {
                let other = &pool[rng.below(pool.len())];
                let a = rng.below(n + 1);
                let b = rng.below(other.len() + 1);
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            9 if n > 0 => v.truncate(rng.below(n)),
            _ => {
                let i = rng.below(n + 1);
                v.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
        }
    }
    v.truncate(MAX_LEN);
    v
}

fn crash(fuzz_dir: &Path, target: &str, input: &[u8], from: &str) -> ! {
    let dir = fuzz_dir.join("artifacts/replay").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:016x}", fnv(input)));
    let _ = std::fs::write(&path, input);
    eprintln!(
        "CRASH in {target} ({from}), {} bytes: {:?}",
        input.len(),
        String::from_utf8_lossy(input)
    );
    eprintln!("crash input written to {}", path.display());
    let _ = std::io::stderr().flush();
    std::process::exit(1);
}

fn main() {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut iters = 20_000usize;
    let mut secs: Option<f64> = None;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut names = Vec::new();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |what: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{what} needs a value"))
        };
        match a.as_str() {
            "--iters" => iters = val("--iters").parse().expect("--iters N"),
            "--secs" => secs = Some(val("--secs").parse().expect("--secs S")),
            "--seed" => seed = val("--seed").parse().expect("--seed X"),
            "-h" | "--help" => {
                eprintln!("replay [--iters N] [--secs S] [--seed X] [TARGET...] [FILE...]");
                eprintln!(
                    "targets: {}",
                    TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(" ")
                );
                return;
            }
            _ if TARGETS.iter().any(|t| t.0 == a) => names.push(a),
            _ if Path::new(&a).exists() => files.push(PathBuf::from(a)),
            _ => panic!("unknown target or missing file: {a}"),
        }
    }
    if names.is_empty() {
        names = TARGETS.iter().map(|t| t.0.to_string()).collect();
    }
    let mut rng = Rng(seed | 1);
    for name in &names {
        let check = TARGETS.iter().find(|t| t.0 == name).unwrap().1;
        let mut inputs = Vec::new();
        if files.is_empty() {
            for sub in ["seeds", "corpus", "regressions"] {
                read_dir_files(&fuzz_dir.join(sub).join(name), &mut inputs);
            }
        } else {
            for f in &files {
                if f.is_dir() {
                    read_dir_files(f, &mut inputs);
                } else {
                    inputs.push((f.clone(), std::fs::read(f).expect("read input")));
                }
            }
        }
        let start = Instant::now();
        for (path, data) in &inputs {
            if panic::catch_unwind(|| check(data)).is_err() {
                crash(&fuzz_dir, name, data, &path.display().to_string());
            }
        }
        let replayed = inputs.len();
        let mut pool: Vec<Vec<u8>> = inputs.into_iter().map(|(_, d)| d).collect();
        if pool.is_empty() {
            pool.push(Vec::new());
        }
        let dict = load_dict(&fuzz_dir.join("dicts").join(format!("{name}.dict")));
        let deadline = secs.map(|s| start + Duration::from_secs_f64(s));
        let mut done = 0usize;
        if files.is_empty() {
            while done < iters && deadline.is_none_or(|d| Instant::now() < d) {
                let input = mutate(&mut rng, &pool, &dict);
                if panic::catch_unwind(|| check(&input)).is_err() {
                    crash(&fuzz_dir, name, &input, "mutation");
                }
                // Keep some mutants so mutations compound (no coverage feedback here).
                if rng.below(8) == 0 {
                    if pool.len() < 2048 {
                        pool.push(input);
                    } else {
                        let i = rng.below(pool.len());
                        pool[i] = input;
                    }
                }
                done += 1;
            }
        }
        let el = start.elapsed().as_secs_f64();
        println!(
            "{name}: {replayed} files replayed, {done} mutations in {el:.1}s ({:.0} exec/s), no failures",
            (replayed + done) as f64 / el.max(1e-9)
        );
    }
}
