//! The 24-character ids of sessions and sockets: 120 bits from the OS CSPRNG (20 base64url
//! characters, as many as Node's ids carry), then 2 characters naming the node and 2 naming
//! the owner shard.
//!
//! The shard suffix is what lets any shard route a polling request, a WebSocket upgrade or a
//! message for a socket to its owner without a shared table; the node part lets a node of a
//! cluster refuse at once a session of another node ("Session ID unknown"), and lets a load
//! balancer route by it (README: sticky sessions). Randomness is not a clock read: the sans-IO
//! rule holds.
//!
//! Must not: read the clock.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Most shards an id can name (two base64 characters).
pub const MAX_SHARDS: usize = 64 * 64;
/// Most nodes an id can name (two base64 characters).
pub const MAX_NODES: usize = 64 * 64;

/// A random node id (a node whose id was not configured).
pub fn random_node() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b) & (MAX_NODES as u16 - 1)
}

/// The shared representation of [`crate::proto::eio::Sid`] and [`crate::proto::sio::SocketId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Id24([u8; 24]);

impl Id24 {
    pub(crate) fn new(node: u16, shard: usize) -> Id24 {
        use base64::Engine as _;
        let mut rnd = [0u8; 15];
        getrandom::fill(&mut rnd).expect("CSPRNG");
        let mut s = [0u8; 24];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(rnd, &mut s[..20])
            .expect("20 chars");
        debug_assert_eq!(n, 20);
        let node = node as usize;
        s[20] = B64[(node >> 6) & 63];
        s[21] = B64[node & 63];
        s[22] = B64[(shard >> 6) & 63];
        s[23] = B64[shard & 63];
        Id24(s)
    }

    pub(crate) fn parse(s: &str) -> Option<Id24> {
        let b = s.as_bytes();
        if b.len() != 24 || !b.iter().all(|c| B64.contains(c)) {
            return None;
        }
        let mut out = [0u8; 24];
        out.copy_from_slice(b);
        Some(Id24(out))
    }

    pub(crate) fn shard(&self) -> usize {
        (b64_value(self.0[22]) << 6) | b64_value(self.0[23])
    }

    pub(crate) fn node(&self) -> u16 {
        ((b64_value(self.0[20]) << 6) | b64_value(self.0[21])) as u16
    }

    pub(crate) fn as_str(&self) -> &str {
        // only base64url characters are ever stored
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

fn b64_value(c: u8) -> usize {
    B64.iter().position(|&x| x == c).unwrap_or(0)
}

/// The two id characters that name `node` (e.g. for a load balancer's routing table).
pub fn node_chars(node: u16) -> String {
    let node = node as usize;
    [B64[(node >> 6) & 63] as char, B64[node & 63] as char]
        .iter()
        .collect()
}

/// Declares a public id type over [`Id24`].
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(crate::proto::id::Id24);

        impl $name {
            /// A fresh id owned by `shard` of `node`.
            pub fn new(node: u16, shard: usize) -> $name {
                $name(crate::proto::id::Id24::new(node, shard))
            }
            /// Parses an id (24 base64url characters).
            pub fn parse(s: &str) -> Option<$name> {
                crate::proto::id::Id24::parse(s).map($name)
            }
            /// The shard that owns this id.
            pub fn shard(&self) -> usize {
                self.0.shard()
            }
            /// The node that owns this id.
            pub fn node(&self) -> u16 {
                self.0.node()
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use id_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shard() {
        for (node, shard) in [(0, 0), (1, 1), (4095, 63), (64, 64), (7, 4095)] {
            let id = Id24::new(node, shard);
            assert_eq!(id.as_str().len(), 24);
            assert_eq!(id.shard(), shard);
            assert_eq!(id.node(), node);
            assert_eq!(&id.as_str()[20..22], node_chars(node));
            assert_eq!(Id24::parse(id.as_str()), Some(id));
        }
        assert_eq!(Id24::parse("short"), None);
        assert_eq!(Id24::parse("!!!!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_ne!(Id24::new(0, 0), Id24::new(0, 0));
        assert!(random_node() < MAX_NODES as u16);
    }
}
