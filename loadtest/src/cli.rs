//! The command line of `loadtest`: subcommands, options, and the parameters of a scenario run
//! derived from them.

use crate::pin::Pin;
use crate::scenario::{Generator, Params, Scenario};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load-test harness for Socket.IO servers: ringio vs Node socket.io",
    long_about = "Without a subcommand: a short suite (idle 1000 conns, echo 5 s, fanout 1000 x 10) \
                  against `ringio serve`, building target/release/ringio first if missing."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub opts: Opts,
}

#[derive(clap::Args, Clone, Debug)]
pub struct Opts {
    /// Measure an external server (http://host:port) instead of starting ringio.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Pid of the external server, to read its CPU time and RSS from /proc.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Client threads (one monoio runtime each); default: one per core.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Shards of the ringio server started by the harness; default: one per core.
    #[arg(long, global = true)]
    pub shards: Option<usize>,
    /// Connections (idle, echo), or receivers (fanout), for every scenario run; the
    /// per-scenario options below take precedence.
    #[arg(long, short = 'c', global = true)]
    pub conns: Option<usize>,
    /// idle: connections (default 2000; suite 1000).
    #[arg(long, global = true)]
    pub idle_conns: Option<usize>,
    /// echo: connections (default 200, each with one echo+ack in flight; --generator node:
    /// 2000, 200 of them with one echo+ack in flight: see --in-flight).
    #[arg(long, global = true)]
    pub echo_conns: Option<usize>,
    /// fanout: receivers (default 2000; suite 1000).
    #[arg(long, global = true)]
    pub fanout_receivers: Option<usize>,
    /// Connection arrival rate per second of the connect ramp (default 1000).
    #[arg(long, global = true)]
    pub rate: Option<f64>,
    /// idle: seconds to hold the connections open (default 5).
    #[arg(long, global = true)]
    pub hold: Option<f64>,
    /// echo: measured seconds (default 10; suite 5).
    #[arg(long, short = 'd', global = true)]
    pub duration: Option<f64>,
    /// echo: length of the echoed string (default 48).
    #[arg(long, global = true, default_value_t = 48)]
    pub payload_len: usize,
    /// fanout: number of broadcasts (default 20; suite 10).
    #[arg(long, short = 'b', global = true)]
    pub broadcasts: Option<usize>,
    /// fanout: milliseconds between broadcasts (default 100).
    #[arg(long, global = true, default_value_t = 100)]
    pub interval_ms: u64,
    /// fanout: `bcast` messages per slot, sent back to back without waiting for each ack (the
    /// floor's trigger sends as many seqs per slot); default 1.
    #[arg(long, global = true, default_value_t = 1)]
    pub burst: usize,
    /// echo-open: total echo+ack rate per second over all connections (default 10000).
    #[arg(long, global = true, default_value_t = 10_000.0)]
    pub open_rate: f64,
    /// rooms: number of rooms the connections cycle through (default 50).
    #[arg(long, global = true, default_value_t = 50)]
    pub rooms: usize,
    /// Write SVG plots (echo latency CDF, fan-out time to the last receiver per broadcast) into
    /// this directory.
    #[arg(long, global = true)]
    pub plot: Option<PathBuf>,
    /// Write the results as JSON to this file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Generator processes (idle, echo): this one plus N-1 child `loadtest` processes, each
    /// opening its slice of the connections under its own open-file limit (default 1).
    #[arg(long, global = true, default_value_t = 1)]
    pub procs: usize,
    /// Client source addresses: each client socket binds to 127.0.0.(2 + j) before connecting
    /// (IP_BIND_ADDRESS_NO_PORT: the port is picked at connect time), j = the connection's
    /// index among its server's modulo N; 0 = no bind. Default: one per started 5,000
    /// connections to one server address (connect() slows down sharply past ~14k per source and
    /// server address: even ports first); churn: 200; 0 for a server not on loopback.
    #[arg(long, global = true)]
    pub src_ips: Option<usize>,
    /// Do not build the ringio binary when it is missing.
    #[arg(long, global = true)]
    pub no_build: bool,
    /// The load generator: rust (this harness's own client) or node (the official
    /// socket.io-client 4.8 in Node, loadtest/generator/node; idle, echo, echo-open, fanout).
    #[arg(long, global = true, value_enum, default_value_t = Generator::Rust)]
    pub generator: Generator,
    /// echo: how many of the connections keep one echo+ack in flight (the first ones; the
    /// others stay connected and idle). Default: all of them (rust), 200 (node).
    #[arg(long, global = true)]
    pub in_flight: Option<usize>,
    /// Pin server and client: none; same (both on the first CPU, `taskset -c 0` for both);
    /// split (server on the first half of the CPUs, client on the second half). Pinned, ringio
    /// gets --shards = its CPUs unless --shards is given, the Rust client one thread per CPU.
    #[arg(long, global = true, value_enum, default_value_t = Pin::None)]
    pub pin: Pin,
    /// node: socket.io-client's `transports` (comma-separated; default websocket).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "websocket"
    )]
    pub node_transports: Vec<String>,
}

/// `--servers K` (idle, echo): not a global option, as `compare --servers` names servers.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerProcs {
    /// Server processes the harness starts (`ringio serve`, each on its own port, same
    /// --shards): connection i goes to server i % K; server RSS and CPU are summed over them.
    /// For more connections than one process's open-file limit allows (default 1).
    #[arg(long, default_value_t = 1)]
    pub servers: usize,
}

