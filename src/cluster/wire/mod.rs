//! The wire formats of Node's `@socket.io/redis-adapter` 8.x: channels, and the messages of
//! the classic adapter (pub/sub; broadcasts as notepack arrays, requests and responses as JSON
//! or notepack maps) and of the sharded one (SSUBSCRIBE/SPUBLISH; socket.io-adapter's
//! `ClusterAdapter` envelope `{type, data, uid, nsp}`, JSON unless the data holds binary).
//! Sans-IO: bytes in, [`Incoming`] out; operations in, `(channel, payload)` out.
//!
//! Written to the bytes two Node servers exchange (shared/docs/redis-adapter.md, and the
//! sources: redis-adapter `dist/index.js` and `dist/sharded-adapter.js`, socket.io-adapter
//! `dist/cluster-adapter.js`, redis-emitter `dist/index.js`). Choices where Node leaves room:
//! - one uid per node (Node has one per namespace adapter): 6 alphanumerics as `uid2(6)` in
//!   classic mode, 16 hex digits as `randomBytes(8)` in sharded mode; request ids alike;
//! - a ringio node answers on the shared response channel (Node's default,
//!   `publishOnSpecificResponseChannel: false`) and listens on both;
//! - legacy requests without `opts` (sid-based remote join, SOCKETS) are ignored: no 8.x
//!   server sends them.
//!
//! Must not: do IO.

mod encode;
pub mod sockets;
#[cfg(test)]
mod tests;

pub use encode::Publish;

use super::msgpack::{self, get, get_str, get_u64, strings, DecodeError, Value};
use crate::sio::cluster::{EventData, Target};
use std::time::Duration;

/// Classic request and response types (redis-adapter's `RequestType`).
pub(crate) mod classic {
    pub const ALL_ROOMS: u64 = 1;
    pub const REMOTE_JOIN: u64 = 2;
    pub const REMOTE_LEAVE: u64 = 3;
    pub const REMOTE_DISCONNECT: u64 = 4;
    pub const REMOTE_FETCH: u64 = 5;
    pub const SERVER_SIDE_EMIT: u64 = 6;
    pub const BROADCAST: u64 = 7;
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub const BROADCAST_ACK: u64 = 9;
}

/// Sharded message types (socket.io-adapter's `MessageType`).
pub(crate) mod sharded {
    pub const BROADCAST: u64 = 3;
    pub const SOCKETS_JOIN: u64 = 4;
    pub const SOCKETS_LEAVE: u64 = 5;
    pub const DISCONNECT_SOCKETS: u64 = 6;
    pub const FETCH_SOCKETS: u64 = 7;
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    pub const SERVER_SIDE_EMIT: u64 = 9;
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    pub const BROADCAST_ACK: u64 = 12;
}

