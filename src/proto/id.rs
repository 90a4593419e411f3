//! The 24-character ids of sessions and sockets: 128 bits from the OS CSPRNG (22 base64url
//! characters) followed by 2 characters naming the owner shard.
//!
//! The shard suffix is what lets any shard route a polling request, a WebSocket upgrade or a
//! message for a socket to its owner without a shared table. Randomness is not a clock read:
//! the sans-IO rule holds.
//!
//! Must not: read the clock.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Most shards an id can name (two base64 characters).
pub const MAX_SHARDS: usize = 64 * 64;

/// The shared representation of [`crate::proto::eio::Sid`] and [`crate::proto::sio::SocketId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Id24([u8; 24]);

impl Id24 {
    pub(crate) fn new(shard: usize) -> Id24 {
        use base64::Engine as _;
        let mut rnd = [0u8; 16];
        getrandom::fill(&mut rnd).expect("CSPRNG");
        let mut s = [0u8; 24];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(rnd, &mut s[..22])
            .expect("22 chars");
        debug_assert_eq!(n, 22);
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
        let v = |c: u8| B64.iter().position(|&x| x == c).unwrap_or(0);
        (v(self.0[22]) << 6) | v(self.0[23])
    }

    pub(crate) fn as_str(&self) -> &str {
        // only base64url characters are ever stored
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// Declares a public id type over [`Id24`].
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(crate::proto::id::Id24);

        impl $name {
            /// A fresh id owned by `shard`.
            pub fn new(shard: usize) -> $name {
                $name(crate::proto::id::Id24::new(shard))
            }
            /// Parses an id (24 base64url characters).
            pub fn parse(s: &str) -> Option<$name> {
                crate::proto::id::Id24::parse(s).map($name)
            }
            /// The shard that owns this id.
            pub fn shard(&self) -> usize {
                self.0.shard()
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
        for shard in [0, 1, 63, 64, 4095] {
            let id = Id24::new(shard);
            assert_eq!(id.as_str().len(), 24);
            assert_eq!(id.shard(), shard);
            assert_eq!(Id24::parse(id.as_str()), Some(id));
        }
        assert_eq!(Id24::parse("short"), None);
        assert_eq!(Id24::parse("!!!!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_ne!(Id24::new(0), Id24::new(0));
    }
}
