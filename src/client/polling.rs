//! The HTTP long-polling transport: a minimal HTTP/1.1 client and the GET / POST loops.
//!
//! Owns: keep-alive connections (one for GETs, one for POSTs, so a pending long poll never
//! delays a write), request heads, response heads (`httparse::Response`) with `Content-Length`,
//! chunked or connection-close bodies, one retry on a fresh connection when a reused one turns
//! out to be closed before any response byte, the poll loop (decodes payloads, stops at `1`,
//! pauses for an upgrade) and the post loop (one POST with every buffered packet, cut at
//! `maxPayload` like engine.io-client; nothing is posted while upgrading).
//!
//! Must not: interpret packets beyond Engine.IO's `1` (the engine does).

use super::engine::Shared;
use super::notify::wait_until;
use super::{ClientError, Config, Transport};
use crate::proto::eio::{decode_payload, encode_payload, CloseReason};
use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::rc::Rc;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 256 << 20;

/// Why a request failed.
enum ReqError {
    /// The (reused) connection was closed before any byte of the response arrived.
    Stale,
    /// Anything else.
    Failed(ClientError),
}

impl From<std::io::Error> for ReqError {
    fn from(e: std::io::Error) -> Self {
        ReqError::Failed(e.into())
    }
}

/// One keep-alive HTTP/1.1 connection to the server (opened on first use).
pub(crate) struct HttpConn {
    cfg: Rc<Config>,
    stream: Option<TcpStream>,
    buf: BytesMut,
}

async fn fill(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    let len = buf.len();
    let (res, slice) = stream.read(std::mem::take(buf).slice_mut(len..)).await;
    *buf = slice.into_inner();
    res
}

impl HttpConn {
    /// A connection to the configured server.
    pub fn new(cfg: Rc<Config>) -> HttpConn {
        HttpConn {
            cfg,
            stream: None,
            buf: BytesMut::new(),
        }
    }

    /// GET `uri`; the body of a 200 response.
    pub async fn get(&mut self, uri: &str) -> Result<Bytes, ClientError> {
        self.request("GET", uri, None).await
    }

    /// POST `body` to `uri`.
    pub async fn post(&mut self, uri: &str, body: &[u8]) -> Result<Bytes, ClientError> {
        self.request("POST", uri, Some(body)).await
    }

    async fn request(
        &mut self,
        method: &str,
        uri: &str,
        body: Option<&[u8]>,
    ) -> Result<Bytes, ClientError> {
        let mut head = format!(
            "{method} {uri} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nConnection: keep-alive\r\n",
            self.cfg.target.host_header
        );
        for (k, v) in &self.cfg.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            head.push_str("Content-Type: text/plain;charset=UTF-8\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut req = head.into_bytes();
        if let Some(b) = body {
            req.extend_from_slice(b);
        }
        let req = Bytes::from(req);
        loop {
            let reused = self.stream.is_some();
            if !reused {
                let s = TcpStream::connect(self.cfg.target.addr.as_str())
                    .await
                    .map_err(ClientError::from)?;
                let _ = s.set_nodelay(true);
                self.stream = Some(s);
                self.buf.clear();
            }
            match self.exchange(req.clone()).await {
                Ok((status, keep, body)) => {
                    if !keep {
                        self.stream = None;
                    }
                    if status != 200 {
                        self.stream = None;
                        let text = String::from_utf8_lossy(&body).into_owned();
                        return Err(ClientError::Http(status, text));
                    }
                    return Ok(body);
                }
                Err(ReqError::Stale) if reused => self.stream = None,
                Err(ReqError::Stale) => {
                    self.stream = None;
                    return Err(ClientError::Io {
                        kind: std::io::ErrorKind::UnexpectedEof,
                        message: "connection closed by the server".into(),
                    });
                }
                Err(ReqError::Failed(e)) => {
                    self.stream = None;
                    return Err(e);
                }
            }
        }
    }

    /// Writes one request and reads its response: (status, keep-alive, body).
    async fn exchange(&mut self, req: Bytes) -> Result<(u16, bool, Bytes), ReqError> {
        let stream = self.stream.as_mut().expect("connected");
        let (res, _) = stream.write_all(req).await;
        if res.is_err() {
            return Err(ReqError::Stale);
        }
        let buf = &mut self.buf;
        let (status, head_len, length, chunked, mut keep) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let (mut length, mut chunked) = (None, false);
                    let mut keep = resp.version == Some(1);
                    for h in resp.headers.iter() {
                        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = Some(v.parse::<usize>().map_err(|_| bad("content-length"))?);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = v.to_ascii_lowercase().contains("chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            let v = v.to_ascii_lowercase();
                            keep = if v.contains("close") {
                                false
                            } else {
                                keep || v.contains("keep-alive")
                            };
                        }
                    }
                    break (resp.code.unwrap_or(0), n, length, chunked, keep);
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return Err(bad("response head too large"))
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(bad(&format!("bad response head: {e}"))),
            }
            let empty = buf.is_empty();
            match fill(stream, buf).await {
                Ok(0) | Err(_) if empty => return Err(ReqError::Stale),
                Ok(0) => return Err(bad("connection closed inside a response head")),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        };
        buf.advance(head_len);
        let body = if chunked {
            read_chunked(stream, buf).await?
        } else if let Some(n) = length {
            if n > MAX_BODY {
                return Err(bad("response body too large"));
            }
            while buf.len() < n {
                if fill(stream, buf).await? == 0 {
                    return Err(bad("connection closed inside a response body"));
                }
            }
            buf.split_to(n).freeze()
        } else {
            keep = false;
            while fill(stream, buf).await? > 0 {
                if buf.len() > MAX_BODY {
                    return Err(bad("response body too large"));
                }
            }
            buf.split().freeze()
        };
        Ok((status, keep, body))
    }
}

