//! Fixtures for the criterion benches (not part of the public API): a shard installed on the
//! bench thread, with in-memory sessions and sockets (no sockets, no runtime), so that the
//! fan-out path can be measured without syscalls.
//!
//! Must not: be used outside the benches (it installs a shard on the calling thread).

use crate::engine::endpoint::EndpointImpl;
use crate::engine::Handshake;
use crate::proto::eio::{OutPacket, Transport};
use crate::rt::{self, Job, ShardSet};
use crate::server::EndpointCfg;
use crate::sio::adapter::{deliver_local, BroadcastMsg, Op};
use crate::sio::conn::Sess;
use crate::sio::socket::Socket;
use crate::sio::{local, SioShard};
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;

/// N polling sessions, each with a socket on "/" in room "r", on a shard installed on the
/// calling thread.
pub struct FanoutFixture {
    sio: Rc<SioShard>,
    peers: Arc<ShardSet>,
    sessions: Vec<Rc<Sess>>,
    msg: Arc<BroadcastMsg>,
    rx: crossbeam_channel::Receiver<Job>,
}

impl FanoutFixture {
    /// Builds the fixture with `n` sockets and a pre-encoded 42-byte event.
    pub fn new(n: usize) -> FanoutFixture {
        let cfg = crate::demo::bench(crate::Server::builder())
            .shards(2)
            .config();
        let (peers, mut rxs) = ShardSet::new(2, 1 << 16, 1 << 10);
        rt::Shard::install(0, peers.clone());
        let EndpointCfg::SocketIo(engine, sio) = &cfg.endpoints[0] else {
            unreachable!("the Socket.IO endpoint comes first")
        };
        let app = crate::sio::install(sio);
        let ep = EndpointImpl::new(engine.clone(), cfg.limits.queue, app);
        let ns = local().namespaces.get("/").expect("/");
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            let sess = Sess::open(
                &ep,
                Transport::Polling,
                Rc::new(Handshake::default()),
                None,
                false,
                |_| None,
            );
            let s = Socket::new(ns.clone(), &sess, b"{}");
            s.set_connected();
            ns.sockets.borrow_mut().insert(s.sid(), s.clone());
            s.join("r");
            sessions.push(sess);
        }
        let text = Bytes::from_static(br#"42["b",{"seq":1,"t":1764262800000.123}]"#);
        let msg = Arc::new(BroadcastMsg {
            ns: "/".into(),
            parent: None,
            rooms: vec!["r".into()],
            except: Vec::new(),
            op: Op::Emit {
                packets: vec![OutPacket::Text(text)],
                volatile: false,
            },
        });
        FanoutFixture {
            sio: local(),
            peers,
            sessions,
            msg,
            rx: rxs.swap_remove(0),
        }
    }

    /// Delivers the pre-encoded broadcast to every socket of the room (queues a shared `Bytes`).
    pub fn deliver(&self) {
        deliver_local(&self.sio, &self.msg);
    }

    /// The cross-shard path on one thread: post the delivery job to this shard's inbox, take
    /// it out, run it.
    pub fn post_and_deliver(&self) {
        let msg = self.msg.clone();
        let _ = self
            .peers
            .try_post(0, Box::new(move || deliver_local(&local(), &msg)));
        if let Ok(job) = self.rx.try_recv() {
            job();
        }
    }

    /// Empties every session's queue.
    pub fn clear(&self) {
        for s in &self.sessions {
            let mut st = s.st.borrow_mut();
            while st.m.poll_transmit().is_some() {}
        }
    }

    /// Number of sockets.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when there are no sockets.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}
