//! The listeners of a socket, with Node's EventEmitter semantics, and the way an incoming event
//! reaches them.
//!
//! An event goes: catch-all listeners (`on_any`, at once, as Node does) -> packet middlewares
//! (`use_middleware` / `use_async`, in order; an error drops the packet and goes to the
//! socket's error listeners) -> every listener of the event in order: the namespace's (set up
//! for every socket) then the socket's own (`on`, `once`). Several listeners of one event share
//! one ack: the first answer goes out. A socket's events still reach listeners in arrival
//! order when middlewares or listeners are async: later events queue until the earlier one is
//! done.
//!
//! Must not: touch transports or other shards.

use super::ack::AckSender;
use super::ns::{async_handler, sync_handler, ErasedHandler, LocalFuture};
use super::socket::Socket;
use super::DisconnectReason;
use crate::proto::sio::args::{FromArgs, RawArgs};
use std::future::Future;
use std::rc::Rc;

/// Names a listener, to remove it later ([`Socket::off`], [`Socket::off_any`], ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// A packet refused by a packet middleware; it reaches the socket's error listeners
/// ([`Socket::on_error`]), as Node's `socket.on("error")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketError {
    /// The error's message.
    pub message: String,
}

impl PacketError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> PacketError {
        PacketError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for PacketError {}

type AnyFn = Rc<dyn Fn(&Socket, &str, &RawArgs)>;
type ErrorFn = Rc<dyn Fn(&Socket, &PacketError)>;
type SyncMiddleware = Rc<dyn Fn(&Socket, &str, &RawArgs) -> Result<(), PacketError>>;
type AsyncMiddleware =
    Rc<dyn Fn(Socket, Rc<str>, RawArgs) -> std::pin::Pin<Box<dyn Future<Output = MwResult>>>>;
type MwResult = Result<(), PacketError>;
pub(crate) type DisconnectFn = Box<dyn FnOnce(Socket, DisconnectReason)>;

/// A packet middleware (Node's `socket.use`).
#[derive(Clone)]
pub(crate) enum PacketMiddleware {
    Sync(SyncMiddleware),
    Async(AsyncMiddleware),
}

struct Listener {
    id: u64,
    event: Rc<str>,
    handler: Rc<dyn ErasedHandler>,
    once: bool,
}

/// Which of the namespace's listeners a socket removed.
#[derive(Default)]
enum Muted {
    #[default]
    None,
    Events(Vec<Rc<str>>),
    All,
}

impl Muted {
    fn has(&self, event: &str) -> bool {
        match self {
            Muted::None => false,
            Muted::Events(v) => v.iter().any(|e| &**e == event),
            Muted::All => true,
        }
    }
}

/// A socket's own listeners (kept in its rarely used part, created on first use).
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: u64,
    on: Vec<Listener>,
    muted: Muted,
    any: Vec<(u64, AnyFn)>,
    any_out: Vec<(u64, AnyFn)>,
    middlewares: Vec<PacketMiddleware>,
    errors: Vec<(u64, ErrorFn)>,
    pub(crate) on_disconnecting: Vec<DisconnectFn>,
    pub(crate) on_disconnect: Vec<DisconnectFn>,
}

impl Listeners {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Keeps the listeners whose id is not `id` (all of them go with `None`).
fn remove_id<T>(v: &mut Vec<(u64, T)>, id: Option<ListenerId>) -> bool {
    let before = v.len();
    match id {
        Some(ListenerId(id)) => v.retain(|(i, _)| *i != id),
        None => v.clear(),
    }
    v.len() != before
}

impl Socket {
    fn add_listener(&self, event: &str, handler: Rc<dyn ErasedHandler>, once: bool) -> ListenerId {
        let mut ext = self.ext();
        let l = &mut ext.listeners;
        let id = l.next();
        l.on.push(Listener {
            id,
            event: event.into(),
            handler,
            once,
        });
        ListenerId(id)
    }

    /// Adds a listener of `event` for this socket (after the namespace's listeners and the
    /// ones added before). `A` is what the arguments deserialize into.
    pub fn on<A: FromArgs + 'static>(
        &self,
        event: &str,
        f: impl Fn(Socket, A, AckSender) + 'static,
    ) -> ListenerId {
        self.add_listener(event, sync_handler(f), false)
    }

