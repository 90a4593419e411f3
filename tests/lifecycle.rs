//! Server lifecycle: a clean shutdown closes every session and every socket, so the same port
//! can be bound again at once; a port held by another listener is refused.

mod common;

use common::Ws;
use ringio::proto::ws::Message;
use ringio::{Driver, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn shutdown_closes_everything_and_frees_the_port() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let srv = ringio::demo::bench(Server::builder())
            .shards(2)
            .driver(driver)
            .build();
        let running = srv.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = running.local_addr();
        // an Engine.IO WebSocket session, and an idle keep-alive HTTP connection
        let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
        assert!(matches!(ws.recv(), Some(Message::Text(_))));
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        assert!(idle.read(&mut buf).unwrap() > 0);
        running.shutdown();
        let (_, _) = ws.expect_closed(Duration::from_secs(2));
        idle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(
            idle.read(&mut buf).ok(),
            Some(0),
            "idle keep-alive connection closed ({driver:?})"
        );
        // the same port at once
        let again = ringio::demo::bench(Server::builder())
            .shards(2)
            .driver(driver)
            .build()
            .listen(addr);
        let again = again.unwrap_or_else(|e| panic!("port {addr} not freed ({driver:?}): {e}"));
        again.shutdown();
    }
}

#[test]
fn refuses_a_port_already_taken() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let err = Server::builder()
        .shards(1)
        .build()
        .listen(addr)
        .err()
        .expect("must refuse");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn abandoned_upgrade_times_out_and_polling_resumes() {
    let srv = ringio::demo::bench(Server::builder())
        .shards(1)
        .upgrade_timeout(Duration::from_millis(300))
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let addr = srv.local_addr();
    let (status, _, body) = common::get(addr, "/socket.io/?EIO=4&transport=polling");
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    let sid = body.split('"').nth(3).unwrap().to_string();
    let mut ws = Ws::connect(
        addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
    );
    ws.send_text("2probe");
    assert_eq!(ws.recv_text(), "3probe");
    // while upgrading, a GET is answered at once with a noop
    let (status, _, body) = common::get(addr, &common::poll_url("/socket.io/", &sid));
    assert_eq!((status, body.as_slice()), (200, &b"6"[..]));
    // the client never sends `5`: after upgradeTimeout, GETs are long polls again
    std::thread::sleep(Duration::from_millis(400));
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
        common::poll_url("/socket.io/", &sid)
    );
    let held = common::raw_timeout(addr, req.as_bytes(), Duration::from_millis(500));
    assert!(
        held.is_empty(),
        "GET answered instead of held: {:?}",
        String::from_utf8_lossy(&held)
    );
    srv.shutdown();
}
