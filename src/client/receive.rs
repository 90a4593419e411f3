//! What a socket receives: the CONNECT reply, events (with [`ClientAck`] for the server's
//! acks), acks of its own emits, the server's DISCONNECT and CONNECT_ERROR.
//!
//! Owns: routing a decoded Socket.IO packet of this namespace to handlers or to the pending
//! ack, holding events that arrive before the CONNECT reply, flushing the send buffer on
//! connect, and answering the server's acks (once).
//!
//! Must not: decode Engine.IO or reassemble binary packets (the manager hands complete packets
//! over with their attachments).

use super::socket::ClientSocket;
use crate::proto::sio::args::{to_writer, IntoArgs, RawArgs};
use crate::proto::sio::encode_packet;
use crate::proto::sio::{self, Kind};
use bytes::Bytes;
use sonic_rs::JsonValueTrait;
use std::cell::Cell;
use std::rc::Rc;

/// Answers an event the server emitted with an ack. Sending twice, or when the server asked for
/// no ack, does nothing.
#[derive(Clone)]
pub struct ClientAck(Option<Rc<AckInner>>);

struct AckInner {
    socket: ClientSocket,
    id: u64,
    sent: Cell<bool>,
}

impl ClientAck {
    /// True when the server waits for an ack.
    pub fn expected(&self) -> bool {
        self.0.is_some()
    }

    /// Sends the ack with these arguments (`43<id>[...]`, or `46` with binary).
    pub fn send(self, args: impl IntoArgs) {
        let Some(a) = self.0 else { return };
        if a.sent.replace(true) {
            return;
        }
        let (text, att) = encode_packet(a.socket.nsp(), None, Some(a.id), to_writer(args), true);
        a.socket.0.mgr.write(super::socket::packets(text, att));
    }
}

impl ClientSocket {
    pub(super) fn on_connected(&self, sid: String) {
        let (received, buffered) = {
            let mut st = self.0.st.borrow_mut();
            st.id = Some(sid);
            st.connected = true;
            (
                std::mem::take(&mut st.receive_buffer),
                std::mem::take(&mut st.send_buffer),
            )
        };
        for (event, args, id) in received {
            self.dispatch(&event, args, id);
        }
        for b in buffered {
            self.0.mgr.write(b.packets);
        }
        self.drain_queue(true);
        for f in self.0.on_connect.snapshot() {
            f();
        }
    }

    fn dispatch(&self, event: &str, args: RawArgs, id: Option<u64>) {
        let handlers = self.0.handlers.borrow().get(event).cloned();
        let ack = ClientAck(id.map(|id| {
            Rc::new(AckInner {
                socket: self.clone(),
                id,
                sent: Cell::new(false),
            })
        }));
        match handlers {
            Some(hs) => {
                for h in hs {
                    h(args.clone(), ack.clone());
                }
            }
            None => tracing::debug!(event, nsp = %self.0.nsp, "no handler"),
        }
    }

    /// A complete Socket.IO packet for this namespace.
    pub(crate) fn on_packet(&self, p: sio::Packet, attachments: Vec<Bytes>) {
        match p.kind {
            Kind::Connect => {
                let sid = sonic_rs::get_from_slice(&p.data, ["sid"])
                    .ok()
                    .and_then(|v| sonic_rs::from_str::<String>(v.as_raw_str()).ok());
                match sid {
                    Some(sid) => self.on_connected(sid),
                    None => self.connect_error(
                        "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x \
                         client, but they are not compatible (more information here: \
                         https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)",
                        None,
                    ),
                }
            }
            Kind::Event | Kind::BinaryEvent => {
                let Ok((name, ranges)) = sio::event_name(&p.data) else {
                    return;
                };
                let raw = &p.data[name.start as usize..name.end as usize];
                let event = if raw.first() == Some(&b'"') {
                    sonic_rs::from_slice::<String>(raw).unwrap_or_default()
                } else {
                    String::from_utf8_lossy(raw).into_owned()
                };
                let args = RawArgs::new(p.data.clone(), ranges, attachments);
                if self.connected() {
                    self.dispatch(&event, args, p.id);
                } else {
                    self.0
                        .st
                        .borrow_mut()
                        .receive_buffer
                        .push((event, args, p.id));
                }
            }
            Kind::Ack | Kind::BinaryAck => {
                let (Some(id), Ok(ranges)) = (p.id, sio::split_array(&p.data)) else {
                    return;
                };
                let ack = self.0.st.borrow_mut().acks.remove(&id);
                if let Some(a) = ack {
                    (a.cb)(Ok(RawArgs::new(p.data.clone(), ranges, attachments)));
                }
            }
            Kind::Disconnect => {
                self.destroy();
                self.on_close("io server disconnect");
            }
            Kind::ConnectError => {
                self.destroy();
                let v: Option<sonic_rs::Value> = sonic_rs::from_slice(&p.data).ok();
                let (msg, data) = match &v {
                    Some(v) if v.is_str() => (v.as_str().unwrap_or("").to_string(), None),
                    Some(v) => (
                        v.get("message")
                            .and_then(|m| m.as_str())
                            .unwrap_or("")
                            .to_string(),
                        v.get("data"),
                    ),
                    None => (String::new(), None),
                };
                self.connect_error(&msg, data);
            }
        }
    }
}
