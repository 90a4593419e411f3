//! Namespaces: handler tables built once per shard, connect middleware, local socket index.
//!
//! The setup closure given to [`crate::ServerBuilder::ns`] runs once on every shard and fills a
//! [`Namespace`]; sockets then share its handler table (no per-socket handler allocation unless
//! [`crate::Socket::on`] is used).
//!
//! Must not: touch sessions or transports.

use super::ack::AckSender;
use super::socket::Socket;
use crate::proto::sio::args::{to_writer, FromArgs, IntoArgs, RawArgs};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// A boxed local future (handlers run on their shard's thread).
pub type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A type-erased event handler.
pub(crate) trait ErasedHandler {
    fn call(&self, socket: Socket, args: RawArgs, ack: AckSender) -> Option<LocalFuture>;
}

struct SyncHandler<F, A>(F, std::marker::PhantomData<fn(A)>);
impl<F, A> ErasedHandler for SyncHandler<F, A>
where
    F: Fn(Socket, A, AckSender),
    A: FromArgs,
{
    fn call(&self, socket: Socket, args: RawArgs, ack: AckSender) -> Option<LocalFuture> {
        match A::from_args(args) {
            Ok(a) => (self.0)(socket, a, ack),
            Err(e) => tracing::debug!("event dropped: {e}"),
        }
        None
    }
}

struct AsyncHandler<F, A>(F, std::marker::PhantomData<fn(A)>);
impl<F, A, Fut> ErasedHandler for AsyncHandler<F, A>
where
    F: Fn(Socket, A, AckSender) -> Fut,
    Fut: Future<Output = ()> + 'static,
    A: FromArgs,
{
    fn call(&self, socket: Socket, args: RawArgs, ack: AckSender) -> Option<LocalFuture> {
        match A::from_args(args) {
            Ok(a) => Some(Box::pin((self.0)(socket, a, ack))),
            Err(e) => {
                tracing::debug!("event dropped: {e}");
                None
            }
        }
    }
}

pub(crate) fn sync_handler<F, A>(f: F) -> Rc<dyn ErasedHandler>
where
    F: Fn(Socket, A, AckSender) + 'static,
    A: FromArgs + 'static,
{
    Rc::new(SyncHandler(f, std::marker::PhantomData))
}

pub(crate) fn async_handler<F, A, Fut>(f: F) -> Rc<dyn ErasedHandler>
where
    F: Fn(Socket, A, AckSender) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
    A: FromArgs + 'static,
{
    Rc::new(AsyncHandler(f, std::marker::PhantomData))
}

/// The error a connect middleware returns: the client gets CONNECT_ERROR `{message, data}`.
#[derive(Debug, Clone)]
pub struct ConnectError {
    /// `message` of the CONNECT_ERROR.
    pub message: String,
    /// Optional `data`, as raw JSON.
    pub data: Option<String>,
}

impl ConnectError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }
    /// Adds `data` (serialized to JSON).
    pub fn with_data<T: serde::Serialize>(mut self, data: &T) -> Self {
        self.data = sonic_rs::to_string(data).ok();
        self
    }
}

/// Room lifecycle events of a namespace (Node's adapter events), fired on the shard where
/// the change happened: a room is created or deleted per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomEvent {
    /// `create-room`: the first member joined (on this shard).
    CreateRoom,
    /// `delete-room`: the last member left (on this shard).
    DeleteRoom,
    /// `join-room`: a socket joined.
    JoinRoom,
    /// `leave-room`: a socket left.
    LeaveRoom,
}

impl RoomEvent {
    /// Node's event name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomEvent::CreateRoom => "create-room",
            RoomEvent::DeleteRoom => "delete-room",
            RoomEvent::JoinRoom => "join-room",
            RoomEvent::LeaveRoom => "leave-room",
        }
    }
}

type RoomListener = Rc<dyn Fn(RoomEvent, &str, &str)>;
type ServerSideFn = Rc<dyn Fn(RawArgs, ServerAck)>;

/// Answers a `server_side_emit` with ack from another node: only the first answer of a node
/// goes out, and only its first argument (as Node's callback).
#[derive(Clone, Default)]
pub struct ServerAck(Option<Rc<AckCell>>);

/// The answer callback, taken by the first answer.
type AckCell = Cell<Option<Box<dyn FnOnce(RawArgs)>>>;

