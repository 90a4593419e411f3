//! Acknowledgements in both directions: the client's acks to this server's emits (a table per
//! socket, created on the first one), and [`AckSender`], the server's answer to an emit the
//! client made with a callback.
//!
//! Must not: touch transports (answers are queued through the socket).

use super::adapter::AckReply;
use super::socket::Socket;
use crate::proto::sio::args::{to_writer, IntoArgs, RawArgs};
use crate::proto::sio::encode_packet;
use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;

/// Who waits for an ack: one emitter, or a broadcast collecting acks from many sockets.
pub(crate) enum AckSlot {
    One(futures_channel::oneshot::Sender<RawArgs>),
    Many(futures_channel::mpsc::UnboundedSender<AckReply>),
}

impl AckSlot {
    pub(crate) fn deliver(self, args: RawArgs) {
        match self {
            AckSlot::One(tx) => {
                let _ = tx.send(args);
            }
            AckSlot::Many(tx) => {
                let _ = tx.unbounded_send(AckReply::Ack(args));
            }
        }
    }
}

/// Ack ids are chosen here (sequential), so the table needs no keyed hasher: a zero-sized one.
pub(crate) type AckMap = HashMap<u64, AckSlot, BuildHasherDefault<DefaultHasher>>;

/// Answers a client's emit-with-ack. Sending is a no-op when the client asked for no ack, and
/// only the first answer goes out when several listeners of one event each hold a clone (as
/// Node's ack callback guards against double calls).
#[derive(Clone)]
pub struct AckSender {
    socket: Option<Socket>,
    id: Option<u64>,
    /// Shared by the clones handed to several listeners of one event.
    sent: Option<Rc<Cell<bool>>>,
}

impl AckSender {
    pub(crate) fn new(socket: &Socket, id: Option<u64>) -> AckSender {
        AckSender {
            socket: id.map(|_| socket.clone()),
            id,
            sent: None,
        }
    }

    /// A sender whose clones answer at most once between them.
    pub(crate) fn shared(mut self) -> AckSender {
        if self.id.is_some() && self.sent.is_none() {
            self.sent = Some(Rc::new(Cell::new(false)));
        }
        self
    }

    /// True when the client is waiting for an ack.
    pub fn expected(&self) -> bool {
        self.id.is_some()
    }

    /// Sends the ack with these arguments (`43<id>[...]`, or `46` with binary).
    pub fn send(self, args: impl IntoArgs) {
        if let Some(sent) = &self.sent {
            if sent.replace(true) {
                return;
            }
        }
        if let (Some(s), Some(id)) = (self.socket, self.id) {
            let (text, att) = encode_packet(&s.0.ns.name, None, Some(id), to_writer(args), true);
            s.send_packets(text, att);
        }
    }
}
