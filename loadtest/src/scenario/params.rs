//! What a scenario run is: the scenario, its parameters, the generator that drives it, and how
//! connections are spread over generator processes, server processes and source addresses.

use crate::pin::Pin;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Idle,
    Echo,
    Fanout,
    /// open loop: a fixed total echo+ack rate, latency from the scheduled send time
    EchoOpen,
    /// connect / one echo+ack / disconnect, again and again
    Churn,
    /// join room k / bcast to room k / leave room k loops
    Rooms,
    /// closed-loop echo with 5% of the connections on HTTP long-polling
    PollingMix,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Echo => "echo",
            Scenario::Fanout => "fanout",
            Scenario::EchoOpen => "echo-open",
            Scenario::Churn => "churn",
            Scenario::Rooms => "rooms",
            Scenario::PollingMix => "polling-mix",
        }
    }

    /// Whether the raw-TCP floor has a variant of this scenario.
    pub fn has_floor(self) -> bool {
        matches!(self, Scenario::Idle | Scenario::Echo | Scenario::Fanout)
    }

    /// Whether the Node generator (the official socket.io-client) runs this scenario.
    pub fn supports_node(self) -> bool {
        matches!(
            self,
            Scenario::Idle | Scenario::Echo | Scenario::EchoOpen | Scenario::Fanout
        )
    }

    /// What one operation of the per-op CPU figures is.
    pub fn op_name(self) -> &'static str {
        match self {
            Scenario::Idle => "connect",
            Scenario::Echo | Scenario::EchoOpen | Scenario::PollingMix => "echo+ack",
            Scenario::Fanout => "delivery",
            Scenario::Churn => "connect+disconnect",
            Scenario::Rooms => "join+bcast+leave",
        }
    }
}

/// Which client generates the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Generator {
    /// this harness's own Socket.IO client (src/client.rs), monoio, one runtime per thread
    #[default]
    Rust,
    /// the official socket.io-client 4.8 in Node (loadtest/generator/node), one event loop
    /// per process
    Node,
}

impl Generator {
    pub fn name(self) -> &'static str {
        match self {
            Generator::Rust => "rust",
            Generator::Node => "node",
        }
    }
}

/// Parameters of one scenario run.
#[derive(Debug, Clone)]
pub struct Params {
    pub scenario: Scenario,
    pub conns: usize,
    /// echo: how many of the `conns` connections keep one echo+ack in flight (the first ones,
    /// see `is_echoer`); the others stay connected and idle
    pub in_flight: usize,
    /// connection arrival rate (per second) of the connect ramp
    pub rate: f64,
    /// idle: hold time
    pub hold: Duration,
    /// echo: measured duration
    pub duration: Duration,
    /// echo: payload string length
    pub payload_len: usize,
    /// fanout: broadcasts and their spacing
    pub broadcasts: usize,
    pub interval: Duration,
    /// fanout: `bcast` messages per slot, sent back to back (acks collected afterwards)
    pub burst: usize,
    /// client threads per Rust generator process
    pub threads: usize,
    /// echo-open: total echo+ack rate per second
    pub open_rate: f64,
    /// rooms: number of rooms the connections cycle through
    pub rooms: usize,
    /// run the raw-TCP floor variant of the scenario (against `loadtest floor-server`)
    pub floor: bool,
    /// generator processes (`--procs`) and this process's index: it opens connection i when
    /// i % procs == proc_index
    pub procs: usize,
    pub proc_index: usize,
    /// server processes (`--servers`): connection i goes to server i % servers
    pub servers: usize,
    /// client source addresses (`--src-ips`): None = automatic (see `auto_src_ips`); 0 = no
    /// bind (the kernel picks the source); N = 127.0.0.2 ..= 127.0.0.(1+N)
    pub src_ips: Option<usize>,
    /// the client: this harness's Rust client or the official socket.io-client in Node
    pub generator: Generator,
    /// node: socket.io-client's `transports` (default ["websocket"])
    pub node_transports: Vec<String>,
    /// `--pin` and the CPU sets it resolved to (None: not pinned)
    pub pin: Pin,
    pub server_cpus: Option<Vec<usize>>,
    pub client_cpus: Option<Vec<usize>>,
}

