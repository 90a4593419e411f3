//! The WebSocket transport: the client handshake, masked frames, the read and write loops, and
//! the upgrade probe from polling.
//!
//! Owns: the `GET ..&transport=websocket` upgrade request (random `Sec-WebSocket-Key`, checked
//! `Sec-WebSocket-Accept`), one Engine.IO packet per frame (text packets as text frames, binary
//! messages as binary frames), random 4-byte masks, pong frames for pings, the close frame, and
//! the probe: `2probe` -> `3probe`, pause polling, `5`, then this socket carries everything.
//!
//! Must not: decide about closing reasons beyond the transport's own (EOF or close frame:
//! "transport close"; protocol or I/O error: "transport error").

use super::engine::Shared;
use super::notify::wait_until;
use super::{ClientError, Config, Transport};
use crate::proto::eio::session::Out;
use crate::proto::eio::{CloseReason, OutPacket, Packet};
use crate::proto::ws::{
    accept_key, apply_mask, client_frame, close_payload, encode_header, Decoder, Message, OpCode,
    Role,
};
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// Largest message accepted from the server.
const MAX_MESSAGE: usize = 256 << 20;

thread_local! {
    static MASKS: RefCell<(usize, [u8; 256])> = const { RefCell::new((256, [0; 256])) };
}

/// A random masking key (from the OS, drawn 256 bytes at a time).
pub(crate) fn mask() -> [u8; 4] {
    MASKS.with(|m| {
        let (pos, pool) = &mut *m.borrow_mut();
        if *pos + 4 > pool.len() {
            let _ = getrandom::fill(pool);
            *pos = 0;
        }
        let k = [pool[*pos], pool[*pos + 1], pool[*pos + 2], pool[*pos + 3]];
        *pos += 4;
        k
    })
}

/// The close frame (code 1000) sent by a graceful close.
pub(crate) fn close_frame() -> Bytes {
    client_frame(OpCode::Close, &close_payload(1000, ""), mask())
}

/// Appends one masked frame to `out`.
fn put_frame(out: &mut BytesMut, op: OpCode, payload: &[u8]) {
    let key = mask();
    let mut hdr = [0u8; 14];
    let n = encode_header(op, payload.len(), Some(key), &mut hdr);
    out.put_slice(&hdr[..n]);
    let start = out.len();
    out.put_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}

/// A WebSocket connection after the handshake.
pub(crate) struct WsConn {
    stream: TcpStream,
    buf: BytesMut,
    dec: Decoder,
}

/// Why reading failed.
enum ReadErr {
    Closed,
    Protocol,
}

async fn next_message<R: AsyncReadRent>(
    r: &mut R,
    buf: &mut BytesMut,
    dec: &mut Decoder,
) -> Result<Message, ReadErr> {
    loop {
        match dec.decode(buf) {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(_) => return Err(ReadErr::Protocol),
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let len = buf.len();
        let (res, slice) = r.read(std::mem::take(buf).slice_mut(len..)).await;
        *buf = slice.into_inner();
        match res {
            Ok(n) if n > 0 => {}
            Ok(_) => return Err(ReadErr::Closed),
            Err(_) => return Err(ReadErr::Protocol),
        }
    }
}

impl WsConn {
    /// Connects and performs the upgrade handshake (`sid` when probing from polling).
    pub async fn connect(cfg: &Config, sid: Option<&str>) -> Result<WsConn, ClientError> {
        let io = ClientError::from;
        let mut stream = TcpStream::connect(cfg.target.addr.as_str())
            .await
            .map_err(io)?;
        let _ = stream.set_nodelay(true);
        let mut nonce = [0u8; 16];
        let _ = getrandom::fill(&mut nonce);
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
            cfg.target.uri(Transport::WebSocket, sid),
            cfg.target.host_header
        );
        for (k, v) in &cfg.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let (res, _) = stream.write_all(req.into_bytes()).await;
        res.map_err(io)?;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = resp.code.unwrap_or(0);
                    if code != 101 {
                        let body = String::from_utf8_lossy(&buf[n..]).into_owned();
                        return Err(ClientError::Http(code, body));
                    }
                    let accept = resp
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                        .map(|h| h.value.to_vec());
                    if accept.as_deref() != Some(accept_key(key.as_bytes()).as_bytes()) {
                        return Err(ClientError::WebSocket("bad Sec-WebSocket-Accept".into()));
                    }
                    let _ = buf.split_to(n);
                    break;
                }
                Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => {}
                Ok(httparse::Status::Partial) => {
                    return Err(ClientError::WebSocket("response head too large".into()))
                }
                Err(e) => return Err(ClientError::WebSocket(format!("bad response: {e}"))),
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            let len = buf.len();
            let (res, slice) = stream.read(buf.slice_mut(len..)).await;
            buf = slice.into_inner();
            match res {
                Ok(n) if n > 0 => {}
                Ok(_) => return Err(ClientError::WebSocket("closed during the handshake".into())),
                Err(e) => return Err(io(e)),
            }
        }
        Ok(WsConn {
            stream,
            buf,
            dec: Decoder::new(Role::Client, MAX_MESSAGE),
        })
    }

    /// The next Engine.IO text packet (WebSocket pings are answered, pongs skipped).
    async fn next_text(&mut self) -> Result<Packet, ClientError> {
        loop {
            let m = next_message(&mut self.stream, &mut self.buf, &mut self.dec)
                .await
                .map_err(|_| ClientError::WebSocket("connection closed".into()))?;
            match m {
                Message::Text(t) => {
                    return Packet::decode_text(t)
                        .map_err(|e| ClientError::WebSocket(format!("bad packet: {e:?}")))
                }
                Message::Ping(p) => {
                    self.send_raw(client_frame(OpCode::Pong, &p, mask()))
                        .await?
                }
                Message::Pong(_) => {}
                _ => return Err(ClientError::WebSocket("unexpected message".into())),
            }
        }
    }

    /// The JSON of the open packet that starts a WebSocket-only connection.
    pub async fn open_packet(&mut self) -> Result<Bytes, ClientError> {
        match self.next_text().await? {
            Packet::Open(json) => Ok(json),
            other => Err(ClientError::Handshake(format!(
                "expected an open packet, got {other:?}"
            ))),
        }
    }

    async fn send_raw(&mut self, frame: Bytes) -> Result<(), ClientError> {
        let (res, _) = self.stream.write_all(frame).await;
        res.map(|_| ()).map_err(ClientError::from)
    }
}

