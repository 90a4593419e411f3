//! A raw Engine.IO endpoint: messages in and out without Socket.IO (Node's `engine.io`
//! server; the official Engine.IO suite talks to one).
//!
//! Must not: know Socket.IO.

use super::{App, Session};
use crate::proto::eio::{CloseReason, OutPacket, Packet};
use bytes::Bytes;
use std::rc::Rc;

/// A raw Engine.IO message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMessage {
    /// Text message.
    Text(Bytes),
    /// Binary message.
    Binary(Bytes),
}

/// A raw Engine.IO session, for [`crate::ServerBuilder::engine_endpoint`] handlers.
pub struct EngineSocket(pub(crate) Rc<Session<RawApp>>);

impl EngineSocket {
    /// The session id.
    pub fn id(&self) -> String {
        self.0.sid().to_string()
    }
    /// Sends a message.
    pub fn send(&self, msg: EngineMessage) {
        let p = match msg {
            EngineMessage::Text(t) => {
                let mut b = bytes::BytesMut::with_capacity(t.len() + 1);
                b.extend_from_slice(b"4");
                b.extend_from_slice(&t);
                OutPacket::Text(b.freeze())
            }
            EngineMessage::Binary(b) => OutPacket::Binary(b),
        };
        self.0.send(p);
    }
    /// Closes the session.
    pub fn close(&self) {
        self.0.close(CloseReason::ForcedClose);
    }
}

/// The message handler of a raw endpoint.
pub type RawHandler = Box<dyn Fn(&EngineSocket, EngineMessage)>;

/// The application of a raw endpoint: each message goes to the handler.
pub struct RawApp(pub RawHandler);

impl App for RawApp {
    type Conn = ();
    fn on_open(&self, _sess: &Rc<Session<Self>>) {}
    fn on_message(&self, sess: &Rc<Session<Self>>, msg: Packet) {
        let msg = match msg {
            Packet::Message(t) => EngineMessage::Text(t),
            Packet::Binary(b) => EngineMessage::Binary(b),
            _ => return,
        };
        (self.0)(&EngineSocket(sess.clone()), msg)
    }
    fn on_close(&self, _sess: &Rc<Session<Self>>, _reason: CloseReason) {}
}
