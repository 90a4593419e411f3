//! Outgoing messages, field for field and in the key order Node's adapter writes them.

use super::super::msgpack::{self, map, string_array, DecodeError, Value};
use super::{classic, sharded, Proto};
use crate::sio::cluster::{EventData, Target};
use std::time::Duration;

/// A channel and the payload to publish there.
pub type Publish = (String, Vec<u8>);

/// Node's test for a private room in dynamic mode (`looksLikeASocketId`).
fn looks_like_a_socket_id(room: &str) -> bool {
    room.chars().count() == 20
}

impl Proto {
    /// A broadcast (no acks).
    pub fn broadcast(
        &self,
        t: &Target,
        data: &EventData,
        volatile: bool,
    ) -> Result<Publish, DecodeError> {
        let flags = flags(volatile, None);
        if self.sharded {
            let body = map(vec![
                ("packet", packet(data, None)?),
                ("opts", opts(t, flags)),
            ]);
            let channel = match t.rooms.as_slice() {
                [room] if self.dynamic && !looks_like_a_socket_id(room) => {
                    self.room_channel(&t.ns, room)
                }
                _ => self.channel(&t.ns),
            };
            let m = self.envelope(sharded::BROADCAST, body, &t.ns);
            return Ok((channel, payload(&m, true)));
        }
        let msg = Value::Array(vec![
            self.uid.as_str().into(),
            packet(data, Some(&t.ns))?,
            opts(t, flags),
        ]);
        let channel = match t.rooms.as_slice() {
            [room] => self.room_channel(&t.ns, room),
            _ => self.channel(&t.ns),
        };
        Ok((channel, msgpack::encode(&msg)))
    }

    /// A broadcast with acks.
    pub fn broadcast_ack(
        &self,
        request_id: &str,
        t: &Target,
        data: &EventData,
        timeout: Duration,
    ) -> Result<Publish, DecodeError> {
        let flags = flags(false, Some(timeout));
        if self.sharded {
            let body = map(vec![
                ("packet", packet(data, None)?),
                ("requestId", request_id.into()),
                ("opts", opts(t, flags)),
            ]);
            let m = self.envelope(sharded::BROADCAST, body, &t.ns);
            return Ok((self.channel(&t.ns), payload(&m, true)));
        }
        let m = map(vec![
            ("uid", self.uid.as_str().into()),
            ("requestId", request_id.into()),
            ("type", classic::BROADCAST.into()),
            ("packet", packet(data, Some(&t.ns))?),
            ("opts", opts(t, flags)),
        ]);
        Ok((self.request_channel(&t.ns), msgpack::encode(&m)))
    }

    /// `socketsJoin` (`join`) or `socketsLeave`.
    pub fn rooms_op(&self, t: &Target, rooms: &[String], join: bool) -> Publish {
        let o = opts_plain(t, self.sharded);
        if self.sharded {
            let kind = if join {
                sharded::SOCKETS_JOIN
            } else {
                sharded::SOCKETS_LEAVE
            };
            let body = map(vec![("opts", o), ("rooms", string_array(rooms))]);
            return (
                self.channel(&t.ns),
                payload(&self.envelope(kind, body, &t.ns), false),
            );
        }
        let kind = if join {
            classic::REMOTE_JOIN
        } else {
            classic::REMOTE_LEAVE
        };
        let m = map(vec![
            ("uid", self.uid.as_str().into()),
            ("type", kind.into()),
            ("opts", o),
            ("rooms", string_array(rooms)),
        ]);
        (self.request_channel(&t.ns), json(&m))
    }

    /// `disconnectSockets`.
    pub fn disconnect(&self, t: &Target, close: bool) -> Publish {
        let o = opts_plain(t, self.sharded);
        if self.sharded {
            let body = map(vec![("opts", o), ("close", close.into())]);
            let m = self.envelope(sharded::DISCONNECT_SOCKETS, body, &t.ns);
            return (self.channel(&t.ns), payload(&m, false));
        }
        let m = map(vec![
            ("uid", self.uid.as_str().into()),
            ("type", classic::REMOTE_DISCONNECT.into()),
            ("opts", o),
            ("close", close.into()),
        ]);
        (self.request_channel(&t.ns), json(&m))
    }

    /// `fetchSockets`.
    pub fn fetch(&self, request_id: &str, t: &Target) -> Publish {
        let o = opts_plain(t, self.sharded);
        if self.sharded {
            let body = map(vec![("opts", o), ("requestId", request_id.into())]);
            let m = self.envelope(sharded::FETCH_SOCKETS, body, &t.ns);
            return (self.channel(&t.ns), payload(&m, false));
        }
        let m = map(vec![
            ("uid", self.uid.as_str().into()),
            ("requestId", request_id.into()),
            ("type", classic::REMOTE_FETCH.into()),
            ("opts", o),
        ]);
        (self.request_channel(&t.ns), json(&m))
    }

    /// `allRooms` (classic only: the sharded adapter lists this node's rooms alone, as Node).
    pub fn all_rooms(&self, request_id: &str, ns: &str) -> Option<Publish> {
        if self.sharded {
            return None;
        }
        let m = map(vec![
            ("uid", self.uid.as_str().into()),
            ("requestId", request_id.into()),
            ("type", classic::ALL_ROOMS.into()),
        ]);
        Some((self.request_channel(ns), json(&m)))
    }

