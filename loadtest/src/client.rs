//! A minimal Socket.IO v5 / Engine.IO v4 client over WebSocket on monoio: just what the
//! scenarios need, written for low client-side cost (no JSON parsing, no allocation per message).
//!
//! Handshake: `GET /socket.io/?EIO=4&transport=websocket` (101), the Engine.IO open packet
//! `0{...}`, `40` -> `40{"sid":..}`. Engine.IO pings `2` are answered `3` (and WebSocket pings
//! with pongs) inside [`Conn::next`]. Outgoing frames are masked text frames.

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

/// What one incoming Socket.IO packet was (only the parts the scenarios use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// Engine.IO open `0{...}`.
    Open,
    /// Socket.IO CONNECT `40{...}` (any namespace).
    Connected,
    /// Socket.IO DISCONNECT `41`.
    Disconnect,
    /// Socket.IO ACK `43<id>[...]`; `num` is the first argument when it is an unsigned integer.
    Ack { id: u64, num: Option<u64> },
    /// Socket.IO EVENT `42[...]`; `seq` is set for `["b",{"seq":n,...}]`.
    Event { b_seq: Option<u64> },
    /// Anything else (binary frames, CONNECT_ERROR, pongs, ...).
    Other,
}

/// Per-thread registry of open connections' fds, so a controller can `shutdown(2)` every
/// connection still blocked in a read (the read then returns 0 and its task ends).
#[derive(Clone, Default)]
pub struct Registry(Rc<RefCell<HashMap<u64, RawFd>>>);

impl Registry {
    /// Registers a raw connection's fd under `key` (the floor scenarios).
    pub fn register(&self, key: u64, fd: RawFd) {
        self.0.borrow_mut().insert(key, fd);
    }

    /// Removes `key` (call before the fd is closed).
    pub fn deregister(&self, key: u64) {
        self.0.borrow_mut().remove(&key);
    }

    /// Shuts down (both directions) every registered connection.
    pub fn shutdown_all(&self) {
        for fd in self.0.borrow().values() {
            // SAFETY: the fd is open: a Conn deregisters itself before its stream closes.
            unsafe {
                libc::shutdown(*fd, libc::SHUT_RDWR);
            }
        }
    }
}

/// One Socket.IO connection.
pub struct Conn {
    stream: TcpStream,
    /// received, not yet parsed bytes are `pending[pos..]`
    pending: Vec<u8>,
    pos: usize,
    rbuf: Option<Vec<u8>>,
    wbuf: Option<Vec<u8>>,
    frag: Vec<u8>,
    mask_state: u32,
    next_ack: u64,
    reg: Option<(Registry, u64)>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // deregister before the stream (a field) is closed, so shutdown_all never sees a reused fd
        if let Some((reg, key)) = self.reg.take() {
            reg.0.borrow_mut().remove(&key);
        }
    }
}

const READ_CHUNK: usize = 4096;

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by server")
}

fn proto(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Opens a TCP connection to `target`, bound to source address `src` when given (port chosen
/// at connect time, IP_BIND_ADDRESS_NO_PORT), without blocking the runtime.
pub(crate) async fn tcp_connect(target: SocketAddr, src: Option<IpAddr>) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if target.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if let Some(ip) = src {
        let one: libc::c_int = 1;
        // SAFETY: plain setsockopt on a socket we own, with a correctly sized int.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    sock.set_nodelay(true)?;
    sock.set_nonblocking(true)?;
    match sock.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let std_stream: std::net::TcpStream = sock.into();
    let stream = TcpStream::from_std(std_stream)?;
    stream.writable(false).await?;
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_ERROR) into a correctly sized int.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(stream)
}

/// `fut` within `limit`; past it, an `io::ErrorKind::TimedOut` error saying `what`.
pub async fn within<T>(
    limit: std::time::Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    monoio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, what)))
}

