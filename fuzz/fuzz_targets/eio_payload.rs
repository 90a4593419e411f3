//! libFuzzer entry point; the checks live in `ringio_fuzz::eio_payload` (src/lib.rs) so the stable
//! `replay` driver runs exactly the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringio_fuzz::eio_payload(data));