#[derive(Subcommand, Clone, Debug)]
pub enum Cmd {
    /// Open C connections at a fixed arrival rate, hold them: server RSS per connection.
    Idle(ServerProcs),
    /// Closed loop: C connections each keep one echo with ack in flight: acks/s, RTT, CPU/op.
    Echo(ServerProcs),
    /// C receivers on "/", one sender emits `bcast` null every interval: time to the LAST
    /// receiver, deliveries/s, server CPU per delivery.
    Fanout,
    /// Open loop: a fixed total rate of echo+ack (--open-rate, default 10000/s) over C conns
    /// (default 200) for -d s; latency from each request's scheduled send time.
    EchoOpen,
    /// Connect/disconnect churn: C slots (default 50) each loop connect, one echo+ack,
    /// disconnect for -d s: connects/s, server CPU per cycle, server RSS before/after.
    Churn,
    /// Room churn: C conns (default 200) loop join room k / bcast to room k / leave room k.
    Rooms,
    /// Closed-loop echo (C = 200) with 5% of the connections on HTTP long-polling.
    PollingMix,
    /// Reconnect storm: C conns (default 2000); the harness stops the server (SIGTERM) and
    /// starts it again on the same port; clients reconnect with socket.io-client's backoff and
    /// send one echo+ack: time until 50/99/100% are back, attempts, failures, CPU/reconnect.
    Reconnect {
        /// Server to start and restart: ringio or node.
        #[arg(long, default_value = "ringio")]
        server: String,
        /// Milliseconds to keep the server down between its exit and the new start.
        #[arg(long, default_value_t = 0)]
        down_ms: u64,
    },
    /// The short default suite: idle 1000, echo 5 s, fanout 1000 x 10.
    Suite,
    /// The same scenario(s) against ringio and Node socket.io 4.8, side by side with ratios.
    Compare {
        /// Scenarios to compare (default: echo).
        #[arg(value_enum)]
        scenarios: Vec<Scenario>,
        /// Servers, in order (ringio, node, socketioxide); default: all three (socketioxide when
        /// its peer project is present).
        #[arg(long, value_delimiter = ',')]
        servers: Vec<String>,
        /// Also run the floor (raw TCP on monoio) and add its column and ratios.
        #[arg(long)]
        with_floor: bool,
        /// Generators, in order (rust, node); default both. Scenarios the Node generator does
        /// not run (churn, rooms, polling-mix) and the floor run with rust only.
        #[arg(long, value_delimiter = ',', value_enum)]
        generators: Vec<Generator>,
    },
    /// ringio against the floor of this machine (raw TCP echo and raw fan-out on monoio, no
    /// protocol), in the same run: server CPU per op and ops/s with ratios ringio/floor.
    Floor {
        /// Scenarios (default: echo fanout).
        #[arg(value_enum)]
        scenarios: Vec<Scenario>,
    },
    /// The floor server (started by `floor` / `compare --with-floor`).
    #[command(hide = true)]
    FloorServer {
        #[arg(long)]
        port: u16,
    },
    /// A child generator process of `--procs N` (driven over stdin/stdout by its parent).
    #[command(hide = true)]
    Worker {
        /// the server addresses, comma-separated (connection i on the (i % len)-th)
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<std::net::SocketAddr>,
        /// their Host headers, same order
        #[arg(long, value_delimiter = ',', required = true)]
        host_headers: Vec<String>,
        #[arg(long)]
        proc_index: usize,
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[arg(long)]
        floor: bool,
    },
    /// Run one scenario by name (same as the subcommands).
    Run {
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[command(flatten)]
        sp: ServerProcs,
    },
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The parameters of scenario `s` from the options (`suite`: the short suite's defaults), for
/// generator `g`, with the CPU sets of `--pin` (server, client).
pub fn params(
    s: Scenario,
    o: &Opts,
    suite: bool,
    g: Generator,
    pin: Option<crate::pin::CpuSets>,
) -> Params {
    let node = g == Generator::Node;
    let conns = match s {
        Scenario::Idle => o
            .idle_conns
            .or(o.conns)
            .unwrap_or(if suite { 1000 } else { 2000 }),
        Scenario::Echo if node => o.echo_conns.or(o.conns).unwrap_or(2000),
        Scenario::Echo | Scenario::EchoOpen | Scenario::Rooms | Scenario::PollingMix => {
            o.echo_conns.or(o.conns).unwrap_or(200)
        }
        Scenario::Churn => o.conns.unwrap_or(50),
        Scenario::Fanout => {
            o.fanout_receivers
                .or(o.conns)
                .unwrap_or(if suite { 1000 } else { 2000 })
        }
    };
    let in_flight = match s {
        Scenario::Echo => o
            .in_flight
            .unwrap_or(if node { 200 } else { conns })
            .min(conns),
        _ => conns,
    };
    let (server_cpus, client_cpus) = match pin {
        Some((s, c)) => (Some(s), Some(c)),
        None => (None, None),
    };
    let threads = o
        .threads
        .unwrap_or_else(|| client_cpus.as_ref().map_or_else(cores, Vec::len));
    Params {
        scenario: s,
        conns,
        in_flight,
        rate: o.rate.unwrap_or(1000.0).max(1.0),
        hold: Duration::from_secs_f64(o.hold.unwrap_or(5.0)),
        duration: Duration::from_secs_f64(o.duration.unwrap_or(if suite { 5.0 } else { 10.0 })),
        payload_len: o.payload_len,
        broadcasts: o.broadcasts.unwrap_or(if suite { 10 } else { 20 }).max(1),
        interval: Duration::from_millis(o.interval_ms),
        burst: o.burst.max(1),
        threads: threads.max(1),
        open_rate: o.open_rate.max(1.0),
        rooms: o.rooms.max(1),
        floor: false,
        procs: o.procs.max(1),
        proc_index: 0,
        servers: 1,
        src_ips: o.src_ips,
        generator: g,
        node_transports: o.node_transports.clone(),
        pin: o.pin,
        server_cpus,
        client_cpus,
    }
}
