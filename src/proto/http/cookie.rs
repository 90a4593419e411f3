//! The `cookie` option of Node's engine.io: a `Set-Cookie` header carrying the session id on the
//! handshake response, serialized as the `cookie` npm package (0.7) does, with engine.io's
//! defaults (name `io`, path `/`, `HttpOnly`, `SameSite=Lax`).
//!
//! Must not: decide which responses carry it (the engine does: polling handshakes, as Node).

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`
    Strict,
    /// `SameSite=Lax` (engine.io's default)
    Lax,
    /// `SameSite=None`
    None,
}

impl SameSite {
    /// Parses `strict`, `lax` or `none` (any case), as the `cookie` package accepts them.
    pub fn parse(s: &str) -> Result<SameSite, String> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(SameSite::Strict),
            "lax" => Ok(SameSite::Lax),
            "none" => Ok(SameSite::None),
            _ => Err(format!("invalid SameSite {s:?} (strict, lax or none)")),
        }
    }
}

/// The `cookie` option (Node's names; engine.io's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieOptions {
    /// `name` (default `io`).
    pub name: String,
    /// `path` (default `/`; `None` leaves the attribute out, as `path: false`).
    pub path: Option<String>,
    /// `httpOnly` (default true).
    pub http_only: bool,
    /// `sameSite` (default `Lax`; `None` leaves the attribute out, as `sameSite: false`).
    pub same_site: Option<SameSite>,
    /// `domain`.
    pub domain: Option<String>,
    /// `secure`.
    pub secure: bool,
    /// `maxAge`, in seconds.
    pub max_age: Option<u64>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            name: "io".into(),
            path: Some("/".into()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            domain: None,
            secure: false,
            max_age: None,
        }
    }
}

/// Characters the `cookie` package allows in a name (RFC 7230 token).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Characters allowed in an attribute value (no control character, no `;`).
fn is_attr_value(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

impl CookieOptions {
    /// Checks what the `cookie` package would refuse (it throws): a name that is not a token,
    /// a path or domain with a control character or `;`.
    pub fn validate(&self) -> Result<(), String> {
        if !is_token(&self.name) {
            return Err(format!("invalid cookie name {:?}", self.name));
        }
        for v in [&self.path, &self.domain].into_iter().flatten() {
            if !is_attr_value(v) {
                return Err(format!("invalid cookie attribute {v:?}"));
            }
        }
        Ok(())
    }

    /// The `Set-Cookie` value for session `sid`, attribute for attribute as `cookie.serialize`
    /// writes it (the sid needs no encoding: it is base64url).
    pub fn serialize(&self, sid: &str) -> String {
        let mut s = format!("{}={}", self.name, sid);
        if let Some(m) = self.max_age {
            s += &format!("; Max-Age={m}");
        }
        if let Some(d) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            s += "; Domain=";
            s += d;
        }
        if let Some(p) = self.path.as_deref().filter(|p| !p.is_empty()) {
            s += "; Path=";
            s += p;
        }
        if self.http_only {
            s += "; HttpOnly";
        }
        if self.secure {
            s += "; Secure";
        }
        match self.same_site {
            Some(SameSite::Strict) => s += "; SameSite=Strict",
            Some(SameSite::Lax) => s += "; SameSite=Lax",
            Some(SameSite::None) => s += "; SameSite=None",
            None => {}
        }
        s
    }
}