/// How many of `conns` connections process `k` of `procs` opens (those with i % procs == k).
/// Also how many of them server `k` of `procs` servers gets (connection i on server i % procs).
pub fn local_count(conns: usize, procs: usize, k: usize) -> usize {
    (conns + procs - 1).saturating_sub(k) / procs
}

/// The server process (index into the targets) connection `i` goes to: round robin, the same
/// in every generator process.
pub fn server_of(i: usize, servers: usize) -> usize {
    i % servers.max(1)
}

/// Descriptors a process keeps for itself besides its connections (listeners, io_uring, pipes,
/// logs, ...).
pub const FD_SPARE: u64 = 64;

/// Whether a process holding `slice` connections (plus one: a fan-out sender or a listener)
/// stays under the open-file limit `nofile` with `FD_SPARE` descriptors to spare.
pub fn fits_fd_limit(slice: usize, nofile: u64) -> bool {
    (slice as u64 + 1) + FD_SPARE <= nofile
}

/// Most source addresses `--src-ips` can use: 127.0.0.2 ..= 127.0.0.255.
pub const MAX_SRC_IPS: usize = 254;

/// Connections to one server address (ip, port) from one source address above which the
/// automatic `--src-ips` spreads them over more source addresses. The ephemeral port range
/// (32768-60999: 28,232 ports) bounds the connections of one (source ip, destination ip,
/// destination port), but connect() picks even ports first (14,116 of them) and, once those are
/// taken, scans them all (`__inet_hash_connect` / `__inet_check_established`) before each odd
/// one: measured on the 2-vCPU VM, 17,000 connections to one server at 5,000/s from one source
/// address took 9.6 s of client kernel time and a 3.2 s connect p99, from 2 addresses (8,500
/// each) 4.4 s and 39 ms.
pub const CONNS_PER_SRC_IP: usize = 5_000;

/// The automatic `--src-ips` for `per_server` connections to the busiest server address: one
/// source address per started `CONNS_PER_SRC_IP` connections (at least 1).
pub fn auto_src_ips(per_server: usize) -> usize {
    per_server.div_ceil(CONNS_PER_SRC_IP).clamp(1, MAX_SRC_IPS)
}

/// The source address of connection `i` with `servers` server processes and `src_ips` source
/// addresses (0: none, the kernel's choice): 127.0.0.(2 + j), j the connection's index among
/// those of its server modulo `src_ips`, so that every server sees all source addresses evenly
/// whatever `servers` and `src_ips` are. The Node generator computes the same.
pub fn src_addr(i: usize, servers: usize, src_ips: usize) -> Option<Ipv4Addr> {
    if src_ips == 0 {
        return None;
    }
    let j = (i / servers.max(1)) % src_ips.min(MAX_SRC_IPS);
    Some(Ipv4Addr::new(127, 0, 0, 2 + j as u8))
}

/// One server address the clients connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: String,
}

/// polling-mix: connection i uses long-polling when i % 20 == 19 (5%).
pub fn is_poller(i: usize) -> bool {
    i % 20 == 19
}

pub fn polling_count(conns: usize) -> usize {
    (0..conns).filter(|i| is_poller(*i)).count()
}

/// The `--src-ips` in force for `p` against `targets`: the explicit value (refused above
/// `MAX_SRC_IPS`, or with a server that is not on loopback), else automatic: none for a server
/// that is not on loopback, 200 for churn (every cycle a new 4-tuple, ports in TIME_WAIT spread
/// over them), else `auto_src_ips` of the busiest server address's connections.
pub fn resolve_src_ips(p: &Params, targets: &[Target]) -> Result<usize, String> {
    let loopback = targets.iter().all(|t| t.addr.ip().is_loopback());
    match p.src_ips {
        Some(n) if n > MAX_SRC_IPS => Err(format!(
            "--src-ips {n}: at most {MAX_SRC_IPS} source addresses (127.0.0.2 ..= 127.0.0.255)"
        )),
        Some(n) if n > 0 && !loopback => Err(format!(
            "--src-ips {n}: source addresses 127.0.0.x need a server on loopback; use --src-ips 0"
        )),
        Some(n) => Ok(n),
        None if !loopback => Ok(0),
        None if p.scenario == Scenario::Churn => Ok(200),
        None => Ok(auto_src_ips(local_count(p.conns, targets.len().max(1), 0))),
    }
}