/// Starts the read and write loops of an established WebSocket transport.
pub(crate) fn start(sh: &Rc<Shared>, ws: WsConn) {
    let WsConn { stream, buf, dec } = ws;
    let (r, w) = stream.into_split();
    sh.spawn(read_loop(sh.clone(), r, buf, dec));
    sh.spawn(write_loop(sh.clone(), w));
}

async fn read_loop(
    sh: Rc<Shared>,
    mut r: OwnedReadHalf<TcpStream>,
    mut buf: BytesMut,
    mut dec: Decoder,
) {
    loop {
        match next_message(&mut r, &mut buf, &mut dec).await {
            Ok(Message::Text(t)) => match Packet::decode_text(t) {
                Ok(p) => sh.on_packet(p),
                Err(_) => return sh.fail(CloseReason::TransportError),
            },
            Ok(Message::Binary(b)) => sh.on_packet(Packet::Binary(b)),
            Ok(Message::Ping(p)) => {
                sh.st
                    .borrow_mut()
                    .ws_control
                    .push_back(client_frame(OpCode::Pong, &p, mask()));
                sh.notify.notify();
            }
            Ok(Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(ReadErr::Closed) => {
                return sh.fail(CloseReason::TransportClose)
            }
            Err(ReadErr::Protocol) => return sh.fail(CloseReason::TransportError),
        }
    }
}

async fn write_loop(sh: Rc<Shared>, mut w: OwnedWriteHalf<TcpStream>) {
    loop {
        wait_until(&[&sh.notify], || {
            let st = sh.st.borrow();
            !st.ws_control.is_empty()
                || (st.transport() == Transport::WebSocket
                    && !st.upgrading()
                    && !st.m.queue_empty())
        })
        .await;
        let out = {
            let mut st = sh.st.borrow_mut();
            let mut out = BytesMut::new();
            while let Some(f) = st.ws_control.pop_front() {
                out.extend_from_slice(&f);
            }
            if st.transport() == Transport::WebSocket && !st.upgrading() {
                while let Some(o) = st.m.poll_transmit() {
                    match &o {
                        Out::Eio(OutPacket::Text(t)) => put_frame(&mut out, OpCode::Text, t),
                        Out::Eio(OutPacket::Binary(b)) => put_frame(&mut out, OpCode::Binary, b),
                        Out::WsPong(_) | Out::WsClose(_) => {}
                    }
                }
            }
            st.ws_writing = true;
            out.freeze()
        };
        let (res, _) = w.write_all(out).await;
        sh.st.borrow_mut().ws_writing = false;
        sh.notify.notify();
        if res.is_err() {
            return sh.fail(CloseReason::TransportError);
        }
    }
}

/// The upgrade from polling: probes a WebSocket with the session id, pauses polling once the
/// server answered `3probe`, sends `5` and moves the traffic. A failed probe leaves the
/// connection on polling (socket.io-client's `upgradeError`).
pub(crate) async fn probe(sh: Rc<Shared>) {
    let mut ws = match WsConn::connect(&sh.cfg, Some(&sh.sid)).await {
        Ok(ws) => ws,
        Err(e) => return tracing::debug!(error = %e, "upgrade probe failed"),
    };
    if ws
        .send_raw(client_frame(OpCode::Text, b"2probe", mask()))
        .await
        .is_err()
    {
        return;
    }
    match ws.next_text().await {
        Ok(Packet::Pong(d)) if &d[..] == b"probe" => {}
        other => return tracing::debug!(?other, "upgrade probe refused"),
    }
    sh.st
        .borrow_mut()
        .m
        .handle_probe(Instant::now(), &sh.timing);
    sh.notify.notify();
    // pause polling: no GET and no POST in flight
    wait_until(&[&sh.notify], || {
        let st = sh.st.borrow();
        st.closed() || !st.upgrading() || (!st.polling && !st.posting)
    })
    .await;
    {
        // `5` goes first on the new transport; refused when the upgrade timed out meanwhile
        let upgrade = Out::Eio(OutPacket::Text(Bytes::from_static(b"5")));
        if !sh.st.borrow_mut().m.handle_upgrade(vec![upgrade]) {
            return;
        }
    }
    start(&sh, ws);
    sh.notify.notify();
}
