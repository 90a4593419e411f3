//! Virtual-clock tests of the session state machine: no sockets, no sleeps.

use super::*;
use bytes::Bytes;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn timing() -> Timing {
    Timing {
        ping_interval: 25 * SEC,
        ping_timeout: 20 * SEC,
        upgrade_timeout: 10 * SEC,
    }
}

fn text(s: &'static str) -> OutPacket {
    OutPacket::Text(Bytes::from_static(s.as_bytes()))
}

fn server(transport: Transport) -> (Session, Instant, Timing) {
    let t0 = Instant::now();
    let t = timing();
    (Session::new(Side::Server, transport, t0, &t), t0, t)
}

fn drain(s: &mut Session) -> Vec<Out> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

#[test]
fn server_pings_after_the_interval_and_waits_for_the_pong() {
    let (mut s, t0, t) = server(Transport::WebSocket);
    assert_eq!(s.poll_timeout(), Some(t0 + 25 * SEC));
    s.handle_timeout(t0 + 24 * SEC, &t);
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(t0 + 25 * SEC, &t);
    assert_eq!(drain(&mut s), vec![Out::Eio(OutPacket::PING)]);
    // the pong deadline counts from the ping's due time
    assert_eq!(s.poll_timeout(), Some(t0 + 45 * SEC));
    assert!(!s.expired(t0 + 44 * SEC));
    assert_eq!(
        s.handle_packet(t0 + 30 * SEC, Packet::Pong(Bytes::new()), &t),
        None
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 55 * SEC));
    s.handle_timeout(t0 + 45 * SEC, &t);
    assert!(!s.is_closed());
    assert_eq!(s.poll_event(), None);
}

#[test]
fn server_closes_without_a_pong() {
    let (mut s, t0, t) = server(Transport::WebSocket);
    s.handle_timeout(t0 + 25 * SEC, &t);
    assert!(s.expired(t0 + 45 * SEC));
    s.handle_timeout(t0 + 45 * SEC, &t);
    assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::PingTimeout,
            tombstone: vec![]
        })
    );
    assert_eq!(s.poll_event(), None, "the close is reported once");
    // the WebSocket gets its close frame after the ping
    assert_eq!(
        drain(&mut s),
        vec![Out::Eio(OutPacket::PING), Out::WsClose(1000)]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_late_timer_sends_the_ping_and_times_out_at_once() {
    let (mut s, t0, t) = server(Transport::WebSocket);
    s.handle_timeout(t0 + 50 * SEC, &t);
    assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
}

#[test]
fn messages_go_to_the_application_and_bad_packets_close() {
    let (mut s, t0, t) = server(Transport::WebSocket);
    let m = Packet::Message(Bytes::from_static(b"hello"));
    assert_eq!(s.handle_packet(t0, m.clone(), &t), Some(m));
    assert_eq!(s.handle_packet(t0, Packet::Noop, &t), None);
    assert!(!s.is_closed());
    assert_eq!(s.handle_packet(t0, Packet::Ping(Bytes::new()), &t), None);
    assert_eq!(s.close_reason(), Some(CloseReason::ParseError));
    // nothing is handled once closed
    let m = Packet::Message(Bytes::from_static(b"late"));
    assert_eq!(s.handle_packet(t0, m, &t), None);
}

#[test]
fn ping_during_upgrade_then_upgrade() {
    let (mut s, t0, t) = server(Transport::Polling);
    s.get_arrived().unwrap();
    assert_eq!(s.poll_payload(), Payload::Wait);
    assert!(s.can_upgrade());
    s.handle_probe(t0 + 20 * SEC, &t);
    assert!(!s.can_upgrade());
    // the waiting GET is released with a noop
    assert_eq!(s.poll_payload(), Payload::Ready(vec![OutPacket::NOOP]));
    s.get_done();
    // the heartbeat goes on during the upgrade; a GET still takes the ping
    s.handle_timeout(t0 + 25 * SEC, &t);
    s.get_arrived().unwrap();
    assert_eq!(s.poll_payload(), Payload::Ready(vec![OutPacket::PING]));
    s.get_done();
    s.queue([text("4a")], false, false, &QueueLimits::default());
    assert!(s.handle_upgrade(vec![Out::Eio(OutPacket::PONG_PROBE)]));
    assert_eq!(s.transport(), Transport::WebSocket);
    // the probe's answer first, then what was queued for polling
    assert_eq!(
        drain(&mut s),
        vec![Out::Eio(OutPacket::PONG_PROBE), Out::Eio(text("4a"))]
    );
    // a GET after the upgrade gets a noop; a new request is refused
    assert_eq!(s.poll_payload(), Payload::Ready(vec![OutPacket::NOOP]));
    assert_eq!(s.get_arrived(), Err(TransportError::NotPolling));
    assert!(!s.is_closed());
}

#[test]
fn upgrade_timeout_resumes_polling() {
    let (mut s, t0, t) = server(Transport::Polling);
    s.handle_probe(t0, &t);
    assert_eq!(s.poll_timeout(), Some(t0 + 10 * SEC));
    s.handle_timeout(t0 + 10 * SEC, &t);
    assert!(!s.upgrading());
    assert_eq!(s.poll_timeout(), Some(t0 + 25 * SEC));
    s.get_arrived().unwrap();
    assert_eq!(s.poll_payload(), Payload::Wait);
    // a `5` after the timeout is refused
    assert!(!s.handle_upgrade(Vec::new()));
    assert_eq!(s.transport(), Transport::Polling);
}

#[test]
fn duplicate_get_closes_and_the_first_gets_close() {
    let (mut s, _, _) = server(Transport::Polling);
    s.get_arrived().unwrap();
    assert_eq!(s.poll_payload(), Payload::Wait);
    assert_eq!(s.get_arrived(), Err(TransportError::Overlap));
    assert_eq!(s.close_reason(), Some(CloseReason::TransportError));
    assert_eq!(s.poll_payload(), Payload::Ready(vec![OutPacket::CLOSE]));
    // one POST at a time too
    let (mut s, _, _) = server(Transport::Polling);
    s.post_arrived().unwrap();
    assert_eq!(s.post_arrived(), Err(TransportError::Overlap));
    s.post_done();
}

#[test]
fn client_close_races_a_get() {
    // no GET pending: the sid is remembered so that a GET racing the close gets its `6`
    let (mut s, t0, t) = server(Transport::Polling);
    s.handle_packet(t0, Packet::Close, &t);
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::TransportClose,
            tombstone: vec![vec![OutPacket::NOOP]]
        })
    );
    // a GET pending: it is answered `6` at once
    let (mut s, t0, t) = server(Transport::Polling);
    s.get_arrived().unwrap();
    assert_eq!(s.poll_payload(), Payload::Wait);
    s.handle_packet(t0, Packet::Close, &t);
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::TransportClose,
            tombstone: vec![]
        })
    );
    assert_eq!(s.poll_payload(), Payload::Ready(vec![OutPacket::NOOP]));
}