impl Params {
    /// The connections this process opens (none in the harness itself with the Node
    /// generator: every slice is a Node process's).
    pub fn local_conns(&self) -> usize {
        local_count(self.conns, self.procs, self.proc_index)
    }

    /// echo: whether connection `i` keeps one echo+ack in flight: the first `in_flight`
    /// connections (so that generator process k of N, which opens i % N == k, and server k of
    /// K each get an even share of them); the others stay connected and idle.
    pub fn is_echoer(&self, i: usize) -> bool {
        i < self.in_flight
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::json!({
            "scenario": self.scenario.name(),
            "conns": self.conns,
            "connect_rate_per_s": self.rate,
            "client_threads": self.threads,
            "floor": self.floor,
            "generator": self.generator.name(),
            "generator_procs": self.procs,
            "server_procs": self.servers,
            "src_ips": self.src_ips,
            "pin": self.pin.name(),
            "server_cpus": self.server_cpus,
            "client_cpus": self.client_cpus,
        });
        let o = m.as_object_mut().expect("object");
        if self.generator == Generator::Node {
            o.insert(
                "node_transports".into(),
                self.node_transports.clone().into(),
            );
        }
        let mut put = |k: &str, v: serde_json::Value| {
            o.insert(k.into(), v);
        };
        let secs = |d: Duration| serde_json::Value::from(d.as_secs_f64());
        match self.scenario {
            Scenario::Idle => put("hold_s", secs(self.hold)),
            Scenario::Echo | Scenario::PollingMix => {
                put("duration_s", secs(self.duration));
                put("payload_len", self.payload_len.into());
                put("in_flight_per_conn", 1.into());
                if self.scenario == Scenario::PollingMix {
                    put("polling_conns", polling_count(self.conns).into());
                } else {
                    put("in_flight", self.in_flight.into());
                }
            }
            Scenario::EchoOpen => {
                put("duration_s", secs(self.duration));
                put("payload_len", self.payload_len.into());
                put("rate_per_s", self.open_rate.into());
            }
            Scenario::Churn => {
                put("duration_s", secs(self.duration));
                put("slots", self.conns.into());
            }
            Scenario::Rooms => {
                put("duration_s", secs(self.duration));
                put("rooms", self.rooms.into());
            }
            Scenario::Fanout => {
                put("broadcasts", self.broadcasts.into());
                put("burst", self.burst.into());
                put("interval_ms", (self.interval.as_secs_f64() * 1000.0).into());
            }
        }
        m
    }

    /// The scenario's shape in words.
    fn what(&self) -> String {
        let d = self.duration.as_secs_f64();
        match self.scenario {
            Scenario::Idle => format!(
                "{} conns at {}/s, hold {} s",
                self.conns,
                self.rate,
                self.hold.as_secs_f64()
            ),
            Scenario::Echo if self.in_flight < self.conns => format!(
                "{} conns, {} of them x 1 echo+ack in flight, {d} s, {}-byte string",
                self.conns, self.in_flight, self.payload_len
            ),
            Scenario::Echo => format!(
                "{} conns x 1 echo+ack in flight, {d} s, {}-byte string",
                self.conns, self.payload_len
            ),
            Scenario::Fanout if self.burst > 1 => format!(
                "{} receivers + 1 sender, {} slots every {} ms x {} bcast back to back",
                self.conns,
                self.broadcasts,
                self.interval.as_millis(),
                self.burst
            ),
            Scenario::Fanout => format!(
                "{} receivers + 1 sender, {} bcast every {} ms",
                self.conns,
                self.broadcasts,
                self.interval.as_millis()
            ),
            Scenario::EchoOpen => format!(
                "{} echo+ack/s fixed rate over {} conns, {d} s, {}-byte string",
                self.open_rate, self.conns, self.payload_len
            ),
            Scenario::Churn => format!(
                "{} slots x (connect, echo+ack, disconnect) loop, {d} s",
                self.conns
            ),
            Scenario::Rooms => format!(
                "{} conns x (join rK, bcast rK, leave rK) loop over {} rooms, {d} s",
                self.conns, self.rooms
            ),
            Scenario::PollingMix => format!(
                "{} conns x 1 echo+ack in flight ({} on HTTP long-polling), {d} s",
                self.conns,
                polling_count(self.conns)
            ),
        }
    }

