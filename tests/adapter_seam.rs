//! The cluster adapter interface without Redis: a recording adapter sees what a node hands to
//! the other nodes (and only that: `local()` and `this_node()` stay here), and the `Node`
//! handle it gets at start reaches this node's sockets from a thread that is not a shard.

mod common;

use crossbeam_channel::{Receiver, Sender};
use ringio::sio::cluster::{ClusterAdapter, ClusterOp, EventData, Node, Target};
use ringio::{AckSender, Io, Server, Socket};
use std::sync::Arc;
use std::time::Duration;

struct Recorder {
    ops: Sender<ClusterOp>,
    node: Sender<Node>,
}

impl ClusterAdapter for Recorder {
    fn start(&self, node: Node) -> std::io::Result<()> {
        let _ = self.node.send(node);
        Ok(())
    }
    fn send(&self, op: ClusterOp) {
        let _ = self.ops.send(op);
    }
}

fn connect(addr: std::net::SocketAddr) -> common::Ws {
    let mut ws = common::Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket");
    assert!(ws.recv_text().starts_with(r#"0{"sid":""#));
    ws.send_text("40");
    assert!(ws.recv_text().starts_with(r#"40{"sid":""#));
    ws
}

fn next(ops: &Receiver<ClusterOp>) -> ClusterOp {
    ops.recv_timeout(Duration::from_secs(5))
        .expect("an operation")
}

#[test]
fn operations_reach_the_adapter_and_the_node_handle_reaches_sockets() {
    let (ops_tx, ops) = crossbeam_channel::unbounded();
    let (node_tx, node_rx) = crossbeam_channel::unbounded();
    let server = Server::builder()
        .shards(2)
        .adapter(Recorder {
            ops: ops_tx,
            node: node_tx,
        })
        .ns("/", |ns| {
            ns.on("go", |s: Socket, _: (), ack: AckSender| {
                s.join("r");
                Io::of("/").local().emit("local", (1,));
                Io::of("/").this_node().emit("node", (2,));
                Io::of("/").to("r").except("x").emit("all", (3,));
                Io::of("/").server_side_emit("hello", ("w",));
                ack.send((true,));
            });
        })
        .build()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let node = node_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(node.namespaces(), ["/".to_string()]);
    let mut ws = connect(server.local_addr());
    ws.send_text(r#"421["go"]"#);
    let mut texts: Vec<String> = (0..4).map(|_| ws.recv_text()).collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            r#"42["all",3]"#,
            r#"42["local",1]"#,
            r#"42["node",2]"#,
            "431[true]"
        ]
    );
    match next(&ops) {
        ClusterOp::Broadcast {
            target,
            data,
            volatile,
        } => {
            let want = Target {
                ns: "/".into(),
                rooms: vec!["r".into()],
                except: vec!["x".into()],
            };
            assert_eq!(target, want);
            assert_eq!(&data.json[..], br#"["all",3]"#);
            assert!(!volatile);
        }
        other => panic!("{other:?}"),
    }
    match next(&ops) {
        ClusterOp::ServerSideEmit { ns, data, replies } => {
            assert_eq!(
                (ns.as_str(), &data.json[..]),
                ("/", &br#"["hello","w"]"#[..])
            );
            assert!(replies.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(ops.recv_timeout(Duration::from_millis(200)).is_err());

    // another node's broadcast, delivered from this (non-shard) thread
    let target = Target {
        ns: "/".into(),
        rooms: vec!["r".into()],
        except: vec![],
    };
    let data = EventData {
        json: bytes::Bytes::from_static(br#"["from-afar",{"_placeholder":true,"num":0}]"#),
        attachments: vec![bytes::Bytes::from_static(&[7, 7])],
    };
    node.emit(target, &data, false);
    assert_eq!(
        ws.recv_text(),
        r#"451-["from-afar",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(ws.recv_binary(), vec![7, 7]);
    let _: Arc<dyn ClusterAdapter> = node.adapter();
    server.shutdown();
}