fn bad(msg: &str) -> ReqError {
    ReqError::Failed(ClientError::Http(0, msg.to_string()))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Bytes, ReqError> {
    let mut body = BytesMut::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if buf.len() > 1024 {
                return Err(bad("bad chunk size line"));
            }
            if fill(stream, buf).await? == 0 {
                return Err(bad("connection closed inside a chunked body"));
            }
        };
        let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| bad("bad chunk size"))?;
        let hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err(bad("response body too large"));
        }
        buf.advance(line_end + 2);
        // the chunk, then its CRLF (after the last chunk: trailers end with an empty line)
        let need = size + 2;
        while buf.len() < need {
            if fill(stream, buf).await? == 0 {
                return Err(bad("connection closed inside a chunked body"));
            }
        }
        if size == 0 {
            // skip trailers until the empty line
            while !buf.starts_with(b"\r\n") {
                let Some(i) = buf.windows(2).position(|w| w == b"\r\n") else {
                    if fill(stream, buf).await? == 0 {
                        return Err(bad("connection closed inside chunk trailers"));
                    }
                    continue;
                };
                buf.advance(i + 2);
            }
            buf.advance(2);
            return Ok(body.freeze());
        }
        body.extend_from_slice(&buf[..size]);
        buf.advance(need);
    }
}

/// Starts the poll loop on `get` and the post loop on a second connection.
pub(crate) fn start(sh: &Rc<Shared>, get: HttpConn) {
    sh.spawn(poll_loop(sh.clone(), get));
    sh.spawn(post_loop(sh.clone(), HttpConn::new(sh.cfg.clone())));
}

async fn poll_loop(sh: Rc<Shared>, mut conn: HttpConn) {
    loop {
        // paused while upgrading; ends once the WebSocket took over
        if sh.st.borrow().upgrading() {
            sh.notify.notify();
            wait_until(&[&sh.notify], || {
                let st = sh.st.borrow();
                !st.upgrading() || st.transport() != Transport::Polling
            })
            .await;
        }
        if sh.st.borrow().transport() != Transport::Polling {
            return;
        }
        sh.st.borrow_mut().polling = true;
        let uri = sh.cfg.target.uri(Transport::Polling, Some(&sh.sid));
        let res = conn.get(&uri).await;
        sh.st.borrow_mut().polling = false;
        sh.notify.notify();
        let body = match res {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "polling GET failed");
                sh.fail(CloseReason::TransportError);
                return;
            }
        };
        for p in decode_payload(body) {
            match p {
                Ok(p) => sh.on_packet(p),
                Err(_) => sh.fail(CloseReason::TransportError),
            }
            if sh.is_closed() {
                return;
            }
        }
    }
}

async fn post_loop(sh: Rc<Shared>, mut conn: HttpConn) {
    loop {
        wait_until(&[&sh.notify], || {
            let st = sh.st.borrow();
            st.transport() != Transport::Polling || (!st.upgrading() && !st.m.queue_empty())
        })
        .await;
        let batch = {
            let mut st = sh.st.borrow_mut();
            if st.transport() != Transport::Polling {
                return;
            }
            st.posting = true;
            st.m.poll_post(sh.max_payload)
        };
        let mut body = BytesMut::new();
        encode_payload(&batch, &mut body);
        let uri = sh.cfg.target.uri(Transport::Polling, Some(&sh.sid));
        let res = conn.post(&uri, &body).await;
        sh.st.borrow_mut().posting = false;
        sh.notify.notify();
        if let Err(e) = res {
            tracing::debug!(error = %e, "polling POST failed");
            sh.fail(CloseReason::TransportError);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one request (head and Content-Length body) from a blocking stream.
    fn read_request(c: &mut std::net::TcpStream) -> String {
        use std::io::Read;
        let mut buf = Vec::new();
        let mut tmp = [0u8; 1024];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.parse().unwrap());
                if buf.len() >= end + 4 + len {
                    return head;
                }
            }
            let n = c.read(&mut tmp).unwrap();
            assert!(n > 0, "client closed");
            buf.extend_from_slice(&tmp[..n]);
        }
    }

    #[test]
    fn http_bodies_and_stale_keep_alive_connections() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let responses: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n",
                b"HTTP/1.0 200 OK\r\n\r\nuntil close",
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nnope",
            ];
            let mut heads = Vec::new();
            for resp in responses {
                // every connection serves one response, then closes without saying so
                let (mut c, _) = listener.accept().unwrap();
                heads.push(read_request(&mut c));
                c.write_all(resp).unwrap();
            }
            heads
        });
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async move {
            let b = super::super::ClientBuilder::new(&format!("http://{addr}")).header("X-A", "1");
            let mut conn = HttpConn::new(Rc::new(b.config().unwrap()));
            assert_eq!(&conn.post("/p", b"hello").await.unwrap()[..], b"ok");
            // the kept-alive connection is dead: retried on a new one
            assert_eq!(&conn.get("/chunked").await.unwrap()[..], b"abcde");
            assert_eq!(&conn.get("/eof").await.unwrap()[..], b"until close");
            let e = conn.get("/bad").await.unwrap_err();
            assert_eq!(e, ClientError::Http(400, "nope".into()));
        });
        let heads = server.join().unwrap();
        assert!(heads[0].starts_with("POST /p HTTP/1.1\r\n"), "{}", heads[0]);
        assert!(heads[0].contains("Content-Length: 5") && heads[0].contains("X-A: 1"));
        assert!(heads[1].starts_with("GET /chunked HTTP/1.1\r\n"));
    }
}
