//! Fixtures for the criterion benches (not part of the public API): a shard context installed
//! on the bench thread, with in-memory sessions and sockets (no sockets, no runtime), so that
//! the fan-out path can be measured without syscalls.

use crate::adapter::{deliver_local, BroadcastMsg, Op};
use crate::proto::eio::OutPacket;
use crate::server::shard::{install, Inbox, Peers, ShardCtx, ShardMsg};
use crate::server::{EndpointRt, Session};
use crate::socket::Socket;
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;

/// N polling sessions, each with a socket on "/" in room "r", on a shard installed on the
/// calling thread.
pub struct FanoutFixture {
    ctx: Rc<ShardCtx>,
    sessions: Vec<Rc<Session>>,
    msg: Arc<BroadcastMsg>,
    rx: crossbeam_channel::Receiver<ShardMsg>,
}

impl FanoutFixture {
    /// Builds the fixture with `n` sockets and a pre-encoded 42-byte event.
    pub fn new(n: usize) -> FanoutFixture {
        let cfg = crate::demo::bench(crate::Server::builder())
            .shards(2)
            .config();
        let (tx0, rx0) = crossbeam_channel::bounded(1 << 16);
        let (tx1, _rx1) = crossbeam_channel::bounded(1);
        let inbox = |tx| Inbox {
            tx,
            waker: Default::default(),
            full: Default::default(),
        };
        let peers = Arc::new(Peers {
            inboxes: vec![inbox(tx0), inbox(tx1)],
            presence: crate::adapter::Presence::new(1 << 10),
            metrics: (0..2).map(|_| Default::default()).collect(),
        });
        let ctx = Rc::new(ShardCtx::new(0, cfg.clone(), peers));
        install(ctx.clone());
        let EndpointRt::SocketIo(namespaces) = &ctx.endpoints[0] else {
            unreachable!()
        };
        let ns = namespaces.get("/").expect("/");
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            let sess = Session::new(
                0,
                crate::server::session::Transport::Polling,
                Default::default(),
            );
            let s = Socket::new(ns.clone(), &sess, b"{}");
            s.0.connected.set(true);
            ns.sockets.borrow_mut().insert(s.sid(), s.clone());
            s.join("r");
            sessions.push(sess);
        }
        let text = Bytes::from_static(br#"42["b",{"seq":1,"t":1764262800000.123}]"#);
        let msg = Arc::new(BroadcastMsg {
            ep: 0,
            ns: "/".into(),
            rooms: vec!["r".into()],
            except: Vec::new(),
            op: Op::Emit {
                packets: vec![OutPacket::Text(text)],
                volatile: false,
            },
        });
        FanoutFixture {
            ctx,
            sessions,
            msg,
            rx: rx0,
        }
    }

    /// Delivers the pre-encoded broadcast to every socket of the room (queues a shared `Bytes`).
    pub fn deliver(&self) {
        deliver_local(&self.ctx, &self.msg);
    }

    /// The cross-shard path on one thread: post the message to this shard's inbox, take it
    /// out, deliver it.
    pub fn post_and_deliver(&self) {
        let _ = self
            .ctx
            .peers
            .try_post(0, ShardMsg::Broadcast(self.msg.clone()));
        if let Ok(ShardMsg::Broadcast(m)) = self.rx.try_recv() {
            deliver_local(&self.ctx, &m);
        }
    }

    /// Empties every session's queue.
    pub fn clear(&self) {
        for s in &self.sessions {
            let mut st = s.st.borrow_mut();
            st.out.clear();
            st.out_bytes = 0;
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
