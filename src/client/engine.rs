//! One Engine.IO connection of the client: the handshake, the write buffer shared by the
//! transports, heartbeats, the upgrade switch and closing.
//!
//! Owns: opening (a polling GET without `sid`, or a WebSocket whose first message is the open
//! packet), the handshake values (`sid`, `pingInterval`, `pingTimeout`, `maxPayload`,
//! `upgrades`), the session state machine in the client role ([`crate::proto::eio::session`]:
//! answering `2` with `3`, the ping deadline `pingInterval + pingTimeout` after the last ping,
//! the transport and upgrade state, the outgoing queue flushed by whichever transport is active
//! and held back while upgrading), the queue of events for the manager (received messages, then
//! exactly one `Closed(reason)`), and the graceful close (drain, then `1` over polling or a
//! close frame over WebSocket).
//!
//! Must not: parse Socket.IO, or decide about reconnection (the manager does both). The
//! transports' I/O lives in `polling.rs` and `websocket.rs`; every task of an engine is dropped
//! when it closes.

use super::notify::{spawn_until, wait_until, Notify};
use super::{polling, websocket, ClientError, Config, Transport};
use crate::proto::eio::session::{QueueLimits, Session as Machine, Side, Timing};
use crate::proto::eio::{decode_payload, CloseReason, OutPacket, Packet};
use bytes::Bytes;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a graceful close waits for the buffer to drain before closing anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// What the engine hands to the manager, in order.
pub(crate) enum EngineEvent {
    /// A `4` text message (without its `4`) or a binary message.
    Packet(Packet),
    /// The connection is gone; always the last event.
    Closed(CloseReason),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Handshake {
    sid: String,
    #[serde(default)]
    upgrades: Vec<String>,
    ping_interval: u64,
    ping_timeout: u64,
    #[serde(default)]
    max_payload: u64,
}

/// Mutable state of one connection.
pub(crate) struct State {
    /// The protocol state (client role): transport, upgrade, heartbeat, outgoing queue, close.
    pub m: Machine,
    /// A polling GET is in flight.
    pub polling: bool,
    /// A polling POST is in flight (the transport is not writable).
    pub posting: bool,
    /// A WebSocket write is in flight.
    pub ws_writing: bool,
    /// A graceful close started: new writes are dropped.
    pub closing: bool,
    /// Ready-made WebSocket control frames (pong, close), written first.
    pub ws_control: VecDeque<Bytes>,
    /// Events for the manager.
    pub events: VecDeque<EngineEvent>,
}

impl State {
    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.m.transport()
    }
    /// Between `3probe` and the switch: nothing is flushed, polling pauses.
    pub fn upgrading(&self) -> bool {
        self.m.upgrading()
    }
    /// True once the connection is gone.
    pub fn closed(&self) -> bool {
        self.m.is_closed()
    }
}

/// The client queues without a cap (socket.io-client buffers without limit).
const NO_LIMIT: QueueLimits = QueueLimits {
    frames: usize::MAX,
    bytes: usize::MAX,
};

/// The shared part of a connection (tasks hold it).
pub(crate) struct Shared {
    /// Client configuration.
    pub cfg: Rc<Config>,
    /// The Engine.IO session id.
    pub sid: String,
    /// `pingInterval` and `pingTimeout` from the handshake.
    pub timing: Timing,
    /// `maxPayload` from the handshake (0: no limit).
    pub max_payload: usize,
    /// State.
    pub st: RefCell<State>,
    /// Notified after every state change.
    pub notify: Rc<Notify>,
}

/// A handle on one Engine.IO connection.
#[derive(Clone)]
pub(crate) struct Engine(pub(crate) Rc<Shared>);

fn parse_handshake(json: &[u8]) -> Result<Handshake, ClientError> {
    sonic_rs::from_slice(json).map_err(|e| {
        ClientError::Handshake(format!(
            "bad open packet {:?}: {e}",
            String::from_utf8_lossy(json)
        ))
    })
}

impl Engine {
    /// Connects with the first configured transport and completes the Engine.IO handshake.
    pub async fn open(cfg: Rc<Config>) -> Result<Engine, ClientError> {
        let engine = match cfg.transports[0] {
            Transport::Polling => {
                let mut conn = polling::HttpConn::new(cfg.clone());
                let uri = cfg.target.uri(Transport::Polling, None);
                let body = conn.get(&uri).await?;
                let mut packets = decode_payload(body);
                let hs = match packets.next() {
                    Some(Ok(Packet::Open(json))) => parse_handshake(&json)?,
                    other => {
                        return Err(ClientError::Handshake(format!(
                            "expected an open packet, got {other:?}"
                        )))
                    }
                };
                let rest: Vec<_> = packets.collect();
                let probe = cfg.upgrade
                    && cfg.transports.contains(&Transport::WebSocket)
                    && hs.upgrades.iter().any(|u| u == "websocket");
                let engine = Engine::new(cfg, hs, Transport::Polling);
                for p in rest {
                    match p {
                        Ok(p) => engine.0.on_packet(p),
                        Err(_) => engine.0.fail(CloseReason::TransportError),
                    }
                }
                polling::start(&engine.0, conn);
                if probe {
                    engine.0.spawn(websocket::probe(engine.0.clone()));
                }
                engine
            }
            Transport::WebSocket => {
                let mut ws = websocket::WsConn::connect(&cfg, None).await?;
                let json = ws.open_packet().await?;
                let hs = parse_handshake(&json)?;
                let engine = Engine::new(cfg, hs, Transport::WebSocket);
                websocket::start(&engine.0, ws);
                engine
            }
        };
        let sh = engine.0.clone();
        engine.0.spawn(watchdog(sh));
        Ok(engine)
    }

