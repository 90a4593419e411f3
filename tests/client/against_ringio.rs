//! The scenarios against ringio, plus what only ringio can be asked (epoll, a dead server, connect errors).

use super::*;

// ---------------------------------------------------------------------------------------------
// against ringio
// ---------------------------------------------------------------------------------------------

#[test]
fn ringio_echo_ack_binary_events() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, echo_ack_binary(&server.url(), mode, t));
    }
}

#[test]
fn ringio_namespaces_and_auth() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, namespaces_and_auth(&server.url(), mode, t));
    }
}

#[test]
fn ringio_buffered_emits_after_reconnect() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, buffered_after_reconnect(&server.url(), mode, t));
    }
}

#[test]
fn ringio_disconnect_me_no_reconnect() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, disconnect_me(&server.url(), mode, t));
    }
}

#[test]
fn ringio_ack_timeout_and_retries() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on(30, ack_timeout_and_retries(&server.url(), mode, t));
    }
}

#[test]
fn ringio_reconnect_after_server_restart() {
    let server = RefCell::new(Restartable::start());
    let url = server.borrow().url();
    for (mode, t) in MODES {
        block_on(
            30,
            server_restart(
                &url,
                mode,
                t,
                &mut || server.borrow_mut().stop_server(),
                &mut || server.borrow_mut().start_server(),
            ),
        );
    }
}

#[test]
fn ringio_heartbeat_and_order() {
    let server = Ringio::start_with(
        Server::builder()
            .ping_interval(Duration::from_millis(150))
            .ping_timeout(Duration::from_millis(300)),
    );
    for (mode, t) in MODES {
        block_on(30, heartbeat_and_order(&server.url(), mode, t));
    }
}

/// The client on monoio's epoll driver (the other tests use io_uring where the kernel has it).
#[test]
fn ringio_client_on_epoll_runtime() {
    let server = Ringio::start();
    for (mode, t) in MODES {
        block_on_epoll(30, echo_ack_binary(&server.url(), mode, t));
        block_on_epoll(30, buffered_after_reconnect(&server.url(), mode, t));
    }
}

/// A server that answers the handshake (pingInterval 100 ms, pingTimeout 100 ms) and then never
/// pings: the client must notice within 200 ms and reconnect.
#[test]
fn ringio_client_detects_dead_server_by_ping_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let fake = std::thread::spawn(move || fake_silent_server(listener, Duration::from_secs(8)));
    block_on(20, async move {
        let client = builder(&format!("http://{addr}"), &[Transport::Polling])
            .connect()
            .await
            .expect("connect");
        let log = Log::default();
        let l = log.clone();
        client.on_close(move |r| l.push(format!("close:{r}")));
        let l = log.clone();
        client.on_reconnect_attempt(move |n| l.push(format!("attempt:{n}")));
        let t0 = Instant::now();
        wait_for("ping timeout", WAIT, || log.has("close:ping timeout")).await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(3),
            "{took:?}"
        );
        wait_for("reconnect attempt", WAIT, || log.has("attempt:1")).await;
        client.close();
    });
    fake.join().unwrap();
}

fn fake_silent_server(listener: TcpListener, life: Duration) {
    let deadline = Instant::now() + life;
    let mut conns = Vec::new();
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((c, _)) => {
                c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                conns.push((c, Vec::new()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
        for (c, buf) in conns.iter_mut() {
            let mut tmp = [0u8; 4096];
            if let Ok(n) = c.read(&mut tmp) {
                buf.extend_from_slice(&tmp[..n]);
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                continue;
            }
            buf.drain(..end + 4 + len);
            let body = if head.starts_with("GET") && !head.contains("sid=") {
                r#"0{"sid":"fake","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000000}"#
            } else if head.starts_with("POST") {
                "ok"
            } else {
                continue; // a poll: never answered
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = c.write_all(resp.as_bytes());
        }
    }
}

#[test]
fn ringio_connect_errors() {
    let port = free_port();
    block_on(20, async move {
        let e = ClientBuilder::new(&format!("http://127.0.0.1:{port}"))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Io {
                    kind: std::io::ErrorKind::ConnectionRefused,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = ClientBuilder::new("https://127.0.0.1:1")
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::InvalidConfig(_)), "{e:?}");
        let e = ClientBuilder::new("http://127.0.0.1:1")
            .transports(&[])
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::InvalidConfig(_)), "{e:?}");
        // a server on another path: 400 from ringio
        let server = Ringio::start();
        let e = ClientBuilder::new(&server.url())
            .path("/nope/")
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Http(..)), "{e:?}");
        // connect timeout: a listener that never answers
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let t0 = Instant::now();
        let e = ClientBuilder::new(&format!("http://{}", silent.local_addr().unwrap()))
            .timeout(Duration::from_millis(300))
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e, ClientError::Timeout);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(3),
            "{took:?}"
        );
        // open(): retries in the background, up to reconnection_attempts
        let client = builder(&format!("http://127.0.0.1:{port}"), &[Transport::WebSocket])
            .reconnection_attempts(2)
            .reconnection_delay(Duration::from_millis(20))
            .open()
            .unwrap();
        let s = client.socket("/");
        let log = Log::default();
        record(&s, &log, "root");
        let l = log.clone();
        client.on_reconnect_attempt(move |n| l.push(format!("attempt:{n}")));
        let l = log.clone();
        client.on_reconnect_failed(move || l.push("failed"));
        wait_log(&log, "failed").await;
        assert_eq!(log.matching("attempt:"), ["attempt:1", "attempt:2"]);
        assert_eq!(log.count("root:connect_error"), 3, "{:?}", log.0.borrow());
        assert!(!s.connected() && !client.is_open());
        client.close();
    });
}
