//! The global room presence table "keyed by room hash": `Box<[AtomicU64]>`, slot =
//! hash(namespace, room) & mask, bit i = shard i may have members.
//!
//! Only shard i writes bit i, synchronously on its local 0 -> 1 and 1 -> 0 transitions of a
//! slot, so a broadcast issued after a `join()` returned always sees the join. Collisions cost
//! an extra cross-shard message, never a lost one: each shard looks rooms up by full name.
//!
//! Must not: store room names (only hashes: each shard checks names itself).

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The presence table shared by every shard.
pub struct Presence {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

impl Presence {
    /// A table of `size` slots (rounded up to a power of two, at least 1).
    pub fn new(size: usize) -> Presence {
        let size = size.max(1).next_power_of_two();
        Presence {
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
        }
    }
    /// The slot of a room.
    pub fn slot(&self, ns: &str, room: &str) -> usize {
        // fixed keys: every shard must compute the same slot
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        ns.hash(&mut h);
        room.hash(&mut h);
        (h.finish() as usize) & self.mask
    }
    /// Sets or clears `shard`'s bit of `slot` (only that shard calls this for its bit).
    pub fn set(&self, slot: usize, shard: usize, on: bool) {
        let bit = 1u64 << shard;
        if on {
            self.slots[slot].fetch_or(bit, Ordering::SeqCst);
        } else {
            self.slots[slot].fetch_and(!bit, Ordering::SeqCst);
        }
    }
    /// Shards that may have members of the room.
    pub fn shards(&self, slot: usize) -> u64 {
        self.slots[slot].load(Ordering::SeqCst)
    }
}