    pub fn describe(&self) -> String {
        let what = self.what();
        let mut what = if !self.floor {
            what
        } else {
            match self.scenario {
                Scenario::Echo => format!(
                    "{what} -> raw TCP echo of {} bytes",
                    crate::floor::echo_msg_len(self.payload_len)
                ),
                Scenario::Fanout => format!(
                    "{what} -> raw {}-byte frame to every receiver",
                    crate::floor::FRAME_LEN
                ),
                _ => format!("{what} -> raw TCP"),
            }
        };
        if self.servers > 1 {
            what = format!("{what}, {} server processes", self.servers);
        }
        if let Some(n) = self.src_ips.filter(|n| *n > 1) {
            what = format!("{what}, {n} client source addresses");
        }
        what = match self.generator {
            Generator::Node => format!(
                "{what}, {} in {} Node process{} ({})",
                crate::scenario::node::client_label(),
                self.procs,
                if self.procs > 1 { "es" } else { "" },
                self.node_transports.join("+")
            ),
            Generator::Rust if self.procs > 1 => format!(
                "{what}, {} processes x {} client threads",
                self.procs, self.threads
            ),
            Generator::Rust => format!("{what}, {} client threads", self.threads),
        };
        match (&self.server_cpus, &self.client_cpus) {
            (Some(s), Some(c)) => format!(
                "{what}, pinned {}: server cpu {}, client cpu {}",
                self.pin.name(),
                crate::pin::fmt_list(s),
                crate::pin::fmt_list(c)
            ),
            _ => what,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn params(conns: usize, servers: usize, src_ips: Option<usize>) -> Params {
        Params {
            scenario: Scenario::Idle,
            conns,
            in_flight: conns,
            rate: 1000.0,
            hold: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            payload_len: 48,
            broadcasts: 1,
            interval: Duration::from_millis(100),
            burst: 1,
            threads: 2,
            open_rate: 1000.0,
            rooms: 1,
            floor: false,
            procs: 1,
            proc_index: 0,
            servers,
            src_ips,
            generator: Generator::Rust,
            node_transports: vec!["websocket".into()],
            pin: Pin::None,
            server_cpus: None,
            client_cpus: None,
        }
    }

    fn targets(ip: [u8; 4], n: usize) -> Vec<Target> {
        (0..n)
            .map(|k| Target {
                addr: (ip, 4000 + k as u16).into(),
                host_header: format!("h{k}"),
            })
            .collect()
    }

    #[test]
    fn round_robin_over_servers_is_the_same_in_every_generator() {
        // 6 generators x 6 servers: generator k opens i % 6 == k, all of them on server k
        let (conns, procs, servers) = (102_000, 6, 6);
        let mut per_server = vec![0usize; servers];
        for k in 0..procs {
            let mut i = k;
            while i < conns {
                assert_eq!(server_of(i, servers), k);
                per_server[server_of(i, servers)] += 1;
                i += procs;
            }
        }
        assert_eq!(per_server, vec![17_000; 6]);
        // 4 generators x 3 servers: every server gets its local_count share
        let mut per_server = vec![0usize; 3];
        for k in 0..4 {
            for i in (k..1001).step_by(4) {
                per_server[server_of(i, 3)] += 1;
            }
        }
        let want: Vec<usize> = (0..3).map(|s| local_count(1001, 3, s)).collect();
        assert_eq!(per_server, want);
        assert_eq!(want, vec![334, 334, 333]);
        assert_eq!(server_of(5, 1), 0);
        assert_eq!(server_of(5, 0), 0);
    }

    #[test]
    fn fd_limit_per_process() {
        // 20,000 descriptors: 19,935 connections + 1 + 64 spare fit, one more does not
        assert!(fits_fd_limit(19_935, 20_000));
        assert!(!fits_fd_limit(19_936, 20_000));
        // 102,000 connections: 6 servers (17,000 each) fit under 20,000, 5 (20,400) do not
        assert!(fits_fd_limit(local_count(102_000, 6, 0), 20_000));
        assert!(!fits_fd_limit(local_count(102_000, 5, 0), 20_000));
        // the busiest server is server 0
        assert_eq!(local_count(100_001, 6, 0), 16_667);
        assert_eq!(local_count(100_001, 6, 5), 16_666);
    }

    #[test]
    fn source_addresses() {
        assert_eq!(src_addr(7, 1, 0), None);
        assert_eq!(src_addr(7, 1, 1), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(src_addr(7, 1, 5), Some(Ipv4Addr::new(127, 0, 0, 4)));
        assert_eq!(
            src_addr(253, 1, MAX_SRC_IPS),
            Some(Ipv4Addr::new(127, 0, 0, 255))
        );
        assert_eq!(
            src_addr(254, 1, MAX_SRC_IPS),
            Some(Ipv4Addr::new(127, 0, 0, 2))
        );
        // 2 servers x 2 source addresses: each server sees both addresses, evenly
        let mut seen = std::collections::HashMap::new();
        for i in 0..1000 {
            *seen
                .entry((server_of(i, 2), src_addr(i, 2, 2).unwrap()))
                .or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 4);
        assert!(seen.values().all(|&n| n == 250));
    }

    #[test]
    fn automatic_source_address_count() {
        assert_eq!(auto_src_ips(0), 1);
        assert_eq!(auto_src_ips(5_000), 1);
        assert_eq!(auto_src_ips(5_001), 2);
        assert_eq!(auto_src_ips(17_000), 4);
        assert_eq!(auto_src_ips(100_000), 20);
        assert_eq!(auto_src_ips(usize::MAX / 2), MAX_SRC_IPS);
        let lo = targets([127, 0, 0, 1], 1);
        assert_eq!(resolve_src_ips(&params(4_000, 1, None), &lo), Ok(1));
        assert_eq!(resolve_src_ips(&params(19_000, 1, None), &lo), Ok(4));
        // spread over 6 servers: 1,000 per server address, one source address
        assert_eq!(
            resolve_src_ips(&params(6_000, 6, None), &targets([127, 0, 0, 1], 6)),
            Ok(1)
        );
        assert_eq!(resolve_src_ips(&params(60_000, 1, Some(0)), &lo), Ok(0));
        assert_eq!(resolve_src_ips(&params(100, 1, Some(7)), &lo), Ok(7));
        let mut churn = params(50, 1, None);
        churn.scenario = Scenario::Churn;
        assert_eq!(resolve_src_ips(&churn, &lo), Ok(200));
        let remote = targets([10, 0, 0, 5], 1);
        assert_eq!(resolve_src_ips(&params(60_000, 1, None), &remote), Ok(0));
        assert!(resolve_src_ips(&params(100, 1, Some(2)), &remote).is_err());
        assert!(resolve_src_ips(&params(100, 1, Some(255)), &lo).is_err());
    }

    #[test]
    fn echoers_are_spread_evenly() {
        let mut p = params(2000, 1, None);
        p.in_flight = 200;
        let e: Vec<usize> = (0..2000).filter(|i| p.is_echoer(*i)).collect();
        assert_eq!(e.len(), 200);
        // 2 generator processes (or servers): 100 echoers each; 3: 67, 67, 66
        assert_eq!(e.iter().filter(|i| *i % 2 == 1).count(), 100);
        assert_eq!(e.iter().filter(|i| *i % 3 == 2).count(), 66);
        p.in_flight = 2000;
        assert!((0..2000).all(|i| p.is_echoer(i)));
        p.in_flight = 7;
        assert_eq!((0..2000).filter(|i| p.is_echoer(*i)).count(), 7);
        p.in_flight = 0;
        assert_eq!((0..2000).filter(|i| p.is_echoer(*i)).count(), 0);
    }
}
