//! The Socket.IO layer of one Engine.IO session: the namespaces it joined, binary reassembly,
//! dispatch of CONNECT / DISCONNECT / EVENT / ACK, and the connect timeout. [`SioApp`] is the
//! engine's application for the Socket.IO endpoint.
//!
//! Must not: touch transports (it queues through the session) or other shards directly.

use super::socket::Socket;
use super::{local, DisconnectReason};
use crate::engine::{App, Session};
use crate::proto::eio::{CloseReason, OutPacket, Packet};
use crate::proto::sio::args::RawArgs;
use crate::proto::sio::{self, Kind, ParseError};
use bytes::Bytes;
use smallvec::SmallVec;
use std::rc::Rc;
use std::time::Instant;

/// An Engine.IO session of the Socket.IO endpoint.
pub(crate) type Sess = Session<SioApp>;

/// Socket.IO state of one connection.
#[derive(Default)]
pub struct SioConn {
    sockets: SmallVec<[Socket; 1]>,
    /// A binary packet waiting for its attachments (boxed: rare, and large inline).
    partial: Option<Box<sio::Partial>>,
}

impl SioConn {
    fn get(&self, nsp: &[u8]) -> Option<Socket> {
        self.sockets
            .iter()
            .find(|s| s.ns().as_bytes() == nsp)
            .cloned()
    }
    pub(crate) fn remove(&mut self, nsp: &str) {
        self.sockets.retain(|s| s.ns() != nsp);
    }
}

/// The Socket.IO application of the engine (one per shard).
pub struct SioApp;

impl App for SioApp {
    type Conn = SioConn;

    fn on_open(&self, sess: &Rc<Sess>) {
        sess.set_app_timer(Instant::now() + local().connect_timeout);
    }

    fn on_message(&self, sess: &Rc<Sess>, p: Packet) {
        if let Err(e) = handle(sess, p) {
            tracing::debug!(sid = %sess.sid(), ?e, "invalid packet");
            sess.close(CloseReason::ParseError);
        }
    }

    fn on_close(&self, sess: &Rc<Sess>, reason: CloseReason) {
        let sockets = std::mem::take(&mut sess.app().sockets);
        for s in sockets {
            s.on_closed(reason.into());
        }
    }

    /// The connect timeout: a connection that joined no namespace in time is closed; Node's
    /// client closes it itself, hence "forced close".
    fn on_app_timer(&self, sess: &Rc<Sess>) {
        if sess.app().sockets.is_empty() {
            sess.close(CloseReason::ForcedClose);
        }
    }
}

fn handle(sess: &Rc<Sess>, p: Packet) -> Result<(), ParseError> {
    let max_att = local().max_attachments;
    let complete = {
        let mut conn = sess.app();
        match p {
            Packet::Message(text) => {
                if conn.partial.is_some() {
                    return Err(ParseError::UnexpectedAttachment);
                }
                let packet = sio::decode(text, max_att)?;
                if packet.kind.is_binary() && packet.attachments > 0 {
                    conn.partial = Some(Box::new(sio::Partial {
                        packet,
                        attachments: Vec::new(),
                    }));
                    return Ok(());
                }
                (packet, Vec::new())
            }
            Packet::Binary(data) => {
                let Some(partial) = conn.partial.as_mut() else {
                    return Err(ParseError::UnexpectedAttachment);
                };
                if !partial.push(data) {
                    return Ok(());
                }
                let p = conn.partial.take().expect("checked above");
                (p.packet, p.attachments)
            }
            _ => return Ok(()),
        }
    };
    dispatch(sess, complete.0, complete.1)
}

fn socket_of(sess: &Sess, nsp: &[u8]) -> Option<Socket> {
    sess.app().get(nsp)
}

fn dispatch(sess: &Rc<Sess>, p: sio::Packet, attachments: Vec<Bytes>) -> Result<(), ParseError> {
    let nsp = p.nsp.clone();
    match p.kind {
        Kind::Connect => {
            connect(sess, p);
            Ok(())
        }
        Kind::Disconnect => {
            if let Some(s) = socket_of(sess, &nsp) {
                sess.app().remove(s.ns());
                s.on_closed(DisconnectReason::ClientNamespaceDisconnect);
            }
            Ok(())
        }
        Kind::Event | Kind::BinaryEvent => {
            let Some((name, args)) = p.parts else {
                return Err(ParseError::InvalidPayload);
            };
            let Some(s) = socket_of(sess, &nsp) else {
                return Ok(());
            };
            let event = sio::event_str(&p.data, &name)?.into_owned();
            s.on_event(&event, RawArgs::new(p.data, args, attachments), p.id);
            Ok(())
        }
        Kind::Ack | Kind::BinaryAck => {
            let (Some((_, args)), Some(id)) = (p.parts, p.id) else {
                return Ok(());
            };
            if let Some(s) = socket_of(sess, &nsp) {
                s.on_ack(id, RawArgs::new(p.data, args, attachments));
            }
            Ok(())
        }
        Kind::ConnectError => Err(ParseError::InvalidPayload),
    }
}

fn connect(sess: &Rc<Sess>, p: sio::Packet) {
    let name = std::str::from_utf8(&p.nsp).unwrap_or("");
    let Some(ns) = local().namespaces.get_or_create(name) else {
        let err = sio::connect_error(name, "Invalid namespace", None);
        sess.send(OutPacket::Text(err));
        return;
    };
    let socket = Socket::new(ns.clone(), sess, &p.data);
    for mw in &ns.def.middlewares {
        if let Err(e) = mw(&socket) {
            let data = e.data.as_deref().map(str::as_bytes);
            sess.send(OutPacket::Text(sio::connect_error(name, &e.message, data)));
            return;
        }
    }
    if sess.is_closed() {
        return;
    }
    let old = {
        let mut conn = sess.app();
        let old = conn.get(name.as_bytes());
        conn.remove(name);
        conn.sockets.push(socket.clone());
        old
    };
    if let Some(old) = old {
        old.on_closed(DisconnectReason::ClientNamespaceDisconnect);
    }
    socket.0.connected.set(true);
    ns.sockets.borrow_mut().insert(socket.sid(), socket.clone());
    // every socket is in the room named by its id: that room is virtual (looked up through the
    // namespace's socket index), so it costs no room entry per connection
    sess.send(OutPacket::Text(sio::connect_ok(name, socket.id())));
    for f in &ns.def.on_connect {
        f(socket.clone());
    }
}

#[cfg(test)]
mod tests {
    /// Every connection holds one session and one socket for its whole life: their sizes are
    /// the memory budget per idle connection (BENCHMARKS.md), so growth must be deliberate.
    #[test]
    fn per_connection_sizes() {
        use std::mem::size_of;
        assert!(size_of::<super::Sess>() <= 192, "{}", size_of::<super::Sess>());
        assert!(size_of::<super::SioConn>() <= 32);
        assert!(size_of::<crate::proto::eio::session::Session>() <= 80);
        assert!(size_of::<crate::sio::socket::SocketInner>() <= 224);
    }
}