/// One node's protocol settings.
#[derive(Debug, Clone)]
pub struct Proto {
    /// Channel prefix (Node's `key` / `channelPrefix`, default `socket.io`).
    pub prefix: String,
    /// Sharded pub/sub (Redis 7) instead of the classic protocol.
    pub sharded: bool,
    /// Sharded mode: one channel per public room (Node's default `subscriptionMode:
    /// "dynamic"`); false: everything on the namespace's channel (`"static"`).
    pub dynamic: bool,
    /// This node's uid.
    pub uid: String,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sub {
    /// PSUBSCRIBE.
    Pattern(String),
    /// SUBSCRIBE.
    Channel(String),
    /// SSUBSCRIBE.
    Shard(String),
}

/// A message from another node, decoded.
#[derive(Debug)]
pub enum Incoming {
    /// Emit to the targeted sockets.
    Broadcast {
        target: Target,
        data: EventData,
        volatile: bool,
    },
    /// Emit with acks; answer with a client count then each ack.
    BroadcastAck {
        requester: String,
        request_id: String,
        target: Target,
        data: EventData,
        timeout: Option<Duration>,
    },
    /// `socketsJoin` (`join`) or `socketsLeave`.
    Rooms {
        target: Target,
        rooms: Vec<String>,
        join: bool,
    },
    /// `disconnectSockets`.
    Disconnect { target: Target, close: bool },
    /// `fetchSockets`.
    Fetch {
        requester: String,
        request_id: String,
        target: Target,
    },
    /// `allRooms` (classic only).
    AllRooms { request_id: String, ns: String },
    /// `serverSideEmit`, with an ack when `request_id` is set.
    ServerSideEmit {
        requester: String,
        request_id: Option<String>,
        ns: String,
        data: EventData,
    },
    /// An answer to one of this node's requests.
    Response { request_id: String, body: Response },
    /// Nothing for this node (its own message, a heartbeat, another namespace...).
    Ignore,
}

/// The body of an answer.
#[derive(Debug)]
pub enum Response {
    /// `fetchSockets`: the sockets of one node.
    Sockets(Vec<Value>),
    /// `allRooms`: the rooms of one node.
    Rooms(Vec<String>),
    /// `serverSideEmit`: one node's ack argument.
    ServerSideAck(Value),
    /// A broadcast with acks: how many sockets one node targeted.
    ClientCount(u64),
    /// A broadcast with acks: one client's ack argument.
    Ack(Value),
}

impl Proto {
    /// The namespace's broadcast channel (classic), or its main channel (sharded).
    pub fn channel(&self, ns: &str) -> String {
        format!("{}#{ns}#", self.prefix)
    }
    /// The channel of one room.
    pub fn room_channel(&self, ns: &str, room: &str) -> String {
        format!("{}#{ns}#{room}#", self.prefix)
    }
    /// The request channel (classic).
    pub fn request_channel(&self, ns: &str) -> String {
        format!("{}-request#{ns}#", self.prefix)
    }
    /// The shared response channel (classic).
    pub fn response_channel(&self, ns: &str) -> String {
        format!("{}-response#{ns}#", self.prefix)
    }
    /// The channel where answers to `requester` go.
    pub fn answer_channel(&self, ns: &str, requester: &str) -> String {
        if self.sharded {
            format!("{}#{ns}#{requester}#", self.prefix)
        } else {
            self.response_channel(ns)
        }
    }
    /// What a node subscribes to for a namespace.
    pub fn subscriptions(&self, ns: &str) -> Vec<Sub> {
        if self.sharded {
            vec![
                Sub::Shard(self.channel(ns)),
                Sub::Shard(self.answer_channel(ns, &self.uid)),
            ]
        } else {
            vec![
                Sub::Pattern(format!("{}*", self.channel(ns))),
                Sub::Channel(self.request_channel(ns)),
                Sub::Channel(self.response_channel(ns)),
                Sub::Channel(format!("{}{}#", self.response_channel(ns), self.uid)),
            ]
        }
    }
    /// The channel of a room this node holds, when the mode subscribes per room (sharded,
    /// dynamic: public rooms, and this node's socket ids, which Node's 20-character test does
    /// not take for socket ids).
    pub fn room_subscription(&self, ns: &str, room: &str) -> Option<Sub> {
        (self.sharded && self.dynamic).then(|| Sub::Shard(self.room_channel(ns, room)))
    }
    /// `PUBSUB <sub> <channel>`: how the number of nodes is counted.
    pub fn count_query(&self, ns: &str) -> (&'static str, String) {
        if self.sharded {
            ("SHARDNUMSUB", self.channel(ns))
        } else {
            ("NUMSUB", self.request_channel(ns))
        }
    }

    /// Decodes a message received on `channel`.
    pub fn decode(&self, channel: &str, payload: &[u8]) -> Result<Incoming, DecodeError> {
        if self.sharded {
            return self.decode_sharded(channel, payload);
        }
        let req = format!("{}-request#", self.prefix);
        let resp = format!("{}-response#", self.prefix);
        let bcast = format!("{}#", self.prefix);
        if let Some(rest) = channel.strip_prefix(&req) {
            let ns = rest.strip_suffix('#').unwrap_or(rest);
            self.decode_request(ns, &read(payload)?)
        } else if channel.starts_with(&resp) {
            Ok(decode_response(&read(payload)?))
        } else if let Some(rest) = channel.strip_prefix(&bcast) {
            let ns = rest.split('#').next().unwrap_or("");
            self.decode_classic_broadcast(ns, &msgpack::decode(payload)?)
        } else {
            Ok(Incoming::Ignore)
        }
    }

