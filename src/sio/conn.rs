//! The Socket.IO layer of one Engine.IO session: the namespaces it joined, binary reassembly,
//! dispatch of CONNECT / DISCONNECT / EVENT / ACK, and the connect timeout. [`SioApp`] is the
//! engine's application for the Socket.IO endpoint.
//!
//! Must not: touch transports (it queues through the session) or other shards directly.

use super::ns::{ConnectError, ConnectMiddleware};
use super::socket::Socket;
use super::{local, DisconnectReason};
use crate::engine::{App, Session};
use crate::proto::eio::{CloseReason, OutPacket, Packet, Transport};
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
    /// What few connections use (boxed: rare, and large inline).
    ext: Option<Box<ConnExt>>,
}

type TransportFn = Rc<dyn Fn(Transport)>;
type CloseFn = Box<dyn FnOnce(CloseReason)>;

/// The rare parts of a connection: a binary packet waiting for its attachments, and the
/// listeners of [`Conn`].
#[derive(Default)]
struct ConnExt {
    partial: Option<sio::Partial>,
    upgrading: Vec<TransportFn>,
    upgrade: Vec<TransportFn>,
    close: Vec<CloseFn>,
}

impl SioConn {
    fn ext(&mut self) -> &mut ConnExt {
        self.ext.get_or_insert_with(Default::default)
    }
    fn partial(&mut self) -> Option<&mut sio::Partial> {
        self.ext.as_mut().and_then(|e| e.partial.as_mut())
    }
}

/// The Engine.IO connection under a socket (Node's `socket.conn`): its transport, its
/// `upgrading` / `upgrade` / `close` events.
#[derive(Clone)]
pub struct Conn(pub(crate) std::rc::Weak<Sess>);

impl Conn {
    pub(crate) fn of(sess: &Rc<Sess>) -> Conn {
        Conn(Rc::downgrade(sess))
    }
    /// The Engine.IO session id.
    pub fn id(&self) -> Option<String> {
        self.0.upgrade().map(|s| s.sid().to_string())
    }
    /// The transport in use (`None` once the connection is gone).
    pub fn transport(&self) -> Option<Transport> {
        self.0
            .upgrade()
            .filter(|s| !s.is_closed())
            .map(|s| s.transport())
    }
    /// Called when the client starts an upgrade (probe received), with the new transport.
    pub fn on_upgrading(&self, f: impl Fn(Transport) + 'static) {
        self.with(|e| e.upgrading.push(Rc::new(f)));
    }
    /// Called when the connection moved to a new transport.
    pub fn on_upgrade(&self, f: impl Fn(Transport) + 'static) {
        self.with(|e| e.upgrade.push(Rc::new(f)));
    }
    /// Called once when the connection closes, with the reason.
    pub fn on_close(&self, f: impl FnOnce(CloseReason) + 'static) {
        self.with(|e| e.close.push(Box::new(f)));
    }
    /// Closes the connection (every namespace; the client sees a transport close and
    /// reconnects, as with Node's `socket.conn.close()`).
    pub fn close(&self) {
        if let Some(s) = self.0.upgrade() {
            s.close(CloseReason::ForcedClose);
        }
    }
    fn with(&self, f: impl FnOnce(&mut ConnExt)) {
        if let Some(s) = self.0.upgrade() {
            f(s.app().ext());
        }
    }
}

/// Calls the transport listeners chosen by `pick` (outside the borrow of the connection).
fn transport_event(sess: &Rc<Sess>, to: Transport, pick: fn(&ConnExt) -> &Vec<TransportFn>) {
    let fns: Vec<TransportFn> = match sess.app().ext.as_ref() {
        Some(e) => pick(e).clone(),
        None => return,
    };
    for f in fns {
        f(to);
    }
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
        if sess.is_v3() {
            // Socket.IO v4 (socket.io-client 2.x): "/" is joined at once, without a CONNECT
            connect_to(sess, "/", b"");
            return;
        }
        sess.set_app_timer(Instant::now() + local().connect_timeout);
    }

    fn on_message(&self, sess: &Rc<Sess>, p: Packet) {
        if let Err(e) = handle(sess, p) {
            tracing::debug!(sid = %sess.sid(), ?e, "invalid packet");
            sess.close(CloseReason::ParseError);
        }
    }

    fn on_close(&self, sess: &Rc<Sess>, reason: CloseReason) {
        let (sockets, close) = {
            let mut conn = sess.app();
            let close = conn.ext.as_mut().map(|e| std::mem::take(&mut e.close));
            (std::mem::take(&mut conn.sockets), close)
        };
        for s in sockets {
            s.on_closed(reason.into());
        }
        for f in close.into_iter().flatten() {
            f(reason);
        }
    }

    fn on_upgrading(&self, sess: &Rc<Sess>, to: Transport) {
        transport_event(sess, to, |e| &e.upgrading);
    }

    fn on_upgrade(&self, sess: &Rc<Sess>, to: Transport) {
        transport_event(sess, to, |e| &e.upgrade);
    }

    /// The connect timeout: a connection that joined no namespace in time is closed; Node's
    /// client closes it itself, hence "forced close".
    fn on_app_timer(&self, sess: &Rc<Sess>) {
        if sess.app().sockets.is_empty() {
            sess.close(CloseReason::ForcedClose);
        }
    }
}

