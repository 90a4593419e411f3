//! The same scenarios against Node's socket.io 4.8: the client behaves like socket.io-client with the reference server.

use super::*;

// ---------------------------------------------------------------------------------------------
// against Node's socket.io
// ---------------------------------------------------------------------------------------------

#[test]
fn node_echo_ack_binary_events() {
    let node = NodePeer::start(CLIENT_PEER, &[]);
    for (mode, t) in MODES {
        block_on(30, echo_ack_binary(&node.url(), mode, t));
    }
}

#[test]
fn node_namespaces_and_auth() {
    let node = NodePeer::start(CLIENT_PEER, &[]);
    for (mode, t) in MODES {
        block_on(30, namespaces_and_auth(&node.url(), mode, t));
    }
}

#[test]
fn node_buffered_emits_after_reconnect() {
    let node = NodePeer::start(CLIENT_PEER, &[]);
    for (mode, t) in MODES {
        block_on(30, buffered_after_reconnect(&node.url(), mode, t));
    }
}

#[test]
fn node_disconnect_me_no_reconnect() {
    let node = NodePeer::start(CLIENT_PEER, &[]);
    for (mode, t) in MODES {
        block_on(30, disconnect_me(&node.url(), mode, t));
    }
}

#[test]
fn node_ack_timeout_and_retries() {
    let node = NodePeer::start(CLIENT_PEER, &[]);
    for (mode, t) in MODES {
        block_on(30, ack_timeout_and_retries(&node.url(), mode, t));
    }
}

#[test]
fn node_reconnect_after_server_restart() {
    let node = RefCell::new(NodePeer::start(CLIENT_PEER, &[]));
    let url = node.borrow().url();
    for (mode, t) in MODES {
        block_on(
            40,
            server_restart(
                &url,
                mode,
                t,
                &mut || {
                    let mut n = node.borrow_mut();
                    n.stop();
                    wait_port(n.port, false);
                },
                &mut || node.borrow_mut().start_again(),
            ),
        );
    }
}

/// Short heartbeats against Node (pings every 150 ms, pongs over polling POSTs, WebSocket and
/// across the upgrade). Node is also asked for a 100 ms keep-alive timeout; it does not close
/// the engine.io connections in practice, so the stale-connection retry of the HTTP client is
/// covered by the `client::polling` unit test instead.
#[test]
fn node_heartbeat_and_order() {
    let node = NodePeer::start(
        CLIENT_PEER,
        &[
            ("PING_INTERVAL", "150"),
            ("PING_TIMEOUT", "300"),
            ("KEEP_ALIVE_TIMEOUT", "100"),
        ],
    );
    for (mode, t) in MODES {
        block_on(30, heartbeat_and_order(&node.url(), mode, t));
    }
}