#[test]
fn queue_policy_volatile_and_caps() {
    let (mut s, _, _) = server(Transport::WebSocket);
    let limits = QueueLimits {
        frames: 3,
        bytes: 100,
    };
    assert_eq!(
        s.queue([text("4v")], true, false, &limits),
        Queued::DroppedVolatile
    );
    assert_eq!(s.queue([text("4v")], true, true, &limits), Queued::Yes);
    // something is queued now: volatile packets wait for an empty queue
    assert_eq!(
        s.queue([text("4v")], true, true, &limits),
        Queued::DroppedVolatile
    );
    assert_eq!(
        s.queue([text("4a"), text("4b")], false, true, &limits),
        Queued::Yes
    );
    assert_eq!(
        s.queue([text("4c")], false, true, &limits),
        Queued::Overflow
    );
    assert_eq!(s.close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(s.queue([text("4d")], false, true, &limits), Queued::Closed);
    let mut s = Session::new(
        Side::Server,
        Transport::WebSocket,
        Instant::now(),
        &timing(),
    );
    let big = OutPacket::Text(Bytes::from(vec![b'4'; 101]));
    assert_eq!(s.queue([big], false, true, &limits), Queued::Overflow);
}

#[test]
fn websocket_close_frame_ends_the_queue() {
    let (mut s, _, _) = server(Transport::WebSocket);
    s.queue([text("4a")], false, true, &QueueLimits::default());
    s.close_with_code(CloseReason::TransportError, 1009);
    s.queue_control(Out::WsPong(Bytes::new()));
    assert_eq!(
        drain(&mut s),
        vec![Out::Eio(text("4a")), Out::WsClose(1009)]
    );
}

#[test]
fn client_answers_pings_and_times_out_without_them() {
    let t0 = Instant::now();
    let t = timing();
    let mut c = Session::new(Side::Client, Transport::WebSocket, t0, &t);
    assert_eq!(c.poll_timeout(), Some(t0 + 45 * SEC));
    c.handle_packet(t0 + 10 * SEC, Packet::Ping(Bytes::new()), &t);
    assert_eq!(drain(&mut c), vec![Out::Eio(OutPacket::PONG)]);
    assert_eq!(c.poll_timeout(), Some(t0 + 55 * SEC));
    c.handle_timeout(t0 + 54 * SEC, &t);
    assert!(!c.is_closed() && !c.expired(t0 + 54 * SEC));
    assert!(c.expired(t0 + 55 * SEC));
    c.handle_timeout(t0 + 55 * SEC, &t);
    assert_eq!(c.close_reason(), Some(CloseReason::PingTimeout));
    // a client queues no close frame: it closes its own transport
    assert!(drain(&mut c).is_empty());
    // a client ignores what only a server sends to it
    let mut c = Session::new(Side::Client, Transport::Polling, t0, &t);
    c.handle_packet(t0, Packet::Pong(Bytes::new()), &t);
    c.handle_packet(t0, Packet::Noop, &t);
    assert!(!c.is_closed());
}

#[test]
fn client_posts_are_cut_at_max_payload() {
    let t0 = Instant::now();
    let mut c = Session::new(Side::Client, Transport::Polling, t0, &timing());
    let none = QueueLimits::default();
    c.queue(
        [text("4aaaa"), text("4bbbb"), text("4cccc")],
        false,
        false,
        &none,
    );
    // 5 + 1 + 5 = 11 > 10: the second packet waits
    assert_eq!(c.poll_post(10).len(), 1);
    assert_eq!(c.poll_post(11).len(), 2);
    c.queue([text("4xxxxxxxxxxxxxxxx")], false, false, &none);
    assert_eq!(c.poll_post(3).len(), 1, "one packet always goes");
    let bin = OutPacket::Binary(Bytes::from_static(&[0; 30]));
    assert_eq!(super::super::payload_len(&bin), 41);
    c.queue([text("4a"), bin], false, false, &none);
    assert_eq!(c.poll_post(0).len(), 2, "0 means no limit");
    assert!(c.queue_empty());
}

#[test]
fn a_server_close_flushes_the_polling_queue_first() {
    // a GET waits: it takes the queue, and the next GET gets the `1`
    let (mut s, _, _) = server(Transport::Polling);
    s.get_arrived().unwrap();
    assert_eq!(s.poll_payload(), Payload::Wait);
    s.queue(
        [text("41"), text("41/x,")],
        false,
        true,
        &QueueLimits::default(),
    );
    s.close(CloseReason::ForcedClose);
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::ForcedClose,
            tombstone: vec![vec![OutPacket::CLOSE]]
        })
    );
    assert_eq!(
        s.poll_payload(),
        Payload::Ready(vec![text("41"), text("41/x,")])
    );
    // no GET waits: the next two GETs of the sid get the queue, then the `1`
    let (mut s, _, _) = server(Transport::Polling);
    s.queue([text("41")], false, false, &QueueLimits::default());
    s.close(CloseReason::ServerShuttingDown);
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::ServerShuttingDown,
            tombstone: vec![vec![text("41")], vec![OutPacket::CLOSE]]
        })
    );
    // a failure drops what was queued
    let (mut s, _, _) = server(Transport::Polling);
    s.queue([text("42[]")], false, false, &QueueLimits::default());
    s.close(CloseReason::TransportError);
    assert_eq!(s.poll_payload(), Payload::Ready(vec![OutPacket::CLOSE]));
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::TransportError,
            tombstone: vec![]
        })
    );
}

#[test]
fn a_v3_server_answers_the_client_pings() {
    let t0 = Instant::now();
    let t = timing();
    let mut s = Session::with_protocol(Side::Server, true, Transport::WebSocket, t0, &t);
    assert!(s.is_v3());
    assert_eq!(s.poll_timeout(), Some(t0 + 45 * SEC));
    // no ping from the server
    s.handle_timeout(t0 + 44 * SEC, &t);
    assert!(drain(&mut s).is_empty());
    s.handle_packet(t0 + 30 * SEC, Packet::Ping(Bytes::new()), &t);
    assert_eq!(drain(&mut s), vec![Out::Eio(OutPacket::PONG)]);
    assert_eq!(s.poll_timeout(), Some(t0 + 75 * SEC));
    s.handle_timeout(t0 + 74 * SEC, &t);
    assert!(!s.is_closed());
    s.handle_timeout(t0 + 75 * SEC, &t);
    assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
    // a pong is the wrong direction in v3
    let mut s = Session::with_protocol(Side::Server, true, Transport::WebSocket, t0, &t);
    s.handle_packet(t0, Packet::Pong(Bytes::new()), &t);
    assert_eq!(s.close_reason(), Some(CloseReason::ParseError));
}