impl Conn {
    /// Connects, upgrades to WebSocket and joins namespace "/"; returns once `40{...}` arrived.
    pub async fn connect(
        target: SocketAddr,
        src: Option<IpAddr>,
        host_header: &str,
        reg: Option<&Registry>,
        key: u64,
    ) -> io::Result<Conn> {
        let stream = tcp_connect(target, src).await?;
        let fd = stream.as_raw_fd();
        let mut conn = Conn {
            stream,
            pending: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            rbuf: Some(Vec::with_capacity(READ_CHUNK)),
            wbuf: Some(Vec::with_capacity(256)),
            frag: Vec::new(),
            mask_state: (key as u32).wrapping_mul(2_654_435_761) | 1,
            next_ack: 0,
            reg: None,
        };
        if let Some(r) = reg {
            r.0.borrow_mut().insert(key, fd);
            conn.reg = Some((r.clone(), key));
        }
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host_header}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let (res, _) = conn.stream.write_all(req.into_bytes()).await;
        res?;
        // HTTP response head
        loop {
            if let Some(end) = find(&conn.pending, b"\r\n\r\n") {
                let head = &conn.pending[..end];
                let line_end = find(head, b"\r\n").unwrap_or(head.len());
                let status = String::from_utf8_lossy(&head[..line_end]).to_string();
                if !status.contains(" 101") {
                    return Err(proto(&format!("upgrade refused: {status}")));
                }
                conn.pos = end + 4;
                break;
            }
            if conn.pending.len() > 16 * 1024 {
                return Err(proto("HTTP response head too long"));
            }
            conn.fill().await?;
        }
        loop {
            match conn.next().await? {
                Msg::Open => break,
                Msg::Other => continue,
                m => return Err(proto(&format!("expected open packet, got {m:?}"))),
            }
        }
        conn.send_text(b"40").await?;
        loop {
            match conn.next().await? {
                Msg::Connected => return Ok(conn),
                Msg::Disconnect => return Err(proto("namespace connect refused")),
                _ => continue,
            }
        }
    }

    /// Reads more bytes into `pending`.
    async fn fill(&mut self) -> io::Result<()> {
        let mut rb = self
            .rbuf
            .take()
            .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK));
        rb.clear();
        let (res, rb) = self.stream.read(rb).await;
        let n = res?;
        if n == 0 {
            self.rbuf = Some(rb);
            return Err(eof());
        }
        if self.pos > 0 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(&rb[..n]);
        self.rbuf = Some(rb);
        Ok(())
    }

    /// Sends one masked WebSocket frame.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut w = self.wbuf.take().unwrap_or_default();
        w.clear();
        w.push(0x80 | opcode);
        let len = payload.len();
        if len <= 125 {
            w.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            w.push(0x80 | 126);
            w.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            w.push(0x80 | 127);
            w.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // xorshift32 mask key
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        let mask = x.to_ne_bytes();
        w.extend_from_slice(&mask);
        let start = w.len();
        w.extend_from_slice(payload);
        for (i, b) in w[start..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        let (res, w) = self.stream.write_all(w).await;
        self.wbuf = Some(w);
        res.map(|_| ())
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send_frame(0x1, payload).await
    }

    /// Emits an event with an ack request: sends `42<id><array>` (e.g. `["echo","x"]`) and
    /// returns the ack id.
    pub async fn emit_with_ack(&mut self, array: &str) -> io::Result<u64> {
        let id = self.next_ack;
        self.next_ack += 1;
        let mut p = Vec::with_capacity(24 + array.len());
        p.extend_from_slice(b"42");
        p.extend_from_slice(id.to_string().as_bytes());
        p.extend_from_slice(array.as_bytes());
        self.send_text(&p).await?;
        Ok(id)
    }

    /// Returns the next Socket.IO-level message; answers pings on the way.
    pub async fn next(&mut self) -> io::Result<Msg> {
        loop {
            while let Some(f) = parse_frame(&self.pending[self.pos..]) {
                let base = self.pos;
                self.pos += f.total;
                let payload = base + f.start..base + f.start + f.len;
                match f.opcode {
                    0x0..=0x2 => {
                        if !f.fin || !self.frag.is_empty() {
                            self.frag.extend_from_slice(&self.pending[payload.clone()]);
                            if !f.fin {
                                continue;
                            }
                            let whole = std::mem::take(&mut self.frag);
                            let m = classify(&whole);
                            if m.1 {
                                self.send_text(b"3").await?;
                                continue;
                            }
                            return m.0;
                        }
                        if f.opcode == 0x2 {
                            return Ok(Msg::Other);
                        }
                        let m = classify(&self.pending[payload]);
                        if m.1 {
                            self.send_text(b"3").await?;
                            continue;
                        }
                        return m.0;
                    }
                    0x8 => return Err(eof()),
                    0x9 => {
                        let data = self.pending[payload].to_vec();
                        self.send_frame(0xA, &data).await?;
                    }
                    _ => {}
                }
            }
            self.fill().await?;
        }
    }

    /// Waits for the ack `id`, skipping everything else; returns its first numeric argument.
    pub async fn wait_ack(&mut self, id: u64) -> io::Result<Option<u64>> {
        loop {
            match self.next().await? {
                Msg::Ack { id: a, num } if a == id => return Ok(num),
                Msg::Disconnect => return Err(proto("disconnected by server")),
                _ => {}
            }
        }
    }

    /// Closes the connection (WebSocket close frame, then the socket).
    pub async fn close(mut self) {
        let _ = self.send_frame(0x8, &1000u16.to_be_bytes()).await;
    }
}

