//! The inputs and outputs of the session state machine: sides, transports, close reasons,
//! timing, queue limits, frames and events.

use super::super::OutPacket;
use bytes::Bytes;
use std::time::Duration;

/// Which end of the connection this state machine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sends pings, expects pongs.
    Server,
    /// Answers pings, expects them in time.
    Client,
}

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Transport {
    /// Node's name (`socket.conn.transport.name`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Why a session closed (Node's reason strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the connection (close packet, EOF, close frame).
    TransportClose,
    /// The connection failed (I/O error, protocol violation, overlapping requests).
    TransportError,
    /// This side closed the connection on purpose.
    ForcedClose,
    /// The heartbeat failed.
    PingTimeout,
    /// The peer sent an invalid packet.
    ParseError,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The output queue passed its cap (a consumer too slow to keep up).
    SlowConsumer,
}

impl CloseReason {
    /// Node's string for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ServerShuttingDown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The timing options of a session (Node's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `pingInterval`.
    pub ping_interval: Duration,
    /// `pingTimeout`.
    pub ping_timeout: Duration,
    /// `upgradeTimeout`.
    pub upgrade_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
        }
    }
}

/// Caps of the output queue: past either, the session closes with
/// [`CloseReason::SlowConsumer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most queued frames.
    pub frames: usize,
    /// Most queued bytes.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            frames: 16_384,
            bytes: 8 << 20,
        }
    }
}

/// One queued frame. WebSocket control frames never reach a polling transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// An Engine.IO packet.
    Eio(OutPacket),
    /// A WebSocket pong answering a ping.
    WsPong(Bytes),
    /// A WebSocket close frame; the connection shuts down once it is written.
    WsClose(u16),
}

/// What [`Session::queue`] did with the packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Queued: the transport should be woken.
    Yes,
    /// The session is closed: nothing was queued.
    Closed,
    /// Volatile packets dropped because the transport was not ready.
    DroppedVolatile,
    /// The queue passed a cap: the session is now closed ("slow consumer").
    Overflow,
}

/// What a polling GET is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// These packets (the queue, a `6` while upgrading or after the upgrade, or the final
    /// `1` / `6` of a closed session).
    Ready(Vec<OutPacket>),
    /// Nothing to send yet: the GET waits.
    Wait,
}

/// A refused transport event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// A second GET or POST while one is active: 400, and the session closed.
    Overlap,
    /// A polling request for a session that moved to WebSocket: 400.
    NotPolling,
}

/// Events for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The session closed (reported once).
    Closed {
        /// Why.
        reason: CloseReason,
        /// What the next polling GETs of this sid should still get, in order: `6` when the
        /// client closed while no GET waited (a GET racing its close); after a deliberate
        /// close by the server with packets still queued, those packets (unless a waiting GET
        /// takes them), then `1`.
        tombstone: Vec<Vec<OutPacket>>,
    },
}
