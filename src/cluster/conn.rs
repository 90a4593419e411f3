//! Connections to Redis: the publisher (the `redis` crate's sync `Connection`), and the
//! subscriber, a `TcpStream` whose two halves go to two threads: the pub thread writes
//! (P|S)SUBSCRIBE commands, the sub thread parses what Redis pushes with the crate's RESP
//! parser.
//!
//! Must not: retry (the pub thread owns the backoff).

use super::wire::Sub;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use std::io::{Error, ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The publishing connection.
pub fn publisher(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let c = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    c.set_read_timeout(Some(IO_TIMEOUT))?;
    c.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(c)
}

/// A subscriber connection, authenticated (`AUTH` from the URL); pub/sub ignores the db.
pub fn subscriber(url: &str) -> std::io::Result<TcpStream> {
    let info: ConnectionInfo = url
        .into_connection_info()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
    let (host, port) = match info.addr() {
        ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "only redis:// (TCP) URLs",
            ))
        }
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::new(ErrorKind::NotFound, "redis host"))?;
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    if let Some(pw) = info.redis_settings().password() {
        let mut auth = redis::cmd("AUTH");
        if let Some(user) = info.redis_settings().username() {
            auth.arg(user);
        }
        auth.arg(pw);
        s.write_all(&auth.get_packed_command())?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        let reply = redis::Parser::new()
            .parse_value(&mut s)
            .map_err(|e| Error::other(e.to_string()))?;
        if !matches!(reply, redis::Value::Okay | redis::Value::SimpleString(_)) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "redis AUTH refused",
            ));
        }
    }
    s.set_read_timeout(None)?;
    Ok(s)
}

/// Writes (un)subscribe commands for `subs`.
pub fn write_subs(s: &mut TcpStream, subs: &[Sub], on: bool) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for sub in subs {
        let (name, ch) = match (sub, on) {
            (Sub::Pattern(c), true) => ("PSUBSCRIBE", c),
            (Sub::Pattern(c), false) => ("PUNSUBSCRIBE", c),
            (Sub::Channel(c), true) => ("SUBSCRIBE", c),
            (Sub::Channel(c), false) => ("UNSUBSCRIBE", c),
            (Sub::Shard(c), true) => ("SSUBSCRIBE", c),
            (Sub::Shard(c), false) => ("SUNSUBSCRIBE", c),
        };
        buf.extend_from_slice(&redis::cmd(name).arg(ch.as_str()).get_packed_command());
    }
    s.write_all(&buf)
}
