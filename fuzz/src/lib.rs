//! Invariant checks for ringio's sans-IO parsers, shared by the libFuzzer targets
//! (`fuzz_targets/*.rs`, run with `cargo fuzz`) and the stable-toolchain `replay` driver
//! (`src/bin/replay.rs`). Every check panics (`assert!`) when an invariant breaks; "no panic" is
//! the weakest of them.
//!
//! Chunked feeds split the input at a point derived from a hash of the input itself (so seeds stay
//! plain protocol bytes), and short inputs are additionally fed one byte at a time.

use bytes::{Bytes, BytesMut};
use ringio::proto::{eio, http, sio, ws};
use sonic_rs::JsonContainerTrait as _;

mod check_eio;
mod check_http;
mod check_sio;
mod check_ws;

pub use check_eio::eio_payload;
pub use check_http::http_head;
pub use check_sio::sio_packet;
pub use check_ws::ws_decoder;

/// Known, reported issues a run may be told to tolerate, as a comma-separated list in the
/// environment variable `RINGIO_FUZZ_KNOWN` (default: none, every check is strict). They exist so
/// a fuzzer can get past a bug that is already reported (a crash stops libFuzzer) while it stays
/// unfixed; see fuzz/README.md for each id.
///
/// - `sonic-value`: a Socket.IO argument need not parse as `sonic_rs::Value`; it is checked with
///   the JSON.parse grammar instead (sonic-rs' full parser refuses lone surrogate escapes and
///   numbers that overflow f64, which Node's JSON.parse accepts).
/// - `bad-u-escape`: the JSON.parse grammar check accepts `\u` followed by any 4 bytes (as
///   sonic-rs' lazy skip does, even a `"`), not only 4 hex digits.
/// - `formfeed`: the JSON.parse grammar check treats form feed (0x0C) as whitespace.
/// - `non-utf8`: `sio_packet` skips input that is not UTF-8 (sonic-rs' `LazyValue` parse, used
///   by `sio::decode` for CONNECT / CONNECT_ERROR payloads and non-array ACK/EVENT payloads, trips
///   a debug assertion on a non-UTF-8 byte, and is `from_utf8_unchecked` UB in release builds).
pub fn known(id: &str) -> bool {
    static KNOWN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("RINGIO_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|k| k == id)
}

/// Every target: name (= `fuzz/seeds/<name>/`, `fuzz/corpus/<name>/`) and check function.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("http_head", http_head),
    ("ws_decoder", ws_decoder),
    ("eio_payload", eio_payload),
    ("sio_packet", sio_packet),
];

/// Inputs up to this length are also fed one byte at a time.
const BYTEWISE_MAX: usize = 256;

/// FNV-1a: a cheap, deterministic split point chosen by the input's contents.
pub(crate) fn split_point(data: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % (data.len() as u64 + 1)) as usize
}

/// The chunkings every incremental check runs: two chunks at a hashed point, two chunks at the
/// middle, and (short inputs) one byte at a time.
pub(crate) fn chunkings(data: &[u8]) -> Vec<Vec<usize>> {
    let n = data.len();
    let mut out = vec![vec![split_point(data), n], vec![n / 2, n]];
    if n <= BYTEWISE_MAX {
        out.push((1..=n).collect());
    }
    out
}

/// Chunks of `data` ending at each cut in `cuts` (cuts ascending, last == data.len()).
pub(crate) fn chunks<'a>(data: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut from = 0;
    cuts.iter().map(move |&to| {
        let c = &data[from..to];
        from = to;
        c
    })
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
