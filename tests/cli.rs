//! The `ringio` binary: every server option as a flag and as an environment variable (Node's
//! names and units), documented in `--help`, and applied to what a client sees.

mod common;

use common::node::{free_port, wait_port};
use common::{get, Resp};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};

struct Ringio(Child, SocketAddr);

impl Drop for Ringio {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ringio(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> Ringio {
    let port = free_port();
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringio"));
    c.args([cmd, "--host", "127.0.0.1", "--shards", "2"])
        .args(args)
        .env("RINGIO_PORT", port.to_string())
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("start ringio");
    wait_port(port, true);
    Ringio(child, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn help_documents_every_option_with_its_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringio"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, var) in [
        ("--port", "RINGIO_PORT"),
        ("--host", "RINGIO_HOST"),
        ("--path", "RINGIO_PATH"),
        ("--ping-interval", "RINGIO_PING_INTERVAL"),
        ("--ping-timeout", "RINGIO_PING_TIMEOUT"),
        ("--upgrade-timeout", "RINGIO_UPGRADE_TIMEOUT"),
        ("--max-payload", "RINGIO_MAX_PAYLOAD"),
        ("--connect-timeout", "RINGIO_CONNECT_TIMEOUT"),
        ("--transports", "RINGIO_TRANSPORTS"),
        ("--no-upgrades", "RINGIO_NO_UPGRADES"),
        ("--cors", "RINGIO_CORS"),
        ("--serve-client", "RINGIO_SERVE_CLIENT"),
        ("--cookie", "RINGIO_COOKIE"),
        ("--cookie-path", "RINGIO_COOKIE_PATH"),
        ("--cookie-same-site", "RINGIO_COOKIE_SAME_SITE"),
        ("--cookie-no-http-only", "RINGIO_COOKIE_NO_HTTP_ONLY"),
        ("--idle", "RINGIO_IDLE"),
        ("--pin", "RINGIO_PIN"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        assert!(
            help.contains(&format!("[env: {var}=")),
            "--help lacks {var}"
        );
    }
    assert!(help.contains("[default: 25000"), "defaults shown");
}

#[test]
fn flags_and_environment_reach_the_wire() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    common::node::ensure_node_modules(&dist, "node_modules/socket.io-client/dist/socket.io.js");
    let dist = dist.join("node_modules/socket.io-client/dist");
    let dist = dist.to_str().unwrap();
    let args = [
        "--path",
        "/io/",
        "--ping-interval",
        "1234",
        "--cookie",
        "sticky",
        "--cookie-same-site",
        "strict",
        "--cors",
        "http://a.example",
        "--cors",
        "http://b.example",
    ];
    let env = [
        ("RINGIO_PING_TIMEOUT", "4321"),
        ("RINGIO_MAX_PAYLOAD", "5000"),
        // a boolean flag from the environment, spelled as people spell it
        ("RINGIO_NO_UPGRADES", "1"),
        ("RINGIO_SERVE_CLIENT", dist),
    ];
    let s = ringio("serve", &args, &env);
    let (status, h, body) = get(s.1, "/io/?EIO=4&transport=polling");
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.ends_with(
            r#"","upgrades":[],"pingInterval":1234,"pingTimeout":4321,"maxPayload":5000}"#
        ),
        "{body}"
    );
    let sid = &body[9..33];
    let cookie = format!("sticky={sid}; Path=/; HttpOnly; SameSite=Strict");
    assert_eq!(header(&h, "set-cookie"), Some(cookie.as_str()));
    let (status, h, _) = get(s.1, "/io/socket.io.min.js");
    assert_eq!((status, header(&h, "etag")), (200, Some("\"4.8.4\"")));
    let (status, _, page) = get(s.1, "/");
    assert_eq!(
        (status, page),
        (200, ringio::demo::CHAT_PAGE.as_bytes().to_vec())
    );
    // the listed origins are reflected, with credentials
    let mut c = common::HttpConn::open(s.1);
    use std::io::Write;
    let req = "GET /io/?EIO=4&transport=polling HTTP/1.1\r\nOrigin: http://b.example\r\n\r\n";
    c.stream.write_all(req.as_bytes()).unwrap();
    let r: Resp = c.read();
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://b.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

#[test]
fn transports_flag_and_conformance() {
    let s = ringio("serve", &[], &[("RINGIO_TRANSPORTS", "websocket")]);
    let (status, _, body) = get(s.1, "/socket.io/?EIO=4&transport=polling");
    assert_eq!(
        (status, String::from_utf8(body).unwrap()),
        (
            400,
            r#"{"code":0,"message":"Transport unknown"}"#.to_string()
        )
    );
    // conformance keeps the settings the suites assert, whatever the flags say
    let s = ringio("conformance", &["--ping-interval", "999"], &[]);
    let (_, _, body) = get(s.1, "/socket.io/?EIO=4&transport=polling");
    assert!(String::from_utf8(body)
        .unwrap()
        .contains(r#""pingInterval":300,"#));
    let bad = Command::new(env!("CARGO_BIN_EXE_ringio"))
        .args(["serve", "--serve-client", "/nonexistent", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("socket.io.js"));
}