impl ServerAck {
    /// True when the emitting node waits for an answer.
    pub fn expected(&self) -> bool {
        self.0.as_ref().is_some_and(|c| {
            let f = c.take();
            let some = f.is_some();
            c.set(f);
            some
        })
    }
    /// Sends the answer (its first argument) back to the emitting node.
    pub fn send(&self, args: impl IntoArgs) {
        if let Some(f) = self.0.as_ref().and_then(|c| c.take()) {
            let w = to_writer(args);
            f(RawArgs::from_array_items(w.json.freeze(), w.attachments));
        }
    }
}
type ConnectFn = Rc<dyn Fn(Socket)>;
type ConnectResult = Result<(), ConnectError>;
type ConnectFuture = Pin<Box<dyn Future<Output = ConnectResult>>>;

/// A connect middleware (Node's `namespace.use`).
#[derive(Clone)]
pub(crate) enum ConnectMiddleware {
    Sync(Rc<dyn Fn(&Socket) -> ConnectResult>),
    Async(Rc<dyn Fn(Socket) -> ConnectFuture>),
}

/// A namespace's handlers on one shard, filled by the setup closure.
///
/// ```no_run
/// # use ringio::{Server, Socket, AckSender};
/// Server::builder().ns("/chat", |ns| {
///     ns.use_middleware(|socket| {
///         let token: Option<String> = socket.auth_field("token");
///         if token.as_deref() == Some("secret") { Ok(()) } else { Err(ringio::ConnectError::new("not authorized")) }
///     });
///     ns.on_connect(|socket| {
///         socket.emit("hello", ("world",));
///     });
///     ns.on("msg", |socket: Socket, (text,): (String,), ack: AckSender| {
///         socket.broadcast().emit("msg", (text,));
///         ack.send(("ok",));
///     });
/// });
/// ```
#[derive(Default)]
pub struct Namespace {
    pub(crate) handlers: HashMap<String, Vec<Rc<dyn ErasedHandler>>>,
    pub(crate) on_connect: Vec<ConnectFn>,
    pub(crate) middlewares: Vec<ConnectMiddleware>,
    pub(crate) room_events: Vec<RoomListener>,
    pub(crate) server_side: HashMap<String, Vec<ServerSideFn>>,
}

impl Namespace {
    /// Runs `f` for every socket that connects (after the middlewares accepted it).
    pub fn on_connect(&mut self, f: impl Fn(Socket) + 'static) -> &mut Self {
        self.on_connect.push(Rc::new(f));
        self
    }
    /// A synchronous event listener of every socket of the namespace (several per event run
    /// in order, before the socket's own); `A` is what the arguments deserialize into (a tuple
    /// of serde types, [`RawArgs`], or `Vec<sonic_rs::Value>`).
    pub fn on<A: FromArgs + 'static>(
        &mut self,
        event: &str,
        f: impl Fn(Socket, A, AckSender) + 'static,
    ) -> &mut Self {
        self.add(event, sync_handler(f))
    }
    fn add(&mut self, event: &str, h: Rc<dyn ErasedHandler>) -> &mut Self {
        self.handlers.entry(event.to_string()).or_default().push(h);
        self
    }
    /// An async event handler. A socket's events still reach handlers in arrival order: the
    /// next event waits until this future completes.
    pub fn on_async<A, Fut>(
        &mut self,
        event: &str,
        f: impl Fn(Socket, A, AckSender) -> Fut + 'static,
    ) -> &mut Self
    where
        A: FromArgs + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.add(event, async_handler(f))
    }
    /// Listens to room events: `f(event, room, socket_id)` (for create/delete-room the socket
    /// is the one whose join or leave caused it).
    pub fn on_room_event(&mut self, f: impl Fn(RoomEvent, &str, &str) + 'static) -> &mut Self {
        self.room_events.push(Rc::new(f));
        self
    }
    /// Listens to events other nodes emit with `server_side_emit` (Node's `io.on(event)` for
    /// `serverSideEmit`). A node runs the listener once (on one of its shards); `ack` answers
    /// a `server_side_emit_with_ack`.
    pub fn on_server_side_emit<A: FromArgs + 'static>(
        &mut self,
        event: &str,
        f: impl Fn(A, ServerAck) + 'static,
    ) -> &mut Self {
        let f = move |args: RawArgs, ack: ServerAck| match A::from_args(args) {
            Ok(a) => f(a, ack),
            Err(e) => tracing::debug!("server-side event dropped: {e}"),
        };
        let l: ServerSideFn = Rc::new(f);
        self.server_side
            .entry(event.to_string())
            .or_default()
            .push(l);
        self
    }
    /// A connect middleware; an `Err` refuses the connection with CONNECT_ERROR.
    pub fn use_middleware(
        &mut self,
        f: impl Fn(&Socket) -> Result<(), ConnectError> + 'static,
    ) -> &mut Self {
        self.middlewares.push(ConnectMiddleware::Sync(Rc::new(f)));
        self
    }
    /// An async connect middleware (runs in order with the others; the CONNECT is answered
    /// once every middleware accepted it).
    pub fn use_async<Fut>(&mut self, f: impl Fn(Socket) -> Fut + 'static) -> &mut Self
    where
        Fut: Future<Output = Result<(), ConnectError>> + 'static,
    {
        let f = move |s| -> ConnectFuture { Box::pin(f(s)) };
        self.middlewares.push(ConnectMiddleware::Async(Rc::new(f)));
        self
    }
}