/// Node's `socket.disconnect(true)`: every namespace gets its DISCONNECT (the client does not
/// reconnect), then the connection closes once they are written.
pub(crate) fn disconnect_all(sess: &Rc<Sess>) {
    let sockets: Vec<Socket> = sess.app().sockets.to_vec();
    for s in sockets {
        s.disconnect();
    }
    sess.close(CloseReason::ForcedClose);
}

fn handle(sess: &Rc<Sess>, p: Packet) -> Result<(), ParseError> {
    let max_att = local().max_attachments;
    let complete = {
        let mut conn = sess.app();
        match p {
            Packet::Message(text) => {
                if conn.partial().is_some() {
                    return Err(ParseError::UnexpectedAttachment);
                }
                let packet = sio::decode(text, max_att)?;
                if packet.kind.is_binary() && packet.attachments > 0 {
                    conn.ext().partial = Some(sio::Partial {
                        packet,
                        attachments: Vec::new(),
                    });
                    return Ok(());
                }
                (packet, Vec::new())
            }
            Packet::Binary(data) => {
                let Some(partial) = conn.partial() else {
                    return Err(ParseError::UnexpectedAttachment);
                };
                if !partial.push(data) {
                    return Ok(());
                }
                let p = conn.ext().partial.take().expect("checked above");
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
    if sess.is_v3() {
        // Socket.IO v4: `40/nsp?query,`: the query is the auth payload (as Node reads it)
        let (path, query) = name.split_once('?').unwrap_or((name, ""));
        let auth = query_object(query);
        return connect_to(sess, path, auth.as_bytes());
    }
    connect_to(sess, name, &p.data);
}

/// A query string as a JSON object of strings (a v3 CONNECT's auth).
fn query_object(query: &str) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in crate::proto::http::query_pairs(query).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let k = sonic_rs::to_string(k).unwrap_or_default();
        let v = sonic_rs::to_string(v).unwrap_or_default();
        out.push_str(&k);
        out.push(':');
        out.push_str(&v);
    }
    out.push('}');
    out
}

/// Connects this session to namespace `name` with the CONNECT payload `auth`.
fn connect_to(sess: &Rc<Sess>, name: &str, auth: &[u8]) {
    let Some(ns) = local().namespaces.get_or_create(name) else {
        let err = sio::connect_error(name, "Invalid namespace", None);
        sess.send(OutPacket::Text(err));
        return;
    };
    let socket = Socket::new(ns.clone(), sess, auth);
    let mws = &ns.def.middlewares;
    for (i, mw) in mws.iter().enumerate() {
        match mw {
            ConnectMiddleware::Sync(f) => {
                if let Err(e) = f(&socket) {
                    refuse(sess, &socket, &e);
                    return;
                }
            }
            ConnectMiddleware::Async(_) => {
                // the rest runs in a task; the CONNECT is answered when every one accepted
                let (sess, rest) = (sess.clone(), mws[i..].to_vec());
                monoio::spawn(async move {
                    for mw in rest {
                        let r = match mw {
                            ConnectMiddleware::Sync(f) => f(&socket),
                            ConnectMiddleware::Async(f) => f(socket.clone()).await,
                        };
                        if let Err(e) = r {
                            return refuse(&sess, &socket, &e);
                        }
                    }
                    accept(&sess, socket);
                });
                return;
            }
        }
    }
    accept(sess, socket);
}

/// A middleware refused the socket: CONNECT_ERROR `{message, data}`.
fn refuse(sess: &Rc<Sess>, socket: &Socket, e: &ConnectError) {
    let data = e.data.as_deref().map(str::as_bytes);
    let packet = if sess.is_v3() {
        // Socket.IO v4: the error's data, else its message (Node's `err.data || err.message`)
        let body = match data {
            Some(d) => d.to_vec(),
            None => sonic_rs::to_vec(&e.message).unwrap_or_default(),
        };
        sio::encode(Kind::ConnectError, socket.ns(), None, &body)
    } else {
        sio::connect_error(socket.ns(), &e.message, data)
    };
    sess.send(OutPacket::Text(packet));
}

/// Every middleware accepted the socket: it joins the connection and its namespace.
fn accept(sess: &Rc<Sess>, socket: Socket) {
    if sess.is_closed() {
        return;
    }
    let ns = socket.0.ns.clone();
    let old = {
        let mut conn = sess.app();
        let old = conn.get(ns.name.as_bytes());
        conn.remove(&ns.name);
        conn.sockets.push(socket.clone());
        old
    };
    if let Some(old) = old {
        old.on_closed(DisconnectReason::ClientNamespaceDisconnect);
    }
    socket.set_connected();
    ns.sockets.borrow_mut().insert(socket.sid(), socket.clone());
    super::cluster::notify(
        || super::cluster::LocalChange::SocketConnected(socket.ns().into(), socket.id().into()),
        false,
    );
    // every socket is in the room named by its id: that room is virtual (looked up through the
    // namespace's socket index), so it costs no room entry per connection
    let ok = if sess.is_v3() {
        // Socket.IO v4: `40` (or `40/nsp,`), no id: the client derives it from the sid
        sio::encode(Kind::Connect, &ns.name, None, b"")
    } else {
        sio::connect_ok(&ns.name, socket.id())
    };
    sess.send(OutPacket::Text(ok));
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
        assert!(
            size_of::<super::Sess>() <= 192,
            "{}",
            size_of::<super::Sess>()
        );
        assert!(size_of::<super::SioConn>() <= 32);
        assert!(size_of::<crate::proto::eio::session::Session>() <= 80);
        assert!(size_of::<crate::sio::socket::SocketInner>() <= 224);
    }
}
