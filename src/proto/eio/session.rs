//! The Engine.IO session as a sans-IO state machine (quinn-proto style), for both sides.
//!
//! Owns: the heartbeat (server: a ping `pingInterval` after the open or the last pong, then
//! close with "ping timeout" unless a pong comes within `pingTimeout` of the ping's due time;
//! client: answer each ping with a pong, close with "ping timeout" when no ping came within
//! `pingInterval + pingTimeout`), the upgrade (probe, then `5`, abandoned after
//! `upgradeTimeout`), "one GET and one POST at a time" on polling, the output queue with its caps,
//! and the close reasons.
//!
//! Inputs are `handle_*` (a received packet, a timeout, a transport event) with the time passed
//! in; outputs are `poll_*`: the next frame to write ([`Session::poll_transmit`]), a polling
//! payload ([`Session::poll_payload`]), the close event ([`Session::poll_event`]) and the next
//! deadline ([`Session::poll_timeout`]).
//!
//! Must not: touch sockets, read the clock, or know what the messages mean (Socket.IO lives
//! above the engine).

use super::{OutPacket, Packet};
use std::collections::VecDeque;
use std::time::Instant;

mod types;
pub use types::*;

/// Which end, and for a server which protocol revision (one byte: sessions are many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    /// Engine.IO v3 (allowEIO3): the client pings and the server answers.
    ServerV3,
    Client,
}

/// One Engine.IO session's protocol state.
#[derive(Debug)]
pub struct Session {
    role: Role,
    transport: Transport,
    upgrading: bool,
    get_active: bool,
    post_active: bool,
    /// Server: waiting for a pong (`hb_due` is then the pong deadline).
    awaiting_pong: bool,
    closed: Option<CloseReason>,
    /// The close event is still to be reported by `poll_event`.
    close_pending: bool,
    /// Server: the next ping, or the pong deadline; client: the latest time for the next ping.
    hb_due: Instant,
    /// End of the upgrade probe.
    upgrade_due: Option<Instant>,
    out: VecDeque<Out>,
    out_bytes: usize,
}

impl Session {
    /// A session opened at `now` on `transport`.
    pub fn new(side: Side, transport: Transport, now: Instant, t: &Timing) -> Session {
        Session::with_protocol(side, false, transport, now, t)
    }

    /// A session of Engine.IO v3 (`v3`) or v4: in v3 the client sends the pings and the server
    /// answers them, closing when none came within `pingInterval + pingTimeout`.
    pub fn with_protocol(
        side: Side,
        v3: bool,
        transport: Transport,
        now: Instant,
        t: &Timing,
    ) -> Session {
        let role = match (side, v3) {
            (Side::Client, _) => Role::Client,
            (Side::Server, false) => Role::Server,
            (Side::Server, true) => Role::ServerV3,
        };
        let mut s = Session {
            role,
            transport,
            upgrading: false,
            get_active: false,
            post_active: false,
            awaiting_pong: false,
            closed: None,
            close_pending: false,
            hb_due: now,
            upgrade_due: None,
            out: VecDeque::new(),
            out_bytes: 0,
        };
        s.hb_due = if s.answers_pings() {
            now + t.ping_interval + t.ping_timeout
        } else {
            now + t.ping_interval
        };
        s
    }

    /// This side answers pings (a client; a v3 server) instead of sending them.
    fn answers_pings(&self) -> bool {
        self.role != Role::Server
    }

    /// Engine.IO v3.
    pub fn is_v3(&self) -> bool {
        self.role == Role::ServerV3
    }