/// Calls the server-side listeners of `event`; `ack` goes to every one of them, the first
/// answer wins. False when there is none.
pub(crate) fn call_server_side(
    def: &Namespace,
    event: &str,
    args: RawArgs,
    ack: Option<Box<dyn FnOnce(RawArgs)>>,
) -> bool {
    let Some(ls) = def.server_side.get(event).filter(|l| !l.is_empty()) else {
        return false;
    };
    let ack = ServerAck(ack.map(|f| Rc::new(Cell::new(Some(f)))));
    for l in ls {
        l(args.clone(), ack.clone());
    }
    true
}

/// A namespace at run time on one shard.
pub(crate) struct NsRt {
    pub name: Rc<str>,
    pub def: Rc<Namespace>,
    pub sockets: RefCell<HashMap<crate::proto::sio::SocketId, Socket>>,
    /// The parent namespace of a dynamic child (Node names it `/_<index>`).
    pub parent: Option<usize>,
}

/// Setup closures are shared by all shards.
pub(crate) type Setup = std::sync::Arc<dyn Fn(&mut Namespace) + Send + Sync>;

/// How a dynamic namespace matches names.
#[derive(Clone)]
pub(crate) enum Matcher {
    Predicate(std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>),
    Regex(regex_lite::Regex),
}

impl Matcher {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Predicate(f) => f(name),
            Matcher::Regex(r) => r.is_match(name),
        }
    }
}

/// All namespaces of a Socket.IO endpoint on one shard.
#[derive(Default)]
pub(crate) struct Namespaces {
    pub by_name: RefCell<HashMap<Rc<str>, Rc<NsRt>>>,
    pub dynamic: Vec<(Matcher, Rc<Namespace>)>,
}

impl Namespaces {
    pub fn build(statics: &[(String, Setup)], dynamic: &[(Matcher, Setup)]) -> Namespaces {
        // several setups for one name compose, in registration order
        let mut defs: Vec<(&str, Namespace)> = Vec::new();
        for (name, setup) in statics {
            let i = match defs.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    defs.push((name, Namespace::default()));
                    defs.len() - 1
                }
            };
            setup(&mut defs[i].1);
        }
        let by_name = defs
            .into_iter()
            .map(|(name, ns)| {
                let name: Rc<str> = name.into();
                let rt = NsRt {
                    name: name.clone(),
                    def: Rc::new(ns),
                    sockets: Default::default(),
                    parent: None,
                };
                (name, Rc::new(rt))
            })
            .collect();
        let dynamic = dynamic
            .iter()
            .map(|(m, setup)| {
                let mut ns = Namespace::default();
                setup(&mut ns);
                (m.clone(), Rc::new(ns))
            })
            .collect();
        Namespaces {
            by_name: RefCell::new(by_name),
            dynamic,
        }
    }

    /// Finds a namespace, creating a dynamic child namespace on first use.
    pub fn get_or_create(&self, name: &str) -> Option<Rc<NsRt>> {
        if let Some(ns) = self.by_name.borrow().get(name) {
            return Some(ns.clone());
        }
        let parent = self.dynamic.iter().position(|(m, _)| m.matches(name))?;
        let def = self.dynamic[parent].1.clone();
        let name: Rc<str> = name.into();
        let ns = Rc::new(NsRt {
            name: name.clone(),
            def,
            sockets: Default::default(),
            parent: Some(parent),
        });
        self.by_name.borrow_mut().insert(name.clone(), ns.clone());
        super::cluster::notify_namespace(&name);
        Some(ns)
    }

    pub fn get(&self, name: &str) -> Option<Rc<NsRt>> {
        self.by_name.borrow().get(name).cloned()
    }

    /// The child namespaces of parent `i` created on this shard so far.
    pub fn children(&self, parent: usize) -> Vec<Rc<NsRt>> {
        let by_name = self.by_name.borrow();
        by_name
            .values()
            .filter(|n| n.parent == Some(parent))
            .cloned()
            .collect()
    }
}
