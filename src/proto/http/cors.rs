//! CORS, as the `cors` npm package (2.8) that Node's engine.io puts in front of every request
//! when its `cors` option is set: which origins are allowed (`*`, one fixed origin, a list, a
//! regex, a function, or the request's own origin), and the headers of preflights (204) and of
//! actual responses, in the package's order, `Vary` merged as the `vary` package does.
//!
//! Must not: decide anything else about a request (conn.rs answers the preflight).

use super::Head;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;

/// The methods a preflight allows unless told otherwise (the `cors` package's default).
pub const DEFAULT_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// A function deciding per request whether its `Origin` (absent: `None`) is allowed.
pub type OriginFn = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Which origins may read responses (the `origin` option of the `cors` package).
#[derive(Clone)]
pub enum CorsOrigin {
    /// `origin: "*"` (the package's default): `Access-Control-Allow-Origin: *`, no `Vary`.
    Any,
    /// `origin: "https://a.example"`: always that origin, with `Vary: Origin`.
    Fixed(String),
    /// `origin: true`: the request's own `Origin` is reflected, with `Vary: Origin`.
    Reflect,
    /// `origin: [..]`: the request's `Origin` is reflected when it is one of these; `Vary:
    /// Origin` either way.
    List(Vec<String>),
    /// `origin: /re/`: reflected when the pattern matches (unanchored, as JavaScript's `test`).
    Regex(regex_lite::Regex),
    /// `origin: (origin, cb) => cb(null, allowed)`: true reflects the origin (with `Vary:
    /// Origin`); false sends no CORS header at all and lets the request through (a preflight
    /// then reaches the engine, as in Node).
    Fn(OriginFn),
}

impl std::fmt::Debug for CorsOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorsOrigin::Any => f.write_str("Any"),
            CorsOrigin::Fixed(o) => write!(f, "Fixed({o:?})"),
            CorsOrigin::Reflect => f.write_str("Reflect"),
            CorsOrigin::List(l) => write!(f, "List({l:?})"),
            CorsOrigin::Regex(r) => write!(f, "Regex({:?})", r.as_str()),
            CorsOrigin::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

/// The options of the `cors` package (Node's engine.io `cors` option).
#[derive(Clone, Debug)]
pub struct CorsOptions {
    /// Allowed origins.
    pub origin: CorsOrigin,
    /// `methods` of preflights (`Access-Control-Allow-Methods`; empty: not sent).
    pub methods: String,
    /// `allowedHeaders` of preflights; `None` reflects `Access-Control-Request-Headers` (with
    /// `Vary: Access-Control-Request-Headers`).
    pub allowed_headers: Option<String>,
    /// `exposedHeaders` (`Access-Control-Expose-Headers`, on every response).
    pub exposed_headers: Option<String>,
    /// `credentials: true` (`Access-Control-Allow-Credentials: true`).
    pub credentials: bool,
    /// `maxAge` in seconds (`Access-Control-Max-Age`, on preflights).
    pub max_age: Option<u64>,
}

impl Default for CorsOptions {
    fn default() -> Self {
        CorsOptions::new(CorsOrigin::Any)
    }
}

impl CorsOptions {
    /// The package's defaults for `origin`.
    pub fn new(origin: CorsOrigin) -> CorsOptions {
        CorsOptions {
            origin,
            methods: DEFAULT_METHODS.into(),
            allowed_headers: None,
            exposed_headers: None,
            credentials: false,
            max_age: None,
        }
    }
    /// `methods` (joined with `,` as the package does with an array).
    pub fn methods(mut self, m: &[&str]) -> Self {
        self.methods = m.join(",");
        self
    }
    /// `allowedHeaders` (joined with `,`).
    pub fn allowed_headers(mut self, h: &[&str]) -> Self {
        self.allowed_headers = Some(h.join(","));
        self
    }
    /// `exposedHeaders` (joined with `,`).
    pub fn exposed_headers(mut self, h: &[&str]) -> Self {
        self.exposed_headers = Some(h.join(","));
        self
    }
    /// `credentials`.
    pub fn credentials(mut self, on: bool) -> Self {
        self.credentials = on;
        self
    }
    /// `maxAge`, in seconds.
    pub fn max_age(mut self, secs: u64) -> Self {
        self.max_age = Some(secs);
        self
    }