struct Frame {
    fin: bool,
    opcode: u8,
    start: usize,
    len: usize,
    total: usize,
}

fn parse_frame(b: &[u8]) -> Option<Frame> {
    if b.len() < 2 {
        return None;
    }
    let fin = b[0] & 0x80 != 0;
    let opcode = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (len, mut hdr) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([b[2], b[3]]) as usize, 4)
        }
        127 => {
            if b.len() < 10 {
                return None;
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(a) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if masked {
        hdr += 4; // servers do not mask; tolerated but the payload is left masked
    }
    if b.len() < hdr + len {
        return None;
    }
    Some(Frame {
        fin,
        opcode,
        start: hdr,
        len,
        total: hdr + len,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_uint(b: &[u8]) -> (Option<u64>, usize) {
    let mut v: u64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.wrapping_mul(10).wrapping_add((b[i] - b'0') as u64);
        i += 1;
    }
    if i == 0 {
        (None, 0)
    } else {
        (Some(v), i)
    }
}

/// Classifies one Engine.IO text packet; the bool is true for an Engine.IO ping (answer `3`).
fn classify(t: &[u8]) -> (io::Result<Msg>, bool) {
    match t.first() {
        Some(b'0') => (Ok(Msg::Open), false),
        Some(b'1') => (Err(eof()), false),
        Some(b'2') => (Ok(Msg::Other), true),
        Some(b'4') => (Ok(classify_sio(&t[1..])), false),
        _ => (Ok(Msg::Other), false),
    }
}

fn classify_sio(s: &[u8]) -> Msg {
    let Some(&ty) = s.first() else {
        return Msg::Other;
    };
    let mut rest = &s[1..];
    // optional namespace "/nsp,"
    if rest.first() == Some(&b'/') {
        match rest.iter().position(|&c| c == b',') {
            Some(p) => rest = &rest[p + 1..],
            None => rest = &[],
        }
    }
    match ty {
        b'0' => Msg::Connected,
        b'1' => Msg::Disconnect,
        b'2' => {
            let (_, n) = parse_uint(rest);
            let body = &rest[n..];
            if body.starts_with(b"[\"b\",") {
                if let Some(p) = find(body, b"\"seq\":") {
                    return Msg::Event {
                        b_seq: parse_uint(&body[p + 6..]).0,
                    };
                }
            }
            Msg::Event { b_seq: None }
        }
        b'3' => {
            let (id, n) = parse_uint(rest);
            let Some(id) = id else {
                return Msg::Other;
            };
            let body = &rest[n..];
            let num = if body.first() == Some(&b'[') {
                parse_uint(&body[1..]).0
            } else {
                None
            };
            Msg::Ack { id, num }
        }
        _ => Msg::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify(b"0{\"sid\":\"x\"}").0.unwrap(), Msg::Open);
        assert!(classify(b"2").1);
        assert_eq!(classify(b"40{\"sid\":\"a\"}").0.unwrap(), Msg::Connected);
        assert_eq!(
            classify(b"4317[\"echo\",\"x\"]").0.unwrap(),
            Msg::Ack { id: 17, num: None }
        );
        assert_eq!(
            classify(b"433[42]").0.unwrap(),
            Msg::Ack {
                id: 3,
                num: Some(42)
            }
        );
        assert_eq!(
            classify(b"42[\"b\",{\"seq\":12,\"t\":1712.5}]").0.unwrap(),
            Msg::Event { b_seq: Some(12) }
        );
        assert_eq!(
            classify(b"42[\"b\",{\"t\":1712.5,\"seq\":7}]").0.unwrap(),
            Msg::Event { b_seq: Some(7) }
        );
        assert_eq!(
            classify(b"42/chat,[\"message\",{}]").0.unwrap(),
            Msg::Event { b_seq: None }
        );
    }

    #[test]
    fn frames() {
        let f = parse_frame(&[0x81, 0x02, b'4', b'0', 0xFF]).unwrap();
        assert!(f.fin);
        assert_eq!((f.opcode, f.start, f.len, f.total), (1, 2, 2, 4));
        assert!(parse_frame(&[0x81, 126, 0]).is_none());
        let mut big = vec![0x82, 126, 0x01, 0x00];
        big.extend(std::iter::repeat_n(0u8, 256));
        let f = parse_frame(&big).unwrap();
        assert_eq!((f.len, f.total), (256, 260));
    }
}