    /// Adds an async listener: the socket's next event waits until its future is done.
    pub fn on_async<A, Fut>(
        &self,
        event: &str,
        f: impl Fn(Socket, A, AckSender) -> Fut + 'static,
    ) -> ListenerId
    where
        A: FromArgs + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.add_listener(event, async_handler(f), false)
    }

    /// A listener removed after its first call.
    pub fn once<A: FromArgs + 'static>(
        &self,
        event: &str,
        f: impl Fn(Socket, A, AckSender) + 'static,
    ) -> ListenerId {
        self.add_listener(event, sync_handler(f), true)
    }

    /// Removes one listener of `event`; false when it was not there.
    pub fn off(&self, event: &str, id: ListenerId) -> bool {
        let mut ext = self.ext();
        let on = &mut ext.listeners.on;
        let before = on.len();
        on.retain(|l| !(l.id == id.0 && &*l.event == event));
        on.len() != before
    }

    /// Removes every listener of `event` (the namespace's ones too, for this socket), or of
    /// every event with `None` (Node's `removeAllListeners`; `disconnect`, `disconnecting` and
    /// `error` are events too; catch-all listeners stay).
    pub fn remove_all_listeners(&self, event: Option<&str>) {
        let mut ext = self.ext();
        let l = &mut ext.listeners;
        match event {
            None => {
                l.on.clear();
                l.muted = Muted::All;
                l.errors.clear();
                l.on_disconnect.clear();
                l.on_disconnecting.clear();
            }
            Some("error") => l.errors.clear(),
            Some("disconnect") => l.on_disconnect.clear(),
            Some("disconnecting") => l.on_disconnecting.clear(),
            Some(ev) => {
                l.on.retain(|x| &*x.event != ev);
                match &mut l.muted {
                    Muted::All => {}
                    Muted::Events(v) => v.push(ev.into()),
                    m @ Muted::None => *m = Muted::Events(vec![ev.into()]),
                }
            }
        }
    }

    /// How many listeners `event` has on this socket (the namespace's included).
    pub fn listener_count(&self, event: &str) -> usize {
        let ext = self.0.ext.borrow();
        let l = ext.as_ref().map(|e| &e.listeners);
        let shared = if l.is_some_and(|l| l.muted.has(event)) {
            0
        } else {
            self.0.ns.def.handlers.get(event).map_or(0, Vec::len)
        };
        shared + l.map_or(0, |l| l.on.iter().filter(|x| &*x.event == event).count())
    }

    /// A catch-all listener of incoming events (called before the packet middlewares).
    pub fn on_any(&self, f: impl Fn(&Socket, &str, &RawArgs) + 'static) -> ListenerId {
        let mut ext = self.ext();
        let id = ext.listeners.next();
        ext.listeners.any.push((id, Rc::new(f)));
        ListenerId(id)
    }

    /// A catch-all listener called before the others.
    pub fn prepend_any(&self, f: impl Fn(&Socket, &str, &RawArgs) + 'static) -> ListenerId {
        let mut ext = self.ext();
        let id = ext.listeners.next();
        ext.listeners.any.insert(0, (id, Rc::new(f)));
        ListenerId(id)
    }

    /// Removes one catch-all listener, or all of them with `None`.
    pub fn off_any(&self, id: Option<ListenerId>) -> bool {
        remove_id(&mut self.ext().listeners.any, id)
    }

    /// A catch-all listener of the events this socket emits to its client
    /// ([`Socket::emit`], [`Socket::emit_with_ack`]; not broadcasts or acks, as Node).
    pub fn on_any_outgoing(&self, f: impl Fn(&Socket, &str, &RawArgs) + 'static) -> ListenerId {
        let mut ext = self.ext();
        let id = ext.listeners.next();
        ext.listeners.any_out.push((id, Rc::new(f)));
        ListenerId(id)
    }

    /// An outgoing catch-all listener called before the others.
    pub fn prepend_any_outgoing(
        &self,
        f: impl Fn(&Socket, &str, &RawArgs) + 'static,
    ) -> ListenerId {
        let mut ext = self.ext();
        let id = ext.listeners.next();
        ext.listeners.any_out.insert(0, (id, Rc::new(f)));
        ListenerId(id)
    }

    /// Removes one outgoing catch-all listener, or all of them with `None`.
    pub fn off_any_outgoing(&self, id: Option<ListenerId>) -> bool {
        remove_id(&mut self.ext().listeners.any_out, id)
    }

    /// A packet middleware (Node's `socket.use`): runs for every incoming event before its
    /// listeners; an `Err` drops the event and reaches [`Socket::on_error`] listeners.
    pub fn use_middleware(
        &self,
        f: impl Fn(&Socket, &str, &RawArgs) -> Result<(), PacketError> + 'static,
    ) {
        let mw = PacketMiddleware::Sync(Rc::new(f));
        self.ext().listeners.middlewares.push(mw);
    }

    /// An async packet middleware; later events wait for it.
    pub fn use_async<Fut>(&self, f: impl Fn(Socket, Rc<str>, RawArgs) -> Fut + 'static)
    where
        Fut: Future<Output = Result<(), PacketError>> + 'static,
    {
        let f = move |s, e, a| -> std::pin::Pin<Box<dyn Future<Output = MwResult>>> {
            Box::pin(f(s, e, a))
        };
        let mw = PacketMiddleware::Async(Rc::new(f));
        self.ext().listeners.middlewares.push(mw);
    }

    /// Listens to the socket's `error` event (a packet a middleware refused).
    pub fn on_error(&self, f: impl Fn(&Socket, &PacketError) + 'static) -> ListenerId {
        let mut ext = self.ext();
        let id = ext.listeners.next();
        ext.listeners.errors.push((id, Rc::new(f)));
        ListenerId(id)
    }

    /// Runs `f` once when the socket is about to disconnect, while its rooms are still
    /// readable (Node's `disconnecting`).
    pub fn on_disconnecting(&self, f: impl FnOnce(Socket, DisconnectReason) + 'static) {
        self.ext().listeners.on_disconnecting.push(Box::new(f));
    }

    /// Runs `f` once when the socket has disconnected, with the reason (Node's `disconnect`:
    /// it has left its rooms by then).
    pub fn on_disconnect(&self, f: impl FnOnce(Socket, DisconnectReason) + 'static) {
        self.ext().listeners.on_disconnect.push(Box::new(f));
    }

    fn raise_error(&self, e: &PacketError) {
        let fns: Vec<ErrorFn> =
            self.with_listeners(|l| l.errors.iter().map(|x| x.1.clone()).collect());
        if fns.is_empty() {
            tracing::debug!(socket = self.id(), error = %e, "packet refused (no error listener)");
        }
        for f in fns {
            f(self, e);
        }
    }

    fn with_listeners<R: Default>(&self, f: impl FnOnce(&Listeners) -> R) -> R {
        self.0
            .ext
            .borrow()
            .as_ref()
            .map_or_else(R::default, |e| f(&e.listeners))
    }

    fn notify(&self, fns: Vec<AnyFn>, event: &str, args: &RawArgs) {
        for f in fns {
            f(self, event, args);
        }
    }

    /// True when outgoing catch-all listeners exist (only then are emitted arguments re-read).
    pub(crate) fn has_outgoing_listeners(&self) -> bool {
        self.with_listeners(|l| !l.any_out.is_empty())
    }

    /// Calls the outgoing catch-all listeners.
    pub(crate) fn notify_outgoing(&self, event: &str, args: RawArgs) {
        let fns: Vec<AnyFn> =
            self.with_listeners(|l| l.any_out.iter().map(|x| x.1.clone()).collect());
        self.notify(fns, event, &args);
    }

    /// An incoming event: catch-all listeners at once, then middlewares and listeners in
    /// arrival order.
    pub(crate) fn on_event(&self, event: &str, args: RawArgs, id: Option<u64>) {
        let any: Vec<AnyFn> = self.with_listeners(|l| l.any.iter().map(|x| x.1.clone()).collect());
        if !any.is_empty() {
            self.notify(any, event, &args);
        }
        if self.0.busy.get() {
            self.0
                .queue
                .borrow_mut()
                .push_back((event.into(), args, id));
            return;
        }
        if let Some(fut) = self.process(event, args, id) {
            self.0.busy.set(true);
            monoio::spawn(self.clone().drain(fut));
        }
    }

    /// Runs what is queued behind an async middleware or listener, in order.
    async fn drain(self, first: LocalFuture) {
        first.await;
        loop {
            let next = self.0.queue.borrow_mut().pop_front();
            let Some((event, args, id)) = next else { break };
            if let Some(fut) = self.process(&event, args, id) {
                fut.await;
            }
        }
        self.0.busy.set(false);
    }

    /// Middlewares then listeners of one event; a future when something on the way is async.
    fn process(&self, event: &str, args: RawArgs, id: Option<u64>) -> Option<LocalFuture> {
        let mws: Vec<PacketMiddleware> = self.with_listeners(|l| l.middlewares.clone());
        for (i, mw) in mws.iter().enumerate() {
            match mw {
                PacketMiddleware::Sync(f) => {
                    if let Err(e) = f(self, event, &args) {
                        self.raise_error(&e);
                        return None;
                    }
                }
                PacketMiddleware::Async(_) => {
                    let (me, ev, rest) = (self.clone(), Rc::<str>::from(event), mws[i..].to_vec());
                    return Some(Box::pin(async move {
                        if me.run_async_middlewares(&ev, &args, &rest).await {
                            if let Some(f) = me.call_listeners(&ev, args, id) {
                                f.await;
                            }
                        }
                    }));
                }
            }
        }
        self.call_listeners(event, args, id)
    }

    /// Runs middlewares from the first async one on; false when one refused the event.
    async fn run_async_middlewares(
        &self,
        event: &Rc<str>,
        args: &RawArgs,
        mws: &[PacketMiddleware],
    ) -> bool {
        for mw in mws {
            let r = match mw {
                PacketMiddleware::Sync(f) => f(self, event, args),
                PacketMiddleware::Async(f) => f(self.clone(), event.clone(), args.clone()).await,
            };
            if let Err(e) = r {
                self.raise_error(&e);
                return false;
            }
        }
        true
    }

    /// The listeners of `event`, in order: the namespace's (unless this socket removed them),
    /// then its own (`once` ones are taken out as they are called).
    fn listeners_of(&self, event: &str) -> Vec<Rc<dyn ErasedHandler>> {
        let mut ext = self.0.ext.borrow_mut();
        let l = ext.as_mut().map(|e| &mut e.listeners);
        let muted = l.as_ref().is_some_and(|l| l.muted.has(event));
        let mut v: Vec<Rc<dyn ErasedHandler>> = if muted {
            Vec::new()
        } else {
            self.0
                .ns
                .def
                .handlers
                .get(event)
                .cloned()
                .unwrap_or_default()
        };
        if let Some(l) = l {
            v.extend(
                l.on.iter()
                    .filter(|x| &*x.event == event)
                    .map(|x| x.handler.clone()),
            );
            l.on.retain(|x| !(x.once && &*x.event == event));
        }
        v
    }

    /// Calls every listener of `event`; a future when one of them is async (the ones after it
    /// run once it is done).
    fn call_listeners(&self, event: &str, args: RawArgs, id: Option<u64>) -> Option<LocalFuture> {
        if !self.connected() {
            return None;
        }
        let handlers = self.listeners_of(event);
        let ack = AckSender::new(self, id);
        match handlers.len() {
            0 => {
                tracing::trace!(event, "no listener");
                None
            }
            1 => handlers[0].call(self.clone(), args, ack),
            _ => {
                let ack = ack.shared();
                for (i, h) in handlers.iter().enumerate() {
                    if let Some(fut) = h.call(self.clone(), args.clone(), ack.clone()) {
                        let (me, rest) = (self.clone(), handlers[i + 1..].to_vec());
                        return Some(Box::pin(async move {
                            fut.await;
                            for h in rest {
                                if let Some(f) = h.call(me.clone(), args.clone(), ack.clone()) {
                                    f.await;
                                }
                            }
                        }));
                    }
                }
                None
            }
        }
    }
}
