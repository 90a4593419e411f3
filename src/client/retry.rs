//! The at-least-once retry queue of a socket (socket.io-client's `retries` option).
//!
//! With `retries(n)`, every non-volatile emit is queued and sent with an ack request, one at a
//! time in order: the next one goes when the server acked the current one. An attempt that
//! fails (ack timeout, or disconnection while a timeout is set) is sent again, with a fresh ack
//! id, until it has been tried `n + 1` times; then its caller gets the error and the queue moves
//! on. On every CONNECT the head of the queue is sent again if it was in flight, so an attempt
//! lost with the connection is repeated. The server may therefore see an event more than once.
//!
//! Must not: encode or buffer packets itself (it emits through the socket's normal path).

use super::socket::{AckFn, ClientSocket, PendingAck};
use crate::proto::sio::args::{ArgWriter, RawArgs};
use crate::proto::sio::AckError;
use std::rc::Rc;
use std::time::Duration;

/// One queued emit.
pub(crate) struct Queued {
    seq: u64,
    tries: u32,
    pending: bool,
    event: String,
    args: ArgWriter,
    timeout: Option<Duration>,
    done: Option<AckFn>,
}

impl ClientSocket {
    /// Queues an emit; `timeout` bounds each attempt, `done` receives the outcome.
    pub(crate) fn enqueue(
        &self,
        event: &str,
        args: ArgWriter,
        timeout: Option<Duration>,
        done: Option<AckFn>,
    ) {
        {
            let mut st = self.0.st.borrow_mut();
            let seq = st.queue_seq;
            st.queue_seq += 1;
            st.queue.push_back(Queued {
                seq,
                tries: 0,
                pending: false,
                event: event.to_string(),
                args,
                timeout,
                done,
            });
        }
        self.drain_queue(false);
    }

    /// Sends the head of the queue when connected and not already in flight (`force`: even
    /// then, after a reconnection).
    pub(crate) fn drain_queue(&self, force: bool) {
        let (seq, event, args, timeout) = {
            let mut st = self.0.st.borrow_mut();
            if !st.connected {
                return;
            }
            let Some(head) = st.queue.front_mut() else {
                return;
            };
            if head.pending && !force {
                return;
            }
            head.pending = true;
            head.tries += 1;
            (
                head.seq,
                head.event.clone(),
                head.args.clone(),
                head.timeout,
            )
        };
        let weak = Rc::downgrade(&self.0);
        let cb: AckFn = Box::new(move |r| {
            if let Some(s) = weak.upgrade() {
                ClientSocket(s).on_queue_ack(seq, r);
            }
        });
        let ack = PendingAck {
            cb,
            with_error: timeout.is_some(),
            timeout,
        };
        self.send_event(&event, args, Some(ack), false);
    }

    fn on_queue_ack(&self, seq: u64, r: Result<RawArgs, AckError>) {
        let retries = self.0.mgr.cfg.retries;
        let done = {
            let mut st = self.0.st.borrow_mut();
            let Some(head) = st.queue.front_mut() else {
                return;
            };
            if head.seq != seq {
                return;
            }
            head.pending = false;
            let finished = r.is_ok() || head.tries > retries;
            if finished {
                st.queue.pop_front().map(|q| q.done)
            } else {
                None
            }
        };
        if let Some(Some(f)) = done {
            f(r);
        }
        self.drain_queue(false);
    }
}
