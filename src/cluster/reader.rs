//! The sub thread: reads what Redis pushes on the subscriber connection, decodes it, and acts:
//! broadcasts, joins, leaves and disconnects go to the shards' inboxes; requests run on one
//! shard ([`super::serve`]); answers to this node's requests go to the futures waiting for
//! them (the pending table lives here, filled by the pub thread before each request).
//!
//! Must not: write to Redis (answers go through the pub thread).

use super::msgpack::{self, Value};
use super::wire::{sockets, Incoming, Response};
use super::writer::ToReader;
use super::{serve, AnswerRoute, Pending, Shared, ToWriter};
use crate::sio::cluster::{self, Answer, Node};
use crate::sio::AckReply;
use crossbeam_channel::Receiver;
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Reader {
    shared: Arc<Shared>,
    node: Node,
    rx: Receiver<ToReader>,
    pending: HashMap<String, Pending>,
    next_gc: Instant,
}

pub(crate) fn run(shared: Arc<Shared>, node: Node, rx: Receiver<ToReader>) {
    let mut r = Reader {
        shared,
        node,
        rx,
        pending: HashMap::new(),
        next_gc: Instant::now(),
    };
    loop {
        let Some(stream) = r.wait_for_connection() else {
            return;
        };
        r.read(stream);
        if r.shared.stopping.load(Relaxed) {
            return;
        }
        // tell the pub thread, which reconnects (waiting while its queue is full)
        while !r.shared.stopping.load(Relaxed) {
            let sent = r
                .shared
                .tx
                .send_timeout(ToWriter::SubLost, Duration::from_millis(100));
            if sent.is_ok() {
                break;
            }
        }
    }
}

impl Reader {
    fn wait_for_connection(&mut self) -> Option<TcpStream> {
        loop {
            match self.rx.recv() {
                Ok(ToReader::Conn(s)) => return Some(s),
                Ok(ToReader::Pending(id, p)) => {
                    self.pending.insert(id, p);
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads until the connection fails.
    fn read(&mut self, mut stream: TcpStream) {
        let mut parser = redis::Parser::new();
        loop {
            let v = match parser.parse_value(&mut stream) {
                Ok(v) => v,
                Err(e) => {
                    if !self.shared.stopping.load(Relaxed) {
                        tracing::debug!("redis adapter: subscriber connection: {e}");
                    }
                    return;
                }
            };
            self.drain();
            if let Some((channel, payload)) = message(v) {
                self.shared.counters.received.fetch_add(1, Relaxed);
                match self.shared.proto.decode(&channel, &payload) {
                    Ok(m) => self.dispatch(m),
                    Err(e) => {
                        self.shared.counters.bad_messages.fetch_add(1, Relaxed);
                        tracing::debug!("redis adapter: undecodable message on {channel}: {e:?}");
                    }
                }
            }
        }
    }

    /// Takes the requests registered since the last message; forgets expired ones.
    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                ToReader::Pending(id, p) => {
                    self.pending.insert(id, p);
                }
                // a new connection while this one still reads: the pub thread gave up on this
                // one; the old one ends when its socket closes
                ToReader::Conn(_) => {}
            }
        }
        let now = Instant::now();
        if now >= self.next_gc {
            self.pending.retain(|_, p| p.deadline > now);
            self.next_gc = now + Duration::from_secs(1);
        }
    }

    fn dispatch(&mut self, m: Incoming) {
        let node = &self.node;
        match m {
            Incoming::Broadcast {
                target,
                data,
                volatile,
            } => node.emit(target, &data, volatile),
            Incoming::Rooms {
                target,
                rooms,
                join: true,
            } => node.join(target, rooms),
            Incoming::Rooms { target, rooms, .. } => node.leave(target, rooms),
            Incoming::Disconnect { target, close } => node.disconnect(target, close),
            Incoming::Response { request_id, body } => self.answer(&request_id, body),
            Incoming::Ignore => {}
            request => serve::serve(node, &self.shared, request),
        }
    }

    /// An answer to one of this node's requests.
    fn answer(&mut self, id: &str, body: Response) {
        let Some(p) = self.pending.get(id) else {
            return;
        };
        let ok = match (&p.route, body) {
            (AnswerRoute::Answers(tx), Response::Sockets(v)) => {
                let adapter = self.node.adapter();
                let socks = v
                    .iter()
                    .filter_map(|s| sockets::from_value(s, &p.ns, &adapter))
                    .collect();
                tx.unbounded_send(Answer::Sockets(socks)).is_ok()
            }
            (AnswerRoute::Answers(tx), Response::Rooms(v)) => {
                tx.unbounded_send(Answer::Rooms(v)).is_ok()
            }
            (AnswerRoute::Answers(tx), Response::ServerSideAck(v)) => match args(&v) {
                Some(a) => tx.unbounded_send(Answer::Ack(a)).is_ok(),
                None => true,
            },
            (AnswerRoute::Acks(tx), Response::ClientCount(n)) => {
                tx.unbounded_send(AckReply::Count(n as usize)).is_ok()
            }
            (AnswerRoute::Acks(tx), Response::Ack(v)) => match args(&v) {
                Some(a) => tx.unbounded_send(AckReply::Ack(a)).is_ok(),
                None => true,
            },
            _ => true,
        };
        if !ok {
            // the requester has stopped waiting
            self.pending.remove(id);
        }
    }
}

/// One ack argument as arguments (`[arg]`).
fn args(v: &Value) -> Option<crate::RawArgs> {
    let (json, att) = msgpack::to_json_bytes(&Value::Array(vec![v.clone()]));
    cluster::args_of(json, att)
}

/// The channel and payload of a pushed message (`message`, `pmessage`, `smessage`); `None` for
/// subscription confirmations.
fn message(v: redis::Value) -> Option<(String, Vec<u8>)> {
    let items = match v {
        redis::Value::Array(a) => a,
        redis::Value::Push { data, .. } => data,
        _ => return None,
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let kind = text(items.first()?)?;
    let (ch, payload) = match kind.as_str() {
        "message" | "smessage" => (items.get(1)?, items.get(2)?),
        "pmessage" => (items.get(2)?, items.get(3)?),
        _ => return None,
    };
    match payload {
        redis::Value::BulkString(b) => Some((text(ch)?, b.clone())),
        _ => None,
    }
}
