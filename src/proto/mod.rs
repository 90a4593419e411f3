//! Sans-IO protocol code: no sockets, no runtime, no clock (time is passed in).
//!
//! Inputs are byte buffers owned by the caller; "need more bytes" is `Ok(None)`, never an error.
//!
//! Must not: touch sockets, the runtime or the clock; name no layer above it.

pub mod eio;
pub mod http;
pub mod id;
pub use id::MAX_SHARDS;
pub mod sio;
pub mod ws;
