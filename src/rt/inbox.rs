//! The only cross-thread path between shards: one bounded inbox per shard carrying jobs
//! (boxed closures run on the destination shard, as Seastar's `submit_to`), plus the counters
//! every shard publishes.
//!
//! Senders `try_send` and then wake the destination through its `AtomicWaker`; nothing ever
//! blocks on another shard (two full shards would deadlock). A job that must not be lost or
//! reordered goes through [`crate::rt::Shard::post`], which keeps a per-destination overflow
//! queue on the sender while the inbox is full.
//!
//! Must not: know what a job does (the engine and Socket.IO layers build them).

use super::presence::Presence;
use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

/// Work for another shard, run there on its thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// A job an inbox did not take, given back.
pub enum PostError {
    /// The inbox is full (counted); the shard is alive.
    Full(Job),
    /// The shard has stopped.
    Stopped(Job),
}

impl PostError {
    /// The job that was not posted.
    pub fn into_job(self) -> Job {
        match self {
            PostError::Full(j) | PostError::Stopped(j) => j,
        }
    }
}

/// The inbox of one shard, shared with every other shard.
pub struct Inbox {
    tx: Sender<Job>,
    pub(crate) waker: AtomicWaker,
    /// Jobs refused because the inbox was full.
    full: AtomicU64,
}

/// Counters of one shard (written only by that shard; read by anyone).
#[derive(Default)]
pub struct ShardMetrics {
    /// Volatile packets dropped because the transport was not ready.
    pub volatile_dropped: AtomicU64,
    /// Connections closed because their output queue passed its cap.
    pub slow_consumers: AtomicU64,
    /// Jobs that waited in an overflow queue because a destination inbox was full.
    pub overflowed: AtomicU64,
    /// Open Engine.IO sessions of this shard (every endpoint; the engine counts them).
    pub sessions: AtomicU64,
    /// Coalescing sleeps taken by the idle policy.
    pub idle_sleeps: AtomicU64,
    /// Spin rounds of the idle policy.
    pub idle_spins: AtomicU64,
}

/// What every shard can reach of every other: inboxes, the presence table, counters.
pub struct ShardSet {
    inboxes: Vec<Inbox>,
    /// The room presence table.
    pub presence: Presence,
    metrics: Vec<ShardMetrics>,
    /// This node's id in a cluster (carried by session and socket ids).
    node: AtomicU16,
}

impl ShardSet {
    /// Inboxes for `n` shards of `capacity` jobs each; returns the receivers, by shard id.
    pub fn new(
        n: usize,
        capacity: usize,
        presence_slots: usize,
    ) -> (Arc<ShardSet>, Vec<Receiver<Job>>) {
        let mut rxs = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
            rxs.push(rx);
            inboxes.push(Inbox {
                tx,
                waker: AtomicWaker::new(),
                full: AtomicU64::new(0),
            });
        }
        let peers = ShardSet {
            inboxes,
            presence: Presence::new(presence_slots),
            metrics: (0..n).map(|_| ShardMetrics::default()).collect(),
            node: AtomicU16::new(0),
        };
        (Arc::new(peers), rxs)
    }

    /// Sets this node's id (before the shards start).
    pub fn set_node(&self, id: u16) {
        self.node.store(id, Ordering::Relaxed);
    }

    /// This node's id.
    pub fn node(&self) -> u16 {
        self.node.load(Ordering::Relaxed)
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.inboxes.len()
    }

    /// True when there are no shards (never, once built).
    pub fn is_empty(&self) -> bool {
        self.inboxes.is_empty()
    }

    /// Posts a job to shard `to`; never blocks. Gives the job back when the inbox is full or
    /// the shard has stopped.
    pub fn try_post(&self, to: usize, job: Job) -> Result<(), PostError> {
        let inbox = &self.inboxes[to];
        match inbox.tx.try_send(job) {
            Ok(()) => {
                inbox.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(j)) => {
                inbox.full.fetch_add(1, Ordering::Relaxed);
                inbox.waker.wake();
                Err(PostError::Full(j))
            }
            Err(TrySendError::Disconnected(j)) => Err(PostError::Stopped(j)),
        }
    }

    /// The inbox of shard `id` (its owner registers its waker there).
    pub(crate) fn inbox(&self, id: usize) -> &Inbox {
        &self.inboxes[id]
    }

    /// The counters of shard `id`.
    pub fn metrics(&self, id: usize) -> &ShardMetrics {
        &self.metrics[id]
    }

    /// Jobs refused by shard `id`'s full inbox so far.
    pub fn inbox_full(&self, id: usize) -> u64 {
        self.inboxes[id].full.load(Ordering::Relaxed)
    }
}
