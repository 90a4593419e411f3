//! Broadcast operators: `to` / `in` (several rooms = union), `except`, `local`, `volatile`,
//! `compress`, then `emit`. The packet is encoded once and shared by every recipient.

use crate::adapter::BroadcastMsg;
use crate::args::{to_writer, IntoArgs};
use crate::proto::eio::OutPacket;
use crate::server::shard;
use crate::socket::encode_packet;
use std::rc::Rc;

/// A broadcast being built. Obtain one from [`crate::Socket::to`], [`crate::Socket::broadcast`]
/// or [`crate::Io::of`].
#[derive(Clone)]
pub struct BroadcastOperator {
    ep: usize,
    ns: Rc<str>,
    rooms: Vec<Box<str>>,
    except: Vec<Box<str>>,
    local: bool,
    volatile: bool,
}

impl BroadcastOperator {
    pub(crate) fn new(ep: usize, ns: Rc<str>) -> Self {
        BroadcastOperator {
            ep,
            ns,
            rooms: Vec::new(),
            except: Vec::new(),
            local: false,
            volatile: false,
        }
    }
    /// Adds a target room (union with the rooms already named).
    pub fn to(mut self, room: &str) -> Self {
        if !self.rooms.iter().any(|r| &**r == room) {
            self.rooms.push(room.into());
        }
        self
    }
    /// Same as [`Self::to`].
    pub fn within(self, room: &str) -> Self {
        self.to(room)
    }
    /// Excludes the members of a room (a socket id excludes that socket).
    pub fn except(mut self, room: &str) -> Self {
        self.except.push(room.into());
        self
    }
    /// Only this shard's sockets.
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }
    /// May be dropped for clients that are not ready (slow or reconnecting).
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }
    /// Accepted for API parity; compression is not implemented yet, so this has no effect.
    pub fn compress(self, _on: bool) -> Self {
        self
    }
    /// Emits the event to every targeted socket (across all shards).
    pub fn emit(self, event: &str, args: impl IntoArgs) {
        let w = to_writer(args);
        let (text, att) = encode_packet(&self.ns, Some(event), None, w, false);
        let mut packets = Vec::with_capacity(1 + att.len());
        packets.push(OutPacket::Text(text));
        packets.extend(att.into_iter().map(OutPacket::Binary));
        let msg = BroadcastMsg {
            ep: self.ep,
            ns: (*self.ns).into(),
            rooms: self.rooms,
            except: self.except,
            packets,
            volatile: self.volatile,
        };
        shard().adapter.broadcast(msg, self.local);
    }
}
