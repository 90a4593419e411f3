//! Loads the official client bundle for `serve_client`: the files of Node's `CLIENT_FILES` found
//! in the `dist/` folder of the `socket.io-client` npm package, read once at start (the shards
//! never touch the disk for them).
//!
//! The ETag: Node's socket.io uses its own package version (`"4.8.1"`). ringio ships no copy of
//! the client, so it takes the `version` of the `package.json` next to `dist/` (the client
//! package's: `"4.8.4"` for the one tests/js pins); without one, a 64-bit FNV-1a hash of the
//! files, in hex. Both are deterministic: the same files give the same ETag on every start.
//!
//! Must not: run on a shard.

use crate::proto::http::{content_etag, StaticFile, StaticFiles, CLIENT_FILES};
use std::io;
use std::path::Path;

/// Reads the bundle in `dir`; `socket.io.js` must be there, the other names are optional.
pub(crate) fn load(dir: &Path) -> io::Result<StaticFiles> {
    let main = dir.join("socket.io.js");
    if !main.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "serve_client: no socket.io.js in {} (give the dist/ folder of the \
                 socket.io-client npm package: npm install socket.io-client)",
                dir.display()
            ),
        ));
    }
    let mut found = Vec::new();
    for name in CLIENT_FILES {
        let path = dir.join(name);
        if path.is_file() {
            found.push((name, std::fs::read(&path)?));
        }
    }
    let etag = package_version(dir).map_or_else(
        || content_etag(&found.iter().map(|(_, b)| &b[..]).collect::<Vec<_>>()),
        |v| format!("\"{v}\""),
    );
    let mut files = StaticFiles::new();
    for (name, body) in found {
        files.insert(name, StaticFile::client(name, body.into(), etag.clone()));
    }
    Ok(files)
}

/// The `version` of `dir/../package.json`, when it is a plain version string.
fn package_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.parent()?.join("package.json")).ok()?;
    use sonic_rs::JsonValueTrait;
    let v: sonic_rs::Value = sonic_rs::from_str(&text).ok()?;
    let version = v.get("version")?.as_str()?;
    let plain = !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    plain.then(|| version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_from_version_else_from_content() {
        let root = std::env::temp_dir().join(format!("ringio-cf-{}", std::process::id()));
        let dist = root.join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        assert!(load(&dist).is_err(), "no socket.io.js: refused");
        std::fs::write(dist.join("socket.io.js"), "var io;").unwrap();
        std::fs::write(dist.join("socket.io.js.map"), "{}").unwrap();
        let f = load(&dist).unwrap();
        assert_eq!(f.len(), 2);
        let tag = f.get("socket.io.js").unwrap().etag.clone().unwrap();
        assert_eq!(
            tag,
            load(&dist)
                .unwrap()
                .get("socket.io.js")
                .unwrap()
                .etag
                .clone()
                .unwrap()
        );
        assert!(tag.starts_with('"') && tag.len() == 18, "{tag}");
        std::fs::write(
            root.join("package.json"),
            r#"{"name":"x","version":"4.8.4"}"#,
        )
        .unwrap();
        let f = load(&dist).unwrap();
        assert_eq!(
            f.get("socket.io.js.map").unwrap().etag.as_deref(),
            Some("\"4.8.4\"")
        );
        assert_eq!(
            f.get("socket.io.js.map").unwrap().content_type,
            "application/json; charset=utf-8"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
