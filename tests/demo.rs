//! The demo/bench set of `ringio serve` on real sockets: `to-room` (Node's `socket.to(room)`:
//! everyone in the room but the sender) and the chat page, under both drivers with 1 and 2
//! shards.

mod common;

use common::{get, Ws, CONFIGS};
use ringio::proto::ws::Message;
use ringio::Server;
use std::time::Duration;

/// A Socket.IO client of `/` over WebSocket (the bench set sends no `auth` event).
fn client(addr: std::net::SocketAddr) -> Ws {
    let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    let open = ws.recv_text();
    assert!(open.starts_with(r#"0{"sid":""#), "{open}");
    ws.send_text("40");
    let ok = ws.recv_text();
    assert!(ok.starts_with(r#"40{"sid":""#), "{ok}");
    ws
}

fn silent(ws: &mut Ws, what: &str) {
    match ws.recv_skip_pings_timeout(Duration::from_millis(300)) {
        None => {}
        Some(m) => panic!("{what} received {m:?}"),
    }
}

#[test]
fn to_room_reaches_the_room_but_the_sender() {
    for (driver, shards) in CONFIGS {
        let server = ringio::demo::bench(Server::builder())
            .shards(shards)
            .driver(driver)
            .build()
            .listen("127.0.0.1:0".parse().unwrap())
            .unwrap();
        let addr = server.local_addr();
        // six members (spread over the shards) and one outsider
        let mut members: Vec<Ws> = (0..6).map(|_| client(addr)).collect();
        for (i, m) in members.iter_mut().enumerate() {
            m.send_text(&format!(r#"42{i}["join","r"]"#));
            assert_eq!(m.recv_text(), format!("43{i}[true]"));
        }
        let mut outsider = client(addr);
        for round in 0..2 {
            let sender = round * 3;
            let msg = format!(r#"42{}["to-room","r",{{"n":{round},"bin":false}}]"#, 9);
            members[sender].send_text(&msg);
            assert_eq!(members[sender].recv_text(), "439[true]", "the ack");
            for (i, m) in members.iter_mut().enumerate() {
                if i == sender {
                    continue;
                }
                let want = format!(r#"42["b",{{"n":{round},"bin":false}}]"#);
                assert_eq!(m.recv_text(), want, "member {i}, {driver:?}/{shards}");
            }
            // Node's socket.to(room) leaves the sender out
            silent(&mut members[sender], "the sender");
            silent(&mut outsider, "a socket outside the room");
        }
        // without an ack id: delivered, no ack
        members[1].send_text(r#"42["to-room","r","x"]"#);
        assert_eq!(members[2].recv_text(), r#"42["b","x"]"#);
        silent(&mut members[1], "the sender (no ack asked)");
        server.shutdown();
    }
}

#[test]
fn chat_page_at_root_and_chat_html() {
    let server = ringio::demo::chat_page(ringio::demo::bench(Server::builder()))
        .shards(1)
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap();
    for path in ["/", "/chat.html"] {
        let (status, headers, body) = get(server.local_addr(), path);
        assert_eq!(status, 200, "{path}");
        let ct = headers.iter().find(|(n, _)| n == "content-type").unwrap();
        assert_eq!(ct.1, "text/html; charset=utf-8");
        assert_eq!(body, ringio::demo::CHAT_PAGE.as_bytes());
        let page = String::from_utf8(body).unwrap();
        assert!(page.contains(r#"<script src="/socket.io/socket.io.js"></script>"#));
        assert!(page.contains(r#"io("/chat""#));
    }
    let (status, _, _) = get(server.local_addr(), "/other.html");
    assert_eq!(status, 404);
    server.shutdown();
}

#[test]
fn chat_message_goes_to_everyone_else_in_chat() {
    let server = ringio::demo::bench(Server::builder())
        .shards(2)
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let addr = server.local_addr();
    let mut chat: Vec<(Ws, String)> = (0..3)
        .map(|_| {
            let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
            ws.recv_text();
            ws.send_text("40/chat,");
            let ok = ws.recv_text();
            let id = ok[r#"40/chat,{"sid":""#.len()..ok.len() - 2].to_string();
            (ws, id)
        })
        .collect();
    chat[0].0.send_text(r#"42/chat,["message","hi"]"#);
    let from = chat[0].1.clone();
    for (ws, _) in chat.iter_mut().skip(1) {
        // the fields; their order (Node's: from, text) is checked with the Socket.IO layer
        let got = ws.recv_text();
        let json = got.strip_prefix("42/chat,").expect("an event on /chat");
        let v: sonic_rs::Value = sonic_rs::from_str(json).unwrap();
        use sonic_rs::JsonValueTrait;
        assert_eq!(v[0].as_str(), Some("message"), "{got}");
        assert_eq!(v[1]["from"].as_str(), Some(from.as_str()), "{got}");
        assert_eq!(v[1]["text"].as_str(), Some("hi"), "{got}");
    }
    match chat[0]
        .0
        .recv_skip_pings_timeout(Duration::from_millis(300))
    {
        None => {}
        Some(Message::Text(t)) => panic!("the sender got {:?}", String::from_utf8_lossy(&t)),
        Some(m) => panic!("the sender got {m:?}"),
    }
    server.shutdown();
}
