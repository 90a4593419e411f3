//! The top layer: the builder, [`Server`] and [`RunningServer`], and the boot of each shard.
//!
//! `Server::builder()` collects options and namespace setup closures (shared, `Send + Sync`);
//! `listen` binds one `SO_REUSEPORT` listener per shard, starts one thread per shard (pinned
//! with `pin_shards`) with its own runtime, and each shard installs every layer's per-shard
//! state.
//!
//! Must not: be imported by the layers below.

mod boot;
mod builder;
mod client_files;

pub use builder::{EngineHandlerFactory, ServerBuilder};

use crate::engine::{EngineConfig, EngineLimits};
use crate::rt::{PostError, ShardSet};
use crate::sio::cluster::{ClusterAdapter, Node};
use crate::sio::SioConfig;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

pub use crate::rt::{Driver, IdlePolicy, UringSetup};

/// One endpoint of the server.
#[derive(Clone)]
pub(crate) enum EndpointCfg {
    /// The Socket.IO endpoint (always the first).
    SocketIo(EngineConfig, SioConfig),
    /// A raw Engine.IO endpoint.
    Raw(EngineConfig, EngineHandlerFactory),
}

/// Shared, read-only configuration.
pub(crate) struct Config {
    pub driver: Driver,
    pub idle: IdlePolicy,
    pub uring_setup: UringSetup,
    pub pin: bool,
    pub limits: EngineLimits,
    pub endpoints: Vec<EndpointCfg>,
    pub shards: usize,
    pub presence_slots: usize,
    pub inbox_capacity: usize,
    pub pages: Arc<crate::proto::http::StaticFiles>,
    pub node_id: u16,
}

/// A configured server, ready to listen.
pub struct Server {
    cfg: Arc<Config>,
}

/// A running server: its address, and the handle to stop it.
pub struct RunningServer {
    addr: SocketAddr,
    peers: Arc<ShardSet>,
    threads: Vec<std::thread::JoinHandle<()>>,
    cluster: Option<Arc<dyn ClusterAdapter>>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Binds `addr` (refusing a port another process holds) and starts the shards.
    pub fn listen(self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        let n = self.cfg.shards;
        let listeners = crate::rt::listener::bind_shards(addr, n)?;
        let addr = listeners[0].local_addr()?;
        let (peers, rxs) = ShardSet::new(n, self.cfg.inbox_capacity, self.cfg.presence_slots);
        peers.set_node(self.cfg.node_id);
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        for (id, (listener, rx)) in listeners.into_iter().zip(rxs).enumerate() {
            let cfg = self.cfg.clone();
            let peers = peers.clone();
            let ready = ready_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("ringio-shard-{id}"))
                .stack_size(16 << 20)
                .spawn(move || {
                    if cfg.pin {
                        let _ = monoio::utils::bind_to_cpu_set([id % ncpu]);
                    }
                    boot::run_shard(id, cfg, peers, listener, rx, ready);
                })?;
            threads.push(t);
        }
        for _ in 0..n {
            let _ = ready_rx.recv();
        }
        let cluster = self.cfg.endpoints.iter().find_map(|e| match e {
            EndpointCfg::SocketIo(_, sio) => sio.cluster.clone().map(|c| (c, sio.namespaces())),
            EndpointCfg::Raw(..) => None,
        });
        let cluster = match cluster {
            Some((c, namespaces)) => {
                c.start(Node::new(peers.clone(), c.clone(), namespaces))?;
                Some(c)
            }
            None => None,
        };
        Ok(RunningServer {
            addr,
            peers,
            threads,
            cluster,
        })
    }
}

/// Server-wide counters (sums over shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Volatile packets dropped because the transport was not ready.
    pub volatile_dropped: u64,
    /// Connections closed because their output queue passed its cap ("slow consumer").
    pub slow_consumers: u64,
    /// Cross-shard messages refused by a full inbox (then retried from the sender's overflow
    /// queue, in order; never dropped).
    pub inbox_full: u64,
    /// Broadcasts that waited in an overflow queue.
    pub overflowed: u64,
    /// Coalescing sleeps of the idle policy ([`IdlePolicy::Coalesce`]).
    pub idle_sleeps: u64,
    /// Spin rounds of the idle policy ([`IdlePolicy::Spin`]).
    pub idle_spins: u64,
}

impl RunningServer {
    /// Current counters.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::default();
        for i in 0..self.peers.len() {
            let s = self.peers.metrics(i);
            m.volatile_dropped += s.volatile_dropped.load(Relaxed);
            m.slow_consumers += s.slow_consumers.load(Relaxed);
            m.overflowed += s.overflowed.load(Relaxed);
            m.idle_sleeps += s.idle_sleeps.load(Relaxed);
            m.idle_spins += s.idle_spins.load(Relaxed);
            m.inbox_full += self.peers.inbox_full(i);
        }
        m
    }
    /// Open Engine.IO sessions, every shard and every endpoint (Node's
    /// `engine.clientsCount`; from a handler: [`crate::engine::clients_count`]).
    pub fn clients_count(&self) -> usize {
        (0..self.peers.len())
            .map(|i| self.peers.metrics(i).sessions.load(Relaxed) as usize)
            .sum()
    }

    /// This node's id (see [`ServerBuilder::node_id`]).
    pub fn node_id(&self) -> u16 {
        self.peers.node()
    }
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Closes every session ("server shutting down") and stops the shards.
    pub fn shutdown(self) {
        if let Some(c) = &self.cluster {
            c.stop();
        }
        for i in 0..self.peers.len() {
            let mut job = boot::shutdown_job();
            for _ in 0..1000 {
                match self.peers.try_post(i, job) {
                    Ok(()) | Err(PostError::Stopped(_)) => break,
                    Err(PostError::Full(j)) => {
                        job = j;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
    /// Blocks until the shards exit.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