    /// What the `Access-Control-Allow-Origin` header says for a request from `origin`:
    /// `None` when this request gets no CORS handling at all (an origin function said no),
    /// else the value (absent when the origin is not allowed) and whether `Vary: Origin` goes
    /// with it.
    fn decide<'a>(&'a self, origin: Option<&'a str>) -> Option<(Option<&'a str>, bool)> {
        let reflect_if = |ok: bool| Some((origin.filter(|_| ok), true));
        match &self.origin {
            CorsOrigin::Any => Some((Some("*"), false)),
            CorsOrigin::Fixed(o) => Some((Some(o), true)),
            CorsOrigin::Reflect => reflect_if(true),
            CorsOrigin::List(l) => reflect_if(origin.is_some_and(|o| l.iter().any(|x| x == o))),
            CorsOrigin::Regex(r) => reflect_if(r.is_match(origin.unwrap_or("undefined"))),
            CorsOrigin::Fn(f) => f(origin).then_some((origin, true)),
        }
    }

    /// True when a request from `origin` is handled by CORS (always, but for an origin
    /// function that refuses it).
    pub fn applies(&self, origin: Option<&str>) -> bool {
        self.decide(origin).is_some()
    }

    /// The headers of an actual (non-preflight) response: `Access-Control-Allow-Origin`,
    /// `Vary`, `Access-Control-Allow-Credentials`, `Access-Control-Expose-Headers`.
    pub fn write_actual(&self, origin: Option<&str>, out: &mut BytesMut) {
        let Some((allow, vary)) = self.decide(origin) else {
            return;
        };
        write_origin(allow, vary, out);
        if self.credentials {
            out.put_slice(b"Access-Control-Allow-Credentials: true\r\n");
        }
        if let Some(h) = self.exposed_headers.as_deref().filter(|h| !h.is_empty()) {
            header(out, "Access-Control-Expose-Headers", h);
        }
    }

    /// The answer to a preflight (`OPTIONS`), or `None` when this request gets no CORS
    /// handling (it goes on to the engine).
    pub fn preflight(&self, head: &Head) -> Option<Bytes> {
        let (allow, vary_origin) = self.decide(head.origin())?;
        let mut out = BytesMut::with_capacity(320);
        out.put_slice(b"HTTP/1.1 204 No Content\r\n");
        // `vary` keeps the header where it was first set and appends to it
        let reflect = self.allowed_headers.is_none();
        let vary = match (vary_origin, reflect) {
            (true, true) => Some("Origin, Access-Control-Request-Headers"),
            (true, false) => Some("Origin"),
            _ => None,
        };
        if let Some(a) = allow {
            header(&mut out, "Access-Control-Allow-Origin", a);
        }
        if let Some(v) = vary {
            header(&mut out, "Vary", v);
        }
        if self.credentials {
            out.put_slice(b"Access-Control-Allow-Credentials: true\r\n");
        }
        if !self.methods.is_empty() {
            header(&mut out, "Access-Control-Allow-Methods", &self.methods);
        }
        if reflect && !vary_origin {
            header(&mut out, "Vary", "Access-Control-Request-Headers");
        }
        let allowed = match &self.allowed_headers {
            Some(h) => Some(h.as_str()),
            None => head.request_headers(),
        };
        if let Some(h) = allowed.filter(|h| !h.is_empty()) {
            header(&mut out, "Access-Control-Allow-Headers", h);
        }
        if let Some(m) = self.max_age {
            header(&mut out, "Access-Control-Max-Age", &m.to_string());
        }
        if let Some(h) = self.exposed_headers.as_deref().filter(|h| !h.is_empty()) {
            header(&mut out, "Access-Control-Expose-Headers", h);
        }
        out.put_slice(b"Content-Length: 0\r\n\r\n");
        Some(out.freeze())
    }
}

fn write_origin(allow: Option<&str>, vary: bool, out: &mut BytesMut) {
    if let Some(a) = allow {
        header(out, "Access-Control-Allow-Origin", a);
    }
    if vary {
        out.put_slice(b"Vary: Origin\r\n");
    }
}

fn header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// The CORS policy of an endpoint: the short forms of earlier versions, or the full options.
#[derive(Debug, Clone, Default)]
pub enum Cors {
    /// No CORS headers (Node's default: no `cors` option).
    #[default]
    Off,
    /// `cors: { origin: "*" }`.
    Any,
    /// `cors: { origin: true, credentials: true }`: the request's Origin is reflected.
    Reflect,
    /// `cors: { origin: [..], credentials: true }`.
    List(Vec<String>),
    /// Every option of the `cors` package.
    Options(CorsOptions),
}

impl Cors {
    /// The full options this policy stands for (`None` for [`Cors::Off`]).
    pub fn into_options(self) -> Option<CorsOptions> {
        match self {
            Cors::Off => None,
            Cors::Any => Some(CorsOptions::new(CorsOrigin::Any)),
            Cors::Reflect => Some(CorsOptions::new(CorsOrigin::Reflect).credentials(true)),
            Cors::List(l) => Some(CorsOptions::new(CorsOrigin::List(l)).credentials(true)),
            Cors::Options(o) => Some(o),
        }
    }
}

impl From<CorsOptions> for Cors {
    fn from(o: CorsOptions) -> Cors {
        Cors::Options(o)
    }
}
