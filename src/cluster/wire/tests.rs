//! Messages as Node writes them (shared/docs/redis-adapter.md, and captures of the Node
//! adapter's output), decoded; and what this node writes, read back.

use super::*;
use bytes::Bytes;

fn proto(sharded: bool) -> Proto {
    Proto {
        prefix: "socket.io".into(),
        sharded,
        dynamic: true,
        uid: if sharded {
            "0123456789abcdef".into()
        } else {
            "ABCDEF".into()
        },
    }
}

fn ev(json: &str) -> EventData {
    EventData {
        json: Bytes::copy_from_slice(json.as_bytes()),
        attachments: vec![],
    }
}

#[test]
fn classic_broadcast_from_node() {
    let p = proto(false);
    let data = msgpack::from_json(br#"["room","x"]"#, &[]).unwrap();
    let msg = Value::Array(vec![
        "fY5DcJ".into(),
        msgpack::map(vec![
            ("type", 2u64.into()),
            ("data", data),
            ("nsp", "/".into()),
        ]),
        msgpack::map(vec![
            ("rooms", msgpack::string_array(&["r1".into()])),
            ("except", Value::Array(vec![])),
            ("flags", msgpack::map(vec![("volatile", true.into())])),
        ]),
    ]);
    let m = p.decode("socket.io#/#r1#", &msgpack::encode(&msg)).unwrap();
    match m {
        Incoming::Broadcast {
            target,
            data,
            volatile,
        } => {
            assert_eq!(target.ns, "/");
            assert_eq!(target.rooms, vec!["r1".to_string()]);
            assert_eq!(&data.json[..], br#"["room","x"]"#);
            assert!(volatile);
        }
        other => panic!("{other:?}"),
    }
    // our own message comes back: ignored
    let (ch, own) = p
        .broadcast(&target("/", &[]), &ev(r#"["a"]"#), false)
        .unwrap();
    assert_eq!(ch, "socket.io#/#");
    assert!(matches!(p.decode(&ch, &own).unwrap(), Incoming::Ignore));
    // another namespace's packet on this channel: ignored
    let other = Proto {
        uid: "zzzzzz".into(),
        ..proto(false)
    };
    let (_, theirs) = other
        .broadcast(&target("/chat", &[]), &ev(r#"["a"]"#), false)
        .unwrap();
    assert!(matches!(
        p.decode("socket.io#/#", &theirs).unwrap(),
        Incoming::Ignore
    ));
}

fn target(ns: &str, rooms: &[&str]) -> crate::sio::cluster::Target {
    crate::sio::cluster::Target {
        ns: ns.into(),
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        except: vec![],
    }
}

#[test]
fn classic_requests_as_node_writes_them() {
    let p = proto(false);
    let (ch, fetch) = p.fetch("req123", &target("/", &["r1"]));
    assert_eq!(ch, "socket.io-request#/#");
    assert_eq!(
        std::str::from_utf8(&fetch).unwrap(),
        r#"{"uid":"ABCDEF","requestId":"req123","type":5,"opts":{"rooms":["r1"],"except":[]}}"#
    );
    let (_, join) = p.rooms_op(&target("/", &[]), &["x".into()], true);
    assert_eq!(
        std::str::from_utf8(&join).unwrap(),
        r#"{"uid":"ABCDEF","type":2,"opts":{"rooms":[],"except":[]},"rooms":["x"]}"#
    );
    // the emitter's request (no uid) is for everyone
    let emitter = br#"{"type":4,"opts":{"rooms":["r"],"except":[]},"close":true}"#;
    match p.decode("socket.io-request#/#", emitter).unwrap() {
        Incoming::Disconnect { target, close } => {
            assert!(close);
            assert_eq!(target.rooms, vec!["r".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    // a response of another node
    let resp = br#"{"type":8,"requestId":"req123","clientCount":3}"#;
    assert!(matches!(
        p.decode("socket.io-response#/#", resp).unwrap(),
        Incoming::Response {
            body: Response::ClientCount(3),
            ..
        }
    ));
    let sse = br#"{"uid":"other1","requestId":"q","type":6,"data":["hello",1]}"#;
    match p.decode("socket.io-request#/#", sse).unwrap() {
        Incoming::ServerSideEmit {
            request_id, data, ..
        } => {
            assert_eq!(request_id.as_deref(), Some("q"));
            assert_eq!(&data.json[..], br#"["hello",1]"#);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sharded_as_node_writes_it() {
    let p = proto(true);
    // the capture of shared/docs/redis-adapter.md
    let node = br#"{"type":3,"data":{"packet":{"type":2,"data":["hello",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"e6fc98f84164a2b8","nsp":"/"}"#;
    assert!(matches!(
        p.decode("socket.io#/#", node).unwrap(),
        Incoming::Broadcast { .. }
    ));
    let (ch, ours) = p
        .broadcast(&target("/", &[]), &ev(r#"["hello",1]"#), false)
        .unwrap();
    assert_eq!(ch, "socket.io#/#");
    assert_eq!(
        std::str::from_utf8(&ours).unwrap(),
        r#"{"type":3,"data":{"packet":{"type":2,"data":["hello",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"0123456789abcdef","nsp":"/"}"#
    );
    // dynamic mode: a public room has its channel; a 20-character room is taken for a socket
    let (ch, _) = p
        .broadcast(&target("/", &["room"]), &ev(r#"["a"]"#), false)
        .unwrap();
    assert_eq!(ch, "socket.io#/#room#");
    let sid20 = "abcdefghijklmnopqrst";
    let (ch, _) = p
        .broadcast(&target("/", &[sid20]), &ev(r#"["a"]"#), false)
        .unwrap();
    assert_eq!(ch, "socket.io#/#");
    // binary goes as msgpack
    let bin = EventData {
        json: Bytes::from_static(br#"["b",{"_placeholder":true,"num":0}]"#),
        attachments: vec![Bytes::from_static(&[1, 2])],
    };
    let (_, ours) = p.broadcast(&target("/", &[]), &bin, false).unwrap();
    assert_ne!(ours[0], b'{');
    let other = Proto {
        uid: "ffffffffffffffff".into(),
        ..proto(true)
    };
    match other.decode("socket.io#/#", &ours).unwrap() {
        Incoming::Broadcast { data, .. } => assert_eq!(data, bin),
        m => panic!("{m:?}"),
    }
    let (ch, _) = p.count_answer("ffffffffffffffff", "id", "/", 2);
    assert_eq!(ch, "socket.io#/#ffffffffffffffff#");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for sharded in [false, true] {
        let p = proto(sharded);
        for bytes in [&b""[..], b"{", b"\x93\x01", b"\xc1", b"{\"type\":3}"] {
            let _ = p.decode("socket.io#/#", bytes);
            let _ = p.decode("socket.io-request#/#", bytes);
            let _ = p.decode("socket.io-response#/#", bytes);
        }
    }
}