    fn decode_classic_broadcast(&self, ns: &str, v: &Value) -> Result<Incoming, DecodeError> {
        let Some([uid, packet, opts]) = v.as_array().map(Vec::as_slice) else {
            return Err(DecodeError::Msgpack);
        };
        if uid.as_str() == Some(&self.uid) {
            return Ok(Incoming::Ignore);
        }
        if get_str(packet, "nsp").unwrap_or("/") != ns {
            return Ok(Incoming::Ignore);
        }
        let volatile = get(opts, "flags").and_then(|f| get(f, "volatile")) == Some(&true.into());
        Ok(Incoming::Broadcast {
            target: target(ns, opts),
            data: event(get(packet, "data"))?,
            volatile,
        })
    }

    fn decode_request(&self, ns: &str, r: &Value) -> Result<Incoming, DecodeError> {
        let uid = get_str(r, "uid").unwrap_or("").to_string();
        let own = uid == self.uid;
        let request_id = get_str(r, "requestId").map(str::to_string);
        let opts = get(r, "opts");
        Ok(match (get_u64(r, "type"), opts) {
            (Some(t @ (classic::REMOTE_JOIN | classic::REMOTE_LEAVE)), Some(o)) if !own => {
                Incoming::Rooms {
                    target: target(ns, o),
                    rooms: strings(get(r, "rooms")),
                    join: t == classic::REMOTE_JOIN,
                }
            }
            (Some(classic::REMOTE_DISCONNECT), Some(o)) if !own => Incoming::Disconnect {
                target: target(ns, o),
                close: get(r, "close") == Some(&true.into()),
            },
            (Some(classic::REMOTE_FETCH), Some(o)) if !own => Incoming::Fetch {
                requester: uid,
                request_id: request_id.ok_or(DecodeError::Json)?,
                target: target(ns, o),
            },
            (Some(classic::ALL_ROOMS), _) if !own => Incoming::AllRooms {
                request_id: request_id.ok_or(DecodeError::Json)?,
                ns: ns.into(),
            },
            (Some(classic::SERVER_SIDE_EMIT), _) if !own => Incoming::ServerSideEmit {
                requester: uid,
                request_id,
                ns: ns.into(),
                data: event(get(r, "data"))?,
            },
            (Some(classic::BROADCAST), Some(o)) if !own => Incoming::BroadcastAck {
                requester: uid,
                request_id: request_id.ok_or(DecodeError::Msgpack)?,
                target: target(ns, o),
                data: event(get(r, "packet").and_then(|p| get(p, "data")))?,
                timeout: timeout_of(o),
            },
            _ => Incoming::Ignore,
        })
    }