    fn side(&self) -> Side {
        match self.role {
            Role::Client => Side::Client,
            Role::Server | Role::ServerV3 => Side::Server,
        }
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.transport
    }
    /// Between the probe and the `5`.
    pub fn upgrading(&self) -> bool {
        self.upgrading
    }
    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }
    /// Why it closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }
    /// Frames waiting for the transport.
    pub fn queued(&self) -> usize {
        self.out.len()
    }
    /// True when nothing is queued.
    pub fn queue_empty(&self) -> bool {
        self.out.is_empty()
    }
    /// A polling GET is active.
    pub fn get_active(&self) -> bool {
        self.get_active
    }

    /// The earliest time [`Self::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        Some(match self.upgrade_due {
            Some(u) if u < self.hb_due => u,
            _ => self.hb_due,
        })
    }

    /// Time passed: sends the ping that is due, closes on a missed heartbeat, ends an upgrade
    /// that took too long.
    pub fn handle_timeout(&mut self, now: Instant, t: &Timing) {
        if self.closed.is_some() {
            return;
        }
        if self.upgrade_due.is_some_and(|u| now >= u) {
            // the probe never completed: polling resumes (Node's upgradeTimeout)
            self.upgrade_due = None;
            self.upgrading = false;
        }
        if now < self.hb_due {
            return;
        }
        match self.answers_pings() {
            false if !self.awaiting_pong => {
                // the pong deadline counts from when the ping was due, not from `now`
                self.hb_due += t.ping_timeout;
                self.awaiting_pong = true;
                self.push(Out::Eio(OutPacket::PING));
                if now >= self.hb_due {
                    self.close(CloseReason::PingTimeout);
                }
            }
            _ => self.close(CloseReason::PingTimeout),
        }
    }

    /// True when the heartbeat deadline passed (checked lazily by requests, so that the answer
    /// does not depend on timer latency).
    pub fn expired(&self, now: Instant) -> bool {
        self.closed.is_none() && now >= self.hb_due && (self.answers_pings() || self.awaiting_pong)
    }

    /// A packet from the peer. Returns the application data (a message or a binary message);
    /// everything else is handled here.
    pub fn handle_packet(&mut self, now: Instant, p: Packet, t: &Timing) -> Option<Packet> {
        if self.closed.is_some() {
            return None;
        }
        let answers = self.answers_pings();
        match (self.side(), p) {
            (_, p @ (Packet::Message(_) | Packet::Binary(_))) => return Some(p),
            (_, Packet::Close) => self.close(CloseReason::TransportClose),
            (_, Packet::Ping(_)) if answers => {
                self.push(Out::Eio(OutPacket::PONG));
                self.hb_due = now + t.ping_interval + t.ping_timeout;
            }
            (Side::Server, Packet::Pong(_)) if !answers => {
                self.awaiting_pong = false;
                self.hb_due = now + t.ping_interval;
            }
            (Side::Server, Packet::Noop) => {}
            // a ping to a v4 server, a pong to a v3 one, an upgrade outside the probe, an open
            (
                Side::Server,
                Packet::Ping(_) | Packet::Pong(_) | Packet::Upgrade | Packet::Open(_),
            ) => self.close(CloseReason::ParseError),
            (Side::Client, _) => {}
        }
        None
    }

    /// Queues packets. Policy of the bounded queue: volatile packets are dropped unless
    /// `transport_ready` (nothing queued and the transport idle); packets that take the queue
    /// past a cap close the session with [`CloseReason::SlowConsumer`].
    #[inline]
    pub fn queue(
        &mut self,
        packets: impl IntoIterator<Item = OutPacket>,
        volatile: bool,
        transport_ready: bool,
        limits: &QueueLimits,
    ) -> Queued {
        if self.closed.is_some() {
            return Queued::Closed;
        }
        if volatile && !(transport_ready && self.out.is_empty() && !self.upgrading_polling()) {
            return Queued::DroppedVolatile;
        }
        for p in packets {
            self.push(Out::Eio(p));
        }
        if self.out.len() > limits.frames || self.out_bytes > limits.bytes {
            self.close(CloseReason::SlowConsumer);
            return Queued::Overflow;
        }
        Queued::Yes
    }

    /// Queues a WebSocket control frame (a pong answering a ping).
    pub fn queue_control(&mut self, o: Out) {
        if self.closed.is_none() {
            self.push(o);
        }
    }

    fn upgrading_polling(&self) -> bool {
        self.upgrading && self.transport == Transport::Polling
    }

    #[inline]
    fn push(&mut self, o: Out) {
        if let Out::Eio(p) = &o {
            self.out_bytes += p.len();
        }
        self.out.push_back(o);
    }

    /// The next frame for the WebSocket writer.
    pub fn poll_transmit(&mut self) -> Option<Out> {
        let o = self.out.pop_front()?;
        match &o {
            Out::Eio(p) => self.out_bytes -= p.len(),
            Out::WsClose(_) => {
                // nothing goes out after the close frame
                self.out.clear();
                self.out_bytes = 0;
            }
            Out::WsPong(_) => {}
        }
        Some(o)
    }

    /// The packets of the next polling POST (client side): everything queued, or fewer when
    /// the encoded payload would pass `max_payload` (0: no limit); at least one packet.
    pub fn poll_post(&mut self, max_payload: usize) -> Vec<OutPacket> {
        let mut n = self.out.len();
        if max_payload > 0 && n > 1 {
            let mut size = 0usize;
            for (i, o) in self.out.iter().enumerate() {
                size += match o {
                    Out::Eio(p) => super::payload_len(p),
                    _ => 0,
                };
                if i > 0 && size > max_payload {
                    n = i;
                    break;
                }
                size += 1;
            }
        }
        let mut packets = Vec::with_capacity(n);
        for o in self.out.drain(..n) {
            if let Out::Eio(p) = o {
                self.out_bytes -= p.len();
                packets.push(p);
            }
        }
        packets
    }

    /// Releases the queue's allocation when it is empty (idle sockets keep none).
    pub fn shrink_idle(&mut self) {
        if self.out.is_empty() && self.out.capacity() > 0 {
            self.out = VecDeque::new();
        }
    }

    /// What a waiting polling GET gets now.
    pub fn poll_payload(&mut self) -> Payload {
        if let Some(reason) = self.closed {
            return Payload::Ready(self.final_answer(reason));
        }
        if self.transport != Transport::Polling {
            return Payload::Ready(vec![OutPacket::NOOP]);
        }
        let mut packets = Vec::with_capacity(self.out.len());
        while let Some(o) = self.out.pop_front() {
            if let Out::Eio(p) = o {
                self.out_bytes -= p.len();
                packets.push(p);
            }
        }
        if !packets.is_empty() {
            return Payload::Ready(packets);
        }
        if self.upgrading {
            return Payload::Ready(vec![OutPacket::NOOP]);
        }
        Payload::Wait
    }

    /// A deliberate close by the server flushes what it queued before (Node writes its buffer
    /// before the close); a failure does not.
    fn flushes(&self, reason: CloseReason) -> bool {
        self.transport == Transport::Polling
            && matches!(
                reason,
                CloseReason::ForcedClose | CloseReason::ServerShuttingDown
            )
            && self.out.iter().any(|o| matches!(o, Out::Eio(_)))
    }

    /// What a GET of a closed session gets: `6` after the client's own close; the packets the
    /// server queued before closing deliberately (the `1` comes in the next answer: the client
    /// must handle them before the close, as with Node); else `1`.
    fn final_answer(&mut self, reason: CloseReason) -> Vec<OutPacket> {
        if reason == CloseReason::TransportClose && self.transport == Transport::Polling {
            return vec![OutPacket::NOOP];
        }
        if self.flushes(reason) {
            self.out_bytes = 0;
            return self
                .out
                .drain(..)
                .filter_map(|o| match o {
                    Out::Eio(p) => Some(p),
                    _ => None,
                })
                .collect();
        }
        vec![OutPacket::CLOSE]
    }

    /// A polling GET arrived.
    pub fn get_arrived(&mut self) -> Result<(), TransportError> {
        self.request_arrived(true)
    }
    /// The polling GET was answered (or abandoned).
    pub fn get_done(&mut self) {
        self.get_active = false;
    }
    /// A polling POST arrived.
    pub fn post_arrived(&mut self) -> Result<(), TransportError> {
        self.request_arrived(false)
    }
    /// The polling POST was handled.
    pub fn post_done(&mut self) {
        self.post_active = false;
    }

    fn request_arrived(&mut self, get: bool) -> Result<(), TransportError> {
        if self.transport != Transport::Polling {
            return Err(TransportError::NotPolling);
        }
        let active = if get {
            &mut self.get_active
        } else {
            &mut self.post_active
        };
        if *active {
            // a second concurrent request: the first gets `1`, this one 400, the session ends
            self.close(CloseReason::TransportError);
            return Err(TransportError::Overlap);
        }
        *active = true;
        Ok(())
    }

    /// The peer asks for an upgrade: false when the session cannot upgrade now (not on
    /// polling, or already upgrading).
    pub fn can_upgrade(&self) -> bool {
        self.closed.is_none() && self.transport == Transport::Polling && !self.upgrading
    }

    /// `2probe` arrived on the new WebSocket: polling pauses (a waiting GET gets `6`) until
    /// the `5`, or until `upgradeTimeout` passes.
    pub fn handle_probe(&mut self, now: Instant, t: &Timing) {
        if self.closed.is_none() {
            self.upgrading = true;
            self.upgrade_due = Some(now + t.upgrade_timeout);
        }
    }

    /// `5` arrived: the session moves to WebSocket. `answers` are frames the probe has not
    /// written yet; they go out first, before what was queued for polling. False when no probe
    /// is running (the upgrade is refused).
    pub fn handle_upgrade(&mut self, answers: Vec<Out>) -> bool {
        if !self.upgrading || self.closed.is_some() {
            return false;
        }
        self.upgrading = false;
        self.upgrade_due = None;
        self.transport = Transport::WebSocket;
        for o in answers.into_iter().rev() {
            if let Out::Eio(p) = &o {
                self.out_bytes += p.len();
            }
            self.out.push_front(o);
        }
        true
    }

    /// The upgrade failed (the probe socket broke or sent something else): polling resumes.
    pub fn abort_upgrade(&mut self) {
        self.upgrading = false;
        self.upgrade_due = None;
    }

    /// Closes the session (first call wins).
    pub fn close(&mut self, reason: CloseReason) {
        self.close_with_code(reason, 1000)
    }

    /// Closes the session; a WebSocket gets a close frame with `code`.
    pub fn close_with_code(&mut self, reason: CloseReason, code: u16) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        self.close_pending = true;
        self.upgrading = false;
        self.upgrade_due = None;
        if self.transport == Transport::WebSocket && self.side() == Side::Server {
            self.out.push_back(Out::WsClose(code));
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        if !std::mem::take(&mut self.close_pending) {
            return None;
        }
        let reason = self.closed?;
        let mut tombstone = Vec::new();
        if self.transport == Transport::Polling {
            let flushes = self.flushes(reason);
            if !self.get_active {
                // no GET waits: the next ones of this sid still get their answers
                if reason == CloseReason::TransportClose || flushes {
                    tombstone.push(self.final_answer(reason));
                }
                if flushes {
                    tombstone.push(vec![OutPacket::CLOSE]);
                }
            } else if flushes {
                // the waiting GET takes the queue; the `1` goes to the next one
                tombstone.push(vec![OutPacket::CLOSE]);
            }
        }
        Some(Event::Closed { reason, tombstone })
    }
}

#[cfg(test)]
mod tests;