    /// `serverSideEmit`, with an ack when `request_id` is set.
    pub fn server_side_emit(
        &self,
        request_id: Option<&str>,
        ns: &str,
        data: &EventData,
    ) -> Result<Publish, DecodeError> {
        let packet = msgpack::from_json(&data.json, &data.attachments)?;
        if self.sharded {
            let mut body = Vec::new();
            if let Some(id) = request_id {
                body.push(("requestId", id.into()));
            }
            body.push(("packet", packet));
            let m = self.envelope(sharded::SERVER_SIDE_EMIT, map(body), ns);
            return Ok((self.channel(ns), payload(&m, true)));
        }
        let mut m = vec![("uid", self.uid.as_str().into())];
        if let Some(id) = request_id {
            m.push(("requestId", id.into()));
        }
        m.push(("type", classic::SERVER_SIDE_EMIT.into()));
        m.push(("data", packet));
        Ok((self.request_channel(ns), json(&map(m))))
    }

    /// The answer to a `fetchSockets`: this node's sockets.
    pub fn fetch_answer(&self, requester: &str, id: &str, ns: &str, sockets: Value) -> Publish {
        if self.sharded {
            let body = map(vec![("requestId", id.into()), ("sockets", sockets)]);
            let m = self.envelope(sharded::FETCH_SOCKETS_RESPONSE, body, ns);
            return (self.answer_channel(ns, requester), payload(&m, true));
        }
        let m = map(vec![("requestId", id.into()), ("sockets", sockets)]);
        (self.response_channel(ns), json(&m))
    }

    /// The answer to an `allRooms`.
    pub fn rooms_answer(&self, id: &str, ns: &str, rooms: &[String]) -> Publish {
        let m = map(vec![
            ("requestId", id.into()),
            ("rooms", string_array(rooms)),
        ]);
        (self.response_channel(ns), json(&m))
    }

    /// The answer of this node's listener to a `serverSideEmit` with ack.
    pub fn server_side_answer(&self, requester: &str, id: &str, ns: &str, arg: Value) -> Publish {
        if self.sharded {
            let body = map(vec![("requestId", id.into()), ("packet", arg)]);
            let m = self.envelope(sharded::SERVER_SIDE_EMIT_RESPONSE, body, ns);
            return (self.answer_channel(ns, requester), payload(&m, true));
        }
        let m = map(vec![
            ("type", classic::SERVER_SIDE_EMIT.into()),
            ("requestId", id.into()),
            ("data", arg),
        ]);
        (self.response_channel(ns), json(&m))
    }

    /// How many of this node's sockets a broadcast with acks reached.
    pub fn count_answer(&self, requester: &str, id: &str, ns: &str, n: usize) -> Publish {
        let n = n as u64;
        if self.sharded {
            let body = map(vec![("requestId", id.into()), ("clientCount", n.into())]);
            let m = self.envelope(sharded::BROADCAST_CLIENT_COUNT, body, ns);
            return (self.answer_channel(ns, requester), payload(&m, false));
        }
        let m = map(vec![
            ("type", classic::BROADCAST_CLIENT_COUNT.into()),
            ("requestId", id.into()),
            ("clientCount", n.into()),
        ]);
        (self.response_channel(ns), json(&m))
    }

    /// One client's ack to a broadcast with acks (its first argument).
    pub fn ack_answer(&self, requester: &str, id: &str, ns: &str, arg: Value) -> Publish {
        if self.sharded {
            let body = map(vec![("requestId", id.into()), ("packet", arg)]);
            let m = self.envelope(sharded::BROADCAST_ACK, body, ns);
            return (self.answer_channel(ns, requester), payload(&m, true));
        }
        let m = map(vec![
            ("type", classic::BROADCAST_ACK.into()),
            ("requestId", id.into()),
            ("packet", arg),
        ]);
        (self.response_channel(ns), msgpack::encode(&m))
    }

    /// socket.io-adapter's envelope: `{type, data, uid, nsp}`.
    fn envelope(&self, kind: u64, data: Value, ns: &str) -> Value {
        map(vec![
            ("type", kind.into()),
            ("data", data),
            ("uid", self.uid.as_str().into()),
            ("nsp", ns.into()),
        ])
    }
}

/// A Socket.IO EVENT packet object (`nsp` last, as the classic adapter sets it).
fn packet(data: &EventData, ns: Option<&str>) -> Result<Value, DecodeError> {
    let mut p = vec![
        ("type", 2u64.into()),
        ("data", msgpack::from_json(&data.json, &data.attachments)?),
    ];
    if let Some(ns) = ns {
        p.push(("nsp", ns.into()));
    }
    Ok(map(p))
}

fn flags(volatile: bool, timeout: Option<Duration>) -> Value {
    let mut f = Vec::new();
    if volatile {
        f.push(("volatile", true.into()));
    }
    if let Some(t) = timeout {
        f.push(("timeout", (t.as_millis() as u64).into()));
    }
    map(f)
}

fn opts(t: &Target, flags: Value) -> Value {
    map(vec![
        ("rooms", string_array(&t.rooms)),
        ("except", string_array(&t.except)),
        ("flags", flags),
    ])
}

/// The options of the join/leave/disconnect/fetch requests (the sharded adapter sends its
/// flags, the classic one leaves them out).
fn opts_plain(t: &Target, with_flags: bool) -> Value {
    if with_flags {
        return opts(t, map(Vec::new()));
    }
    map(vec![
        ("rooms", string_array(&t.rooms)),
        ("except", string_array(&t.except)),
    ])
}

fn json(v: &Value) -> Vec<u8> {
    let (mut out, mut att) = (Vec::new(), Vec::new());
    msgpack::to_json(v, &mut out, &mut att);
    out
}

/// The sharded adapter's `encode`: notepack when the message may hold binary and does, else
/// JSON.
fn payload(v: &Value, may_hold_binary: bool) -> Vec<u8> {
    if may_hold_binary && msgpack::has_binary(v) {
        msgpack::encode(v)
    } else {
        json(v)
    }
}
