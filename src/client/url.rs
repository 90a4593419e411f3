//! Where the client connects: the server URL split into what the transports need, and the
//! Engine.IO request targets (`<path>?EIO=4&transport=..&t=..[&sid=..]`).
//!
//! Owns: URL parsing (`http://`/`ws://` only: the client speaks plain TCP), the `Host` header,
//! the extra query string, the cache-busting `t` parameter.
//!
//! Must not: open sockets.

use super::Transport;

/// A parsed server URL plus the Engine.IO path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `host:port` to connect to (`[v6]:port` for IPv6 literals).
    pub addr: String,
    /// The `Host` header value.
    pub host_header: String,
    /// The Engine.IO path, with a trailing slash (`/socket.io/`).
    pub path: String,
    /// Extra query parameters, each already encoded as `&k=v`.
    pub query: String,
}

impl Target {
    /// Parses `http://host[:port][/ignored][?k=v&..]`; `ws://` is accepted as a synonym.
    pub fn parse(url: &str, path: &str) -> Result<Target, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if let Some(r) = url.strip_prefix("ws://") {
            r
        } else if url.starts_with("https://") || url.starts_with("wss://") {
            return Err(format!("{url}: TLS is not supported, use http://"));
        } else if url.contains("://") {
            return Err(format!("{url}: unsupported scheme"));
        } else {
            url
        };
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url}: missing host"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("{url}: bad IPv6 host"))?;
            let port = v6[end + 1..].strip_prefix(':');
            (&authority[..end + 2], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port: u16 = match port {
            Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
            None => 80,
        };
        let query = match tail.split_once('?') {
            Some((_, q)) => q
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| format!("&{kv}"))
                .collect(),
            None => String::new(),
        };
        let host_header = if port == 80 {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let trimmed = path.trim_matches('/');
        let path = if trimmed.is_empty() {
            "/".to_string()
        } else {
            format!("/{trimmed}/")
        };
        Ok(Target {
            addr: format!("{host}:{port}"),
            host_header,
            path,
            query,
        })
    }

    /// Appends one query parameter (percent-encoded).
    pub fn push_query(&mut self, key: &str, value: &str) {
        self.query.push('&');
        self.query.push_str(&encode(key));
        self.query.push('=');
        self.query.push_str(&encode(value));
    }

    /// The request target of an Engine.IO request.
    pub fn uri(&self, transport: Transport, sid: Option<&str>) -> String {
        let name = match transport {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        };
        let mut s = format!("{}?EIO=4&transport={name}", self.path);
        if let Some(sid) = sid {
            s.push_str("&sid=");
            s.push_str(&encode(sid));
        }
        if transport == Transport::Polling {
            s.push_str("&t=");
            s.push_str(&timestamp_token());
        }
        s.push_str(&self.query);
        s
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The cache-busting `t` value: 8 random base-36 characters.
fn timestamp_token() -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| DIGITS[*x as usize % 36] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:3000", "/socket.io").unwrap();
        assert_eq!(
            t,
            Target {
                addr: "127.0.0.1:3000".into(),
                host_header: "127.0.0.1:3000".into(),
                path: "/socket.io/".into(),
                query: String::new(),
            }
        );
        let t = Target::parse("ws://example.com/chat?token=a%20b&x=1", "custom/").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host_header.as_str(), t.path.as_str()),
            ("example.com:80", "example.com", "/custom/")
        );
        assert_eq!(t.query, "&token=a%20b&x=1");
        let t = Target::parse("http://[::1]:8080/", "/socket.io/").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host_header.as_str()),
            ("[::1]:8080", "[::1]:8080")
        );
        let t = Target::parse("localhost:9", "/").unwrap();
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("localhost:9", "/"));
        assert!(Target::parse("https://x", "/").is_err());
        assert!(Target::parse("ftp://x", "/").is_err());
        assert!(Target::parse("http://x:99999", "/").is_err());
        assert!(Target::parse("http://", "/").is_err());
    }

    #[test]
    fn builds_request_targets() {
        let mut t = Target::parse("http://h:1", "/socket.io/").unwrap();
        t.push_query("a b", "c&d");
        assert_eq!(
            t.uri(Transport::WebSocket, Some("s1")),
            "/socket.io/?EIO=4&transport=websocket&sid=s1&a%20b=c%26d"
        );
        let u = t.uri(Transport::Polling, None);
        assert!(
            u.starts_with("/socket.io/?EIO=4&transport=polling&t="),
            "{u}"
        );
        assert!(u.ends_with("&a%20b=c%26d"));
    }
}