    fn decode_sharded(&self, channel: &str, payload: &[u8]) -> Result<Incoming, DecodeError> {
        let m = read(payload)?;
        let uid = get_str(&m, "uid").unwrap_or("").to_string();
        if uid == self.uid {
            return Ok(Incoming::Ignore);
        }
        let ns = get_str(&m, "nsp").unwrap_or("/").to_string();
        let empty = Value::Map(Vec::new());
        let d = get(&m, "data").unwrap_or(&empty);
        let request_id = get_str(d, "requestId").map(str::to_string);
        let opts = get(d, "opts").unwrap_or(&empty);
        let response = |body| match &request_id {
            Some(id) => Incoming::Response {
                request_id: id.clone(),
                body,
            },
            None => Incoming::Ignore,
        };
        let _ = channel;
        Ok(match get_u64(&m, "type") {
            Some(sharded::BROADCAST) => {
                let data = event(get(d, "packet").and_then(|p| get(p, "data")))?;
                match request_id {
                    Some(request_id) => Incoming::BroadcastAck {
                        requester: uid,
                        request_id,
                        target: target(&ns, opts),
                        data,
                        timeout: timeout_of(opts),
                    },
                    None => Incoming::Broadcast {
                        target: target(&ns, opts),
                        data,
                        volatile: get(opts, "flags").and_then(|f| get(f, "volatile"))
                            == Some(&true.into()),
                    },
                }
            }
            Some(t @ (sharded::SOCKETS_JOIN | sharded::SOCKETS_LEAVE)) => Incoming::Rooms {
                target: target(&ns, opts),
                rooms: strings(get(d, "rooms")),
                join: t == sharded::SOCKETS_JOIN,
            },
            Some(sharded::DISCONNECT_SOCKETS) => Incoming::Disconnect {
                target: target(&ns, opts),
                close: get(d, "close") == Some(&true.into()),
            },
            Some(sharded::FETCH_SOCKETS) => Incoming::Fetch {
                requester: uid,
                request_id: request_id.ok_or(DecodeError::Json)?,
                target: target(&ns, opts),
            },
            Some(sharded::SERVER_SIDE_EMIT) => Incoming::ServerSideEmit {
                requester: uid,
                request_id,
                ns,
                data: event(get(d, "packet"))?,
            },
            Some(sharded::FETCH_SOCKETS_RESPONSE) => {
                response(Response::Sockets(array(d, "sockets")))
            }
            Some(sharded::SERVER_SIDE_EMIT_RESPONSE) => response(Response::ServerSideAck(
                get(d, "packet").cloned().unwrap_or(Value::Nil),
            )),
            Some(sharded::BROADCAST_CLIENT_COUNT) => response(Response::ClientCount(
                get_u64(d, "clientCount").unwrap_or(0),
            )),
            Some(sharded::BROADCAST_ACK) => response(Response::Ack(
                get(d, "packet").cloned().unwrap_or(Value::Nil),
            )),
            _ => Incoming::Ignore,
        })
    }
}

/// A payload that is JSON when it starts with `{`, else notepack (as Node reads them).
fn read(payload: &[u8]) -> Result<Value, DecodeError> {
    if payload.first() == Some(&b'{') {
        msgpack::from_json(payload, &[])
    } else {
        msgpack::decode(payload)
    }
}

/// A classic response (its type, or the field it carries, tells which).
fn decode_response(r: &Value) -> Incoming {
    let Some(request_id) = get_str(r, "requestId").map(str::to_string) else {
        return Incoming::Ignore;
    };
    let body = match get_u64(r, "type") {
        Some(classic::SERVER_SIDE_EMIT) => {
            Response::ServerSideAck(get(r, "data").cloned().unwrap_or(Value::Nil))
        }
        Some(classic::BROADCAST_CLIENT_COUNT) => {
            Response::ClientCount(get_u64(r, "clientCount").unwrap_or(0))
        }
        Some(classic::BROADCAST_ACK) => {
            Response::Ack(get(r, "packet").cloned().unwrap_or(Value::Nil))
        }
        _ if get(r, "sockets").is_some() => Response::Sockets(array(r, "sockets")),
        _ if get(r, "rooms").is_some() => Response::Rooms(strings(get(r, "rooms"))),
        _ => return Incoming::Ignore,
    };
    Incoming::Response { request_id, body }
}

fn array(v: &Value, key: &str) -> Vec<Value> {
    match get(v, key) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

fn target(ns: &str, opts: &Value) -> Target {
    Target {
        ns: ns.into(),
        rooms: strings(get(opts, "rooms")),
        except: strings(get(opts, "except")),
    }
}

fn timeout_of(opts: &Value) -> Option<Duration> {
    let flags = get(opts, "flags")?;
    get_u64(flags, "timeout").map(Duration::from_millis)
}

/// An event's data array (`["event", args...]`) as JSON with placeholders.
fn event(data: Option<&Value>) -> Result<EventData, DecodeError> {
    match data {
        Some(v @ Value::Array(a)) if !a.is_empty() => {
            let (json, attachments) = msgpack::to_json_bytes(v);
            Ok(EventData { json, attachments })
        }
        _ => Err(DecodeError::Msgpack),
    }
}

/// Random alphanumerics (Node's `uid2`) or hex digits (`randomBytes(n/2).toString("hex")`).
pub fn random_id(len: usize, hex: bool) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rnd = vec![0u8; len];
    let _ = getrandom::fill(&mut rnd);
    rnd.iter()
        .map(|b| {
            if hex {
                char::from(b"0123456789abcdef"[(*b & 15) as usize])
            } else {
                char::from(ALNUM[*b as usize % ALNUM.len()])
            }
        })
        .collect()
}