    fn new(cfg: Rc<Config>, hs: Handshake, transport: Transport) -> Engine {
        let timing = Timing {
            ping_interval: Duration::from_millis(hs.ping_interval),
            ping_timeout: Duration::from_millis(hs.ping_timeout),
            ..Timing::default()
        };
        Engine(Rc::new(Shared {
            cfg,
            sid: hs.sid,
            timing,
            max_payload: usize::try_from(hs.max_payload).unwrap_or(usize::MAX),
            st: RefCell::new(State {
                m: Machine::new(Side::Client, transport, Instant::now(), &timing),
                polling: false,
                posting: false,
                ws_writing: false,
                closing: false,
                ws_control: VecDeque::new(),
                events: VecDeque::new(),
            }),
            notify: Rc::new(Notify::default()),
        }))
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &str {
        &self.0.sid
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.0.st.borrow().transport()
    }

    /// Queues packets (dropped once closing or closed).
    pub fn write(&self, packets: impl IntoIterator<Item = OutPacket>) {
        {
            let mut st = self.0.st.borrow_mut();
            if st.closing {
                return;
            }
            st.m.queue(packets, false, false, &NO_LIMIT);
        }
        self.0.notify.notify();
    }

    /// True when the ping deadline passed (the connection is then closed, "ping timeout"):
    /// timers may fire late, emits check this first like socket.io-client does.
    pub fn ping_expired(&self) -> bool {
        let expired = self.0.st.borrow().m.expired(Instant::now());
        if expired {
            self.0.fail(CloseReason::PingTimeout);
        }
        expired
    }

    /// Closes at once with `reason`.
    pub fn abort(&self, reason: CloseReason) {
        self.0.fail(reason);
    }

    /// Closes gracefully: waits for the buffer to drain (and a running upgrade to finish), sends
    /// the close, then ends with reason `"forced close"`.
    pub fn close(&self) {
        {
            let mut st = self.0.st.borrow_mut();
            if st.closing || st.closed() {
                return;
            }
            st.closing = true;
        }
        self.0.notify.notify();
        self.0.spawn(self.0.clone().close_gracefully());
    }

    /// The next event for the manager.
    pub fn pop_event(&self) -> Option<EngineEvent> {
        self.0.st.borrow_mut().events.pop_front()
    }

    /// True when events are waiting.
    pub fn has_events(&self) -> bool {
        !self.0.st.borrow().events.is_empty()
    }

    /// The notifier of this connection.
    pub fn notify(&self) -> &Notify {
        &self.0.notify
    }
}

impl Shared {
    /// Runs `fut` until it ends or the connection closes.
    pub fn spawn(self: &Rc<Self>, fut: impl Future<Output = ()> + 'static) {
        let sh = self.clone();
        spawn_until(self.notify.clone(), move || sh.st.borrow().closed(), fut);
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.st.borrow().closed()
    }

    /// Handles one received Engine.IO packet.
    pub fn on_packet(&self, p: Packet) {
        {
            let mut st = self.st.borrow_mut();
            if let Some(msg) = st.m.handle_packet(Instant::now(), p, &self.timing) {
                st.events.push_back(EngineEvent::Packet(msg));
            }
            Self::report_close(&mut st);
        }
        self.notify.notify();
    }

    /// Moves the machine's close event (if any) to the manager's events.
    fn report_close(st: &mut State) {
        use crate::proto::eio::session::Event;
        if let Some(Event::Closed { reason, .. }) = st.m.poll_event() {
            tracing::debug!(%reason, "engine.io connection closed");
            while st.m.poll_transmit().is_some() {}
            st.ws_control.clear();
            st.events.push_back(EngineEvent::Closed(reason));
        }
    }

    /// Ends the connection with `reason` (first call wins); tasks stop, the manager is told.
    pub fn fail(&self, reason: CloseReason) {
        {
            let mut st = self.st.borrow_mut();
            st.m.close(reason);
            Self::report_close(&mut st);
        }
        self.notify.notify();
    }

    fn quiet(&self) -> bool {
        let st = self.st.borrow();
        st.closed()
            || (!st.upgrading()
                && st.m.queue_empty()
                && st.ws_control.is_empty()
                && !st.posting
                && !st.ws_writing)
    }

    async fn close_gracefully(self: Rc<Self>) {
        let _ =
            monoio::time::timeout(CLOSE_GRACE, wait_until(&[&self.notify], || self.quiet())).await;
        if self.is_closed() {
            return;
        }
        {
            let mut st = self.st.borrow_mut();
            match st.transport() {
                Transport::Polling => {
                    st.m.queue([OutPacket::CLOSE], false, false, &NO_LIMIT);
                }
                Transport::WebSocket => st.ws_control.push_back(websocket::close_frame()),
            }
        }
        self.notify.notify();
        let _ =
            monoio::time::timeout(CLOSE_GRACE, wait_until(&[&self.notify], || self.quiet())).await;
        self.fail(CloseReason::ForcedClose);
    }
}

/// Closes the connection when no ping arrived within `pingInterval + pingTimeout` (the
/// machine's deadline).
async fn watchdog(sh: Rc<Shared>) {
    loop {
        let Some(due) = sh.st.borrow().m.poll_timeout() else {
            return;
        };
        monoio::time::sleep_until(due.into()).await;
        {
            let mut st = sh.st.borrow_mut();
            st.m.handle_timeout(Instant::now(), &sh.timing);
            Shared::report_close(&mut st);
        }
        sh.notify.notify();
        if sh.is_closed() {
            return;
        }
    }
}
