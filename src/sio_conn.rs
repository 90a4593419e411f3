//! The Socket.IO layer of one Engine.IO session: namespaces it joined, binary reassembly,
//! dispatch of CONNECT / DISCONNECT / EVENT / ACK.

use crate::args::RawArgs;
use crate::proto::eio::{OutPacket, Packet};
use crate::proto::sio::{self, Kind, ParseError};
use crate::server::{shard, EndpointRt, Session};
use crate::socket::Socket;
use crate::DisconnectReason;
use bytes::Bytes;
use smallvec::SmallVec;
use std::rc::Rc;

/// Socket.IO state of one connection.
#[derive(Default)]
pub(crate) struct SioConn {
    sockets: SmallVec<[Socket; 1]>,
    /// A binary packet waiting for its attachments (boxed: rare, and large inline).
    partial: Option<Box<sio::Partial>>,
}

impl SioConn {
    pub fn has_sockets(&self) -> bool {
        !self.sockets.is_empty()
    }
    fn get(&self, nsp: &[u8]) -> Option<Socket> {
        self.sockets
            .iter()
            .find(|s| s.ns().as_bytes() == nsp)
            .cloned()
    }
    pub fn remove(&mut self, nsp: &str) {
        self.sockets.retain(|s| s.ns() != nsp);
    }
    /// The connection closed: every socket disconnects with `reason`.
    pub fn close(self, reason: DisconnectReason) {
        for s in self.sockets {
            s.on_closed(reason);
        }
    }
}

/// Handles an Engine.IO message on a Socket.IO endpoint.
pub(crate) fn on_message(sess: &Rc<Session>, p: Packet) {
    if let Err(e) = handle(sess, p) {
        tracing::debug!(sid = %sess.sid(), ?e, "invalid packet");
        sess.close(DisconnectReason::ParseError);
    }
}

fn handle(sess: &Rc<Session>, p: Packet) -> Result<(), ParseError> {
    let max_att = shard().cfg.endpoints[sess.ep].max_attachments;
    let complete = {
        let mut guard = sess.sio.borrow_mut();
        let Some(conn) = guard.as_mut() else {
            return Ok(());
        };
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
                let p = conn.partial.take().unwrap();
                (p.packet, p.attachments)
            }
            _ => return Ok(()),
        }
    };
    dispatch(sess, complete.0, complete.1)
}

fn dispatch(sess: &Rc<Session>, p: sio::Packet, attachments: Vec<Bytes>) -> Result<(), ParseError> {
    let nsp = p.nsp.clone();
    match p.kind {
        Kind::Connect => {
            connect(sess, p);
            Ok(())
        }
        Kind::Disconnect => {
            let s = sess.sio.borrow().as_ref().and_then(|c| c.get(&nsp));
            if let Some(s) = s {
                if let Some(c) = sess.sio.borrow_mut().as_mut() {
                    c.remove(s.ns());
                }
                s.on_closed(DisconnectReason::ClientNamespaceDisconnect);
            }
            Ok(())
        }
        Kind::Event | Kind::BinaryEvent => {
            let Some((name, args)) = p.parts else {
                return Err(ParseError::InvalidPayload);
            };
            let Some(s) = sess.sio.borrow().as_ref().and_then(|c| c.get(&nsp)) else {
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
            if let Some(s) = sess.sio.borrow().as_ref().and_then(|c| c.get(&nsp)) {
                s.on_ack(id, RawArgs::new(p.data, args, attachments));
            }
            Ok(())
        }
        Kind::ConnectError => Err(ParseError::InvalidPayload),
    }
}

fn connect(sess: &Rc<Session>, p: sio::Packet) {
    let sh = shard();
    let EndpointRt::SocketIo(namespaces) = &sh.endpoints[sess.ep] else {
        return;
    };
    let name = std::str::from_utf8(&p.nsp).unwrap_or("");
    let Some(ns) = namespaces.get_or_create(name) else {
        sess.send(OutPacket::Text(sio::connect_error(
            name,
            "Invalid namespace",
            None,
        )));
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
        let mut guard = sess.sio.borrow_mut();
        let Some(conn) = guard.as_mut() else { return };
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
