// The official socket.io-client (4.8, pinned in package-lock.json) as a load generator for the
// ringio harness: `loadtest --generator node` spawns one or more of these processes.
//
//   node generator.js '<json parameters>'
//
// Protocol (the same as the harness's own `--procs` worker, src/scenario/multi.rs): commands on
// stdin, one per line; answers on stdout, one per line.
//   (start)      -> `ready`
//   `ramp`       -> opens this process's connections (connection i when i % procs == proc_index)
//                   at the global arrival rate, then `ramped <connected> <failed>`
//   `go`         -> starts the measured phase (echo loops, open-loop schedule, fan-out sender)
//   `status`     -> `status <deliveries> <sender_done 0|1> <sender_failed 0|1>` (fanout)
//   `drain <ms>` -> `drained` once the open-loop schedule is over and every echo was answered, or
//                   after <ms> (echo-open)
//   `stop`       -> one JSON line with the counts, histograms as [value_us, count] lists, fan-out
//                   deliveries and sends (CLOCK_MONOTONIC ns, comparable across processes), then
//                   exits.
"use strict";
const fs = require("fs");
const path = require("path");
const readline = require("readline");
const { io } = require("socket.io-client");

const P = JSON.parse(process.argv[2] || "{}");
const CLIENT_VERSION = JSON.parse(
  fs.readFileSync(path.join(__dirname, "node_modules", "socket.io-client", "package.json"), "utf8"),
).version;

const say = (line) => process.stdout.write(line + "\n");
const monoNs = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC (libuv uv_hrtime)
const now = () => performance.now(); // ms, monotonic

// Histogram of microseconds: exact below 2048, above that 11 significant bits (< 0.1% error).
class Hist {
  constructor() {
    this.m = new Map();
  }
  rec(us) {
    let v = Math.max(1, Math.round(us));
    if (v >= 2048) {
      const step = 2 ** (Math.floor(Math.log2(v)) - 10);
      v = Math.floor(v / step) * step;
    }
    this.m.set(v, (this.m.get(v) || 0) + 1);
  }
  json() {
    return [...this.m.entries()];
  }
}

const st = {
  connected: 0,
  failed: 0,
  dropped: 0,
  ops: 0,
  failures: 0,
  late: 0,
  delivered: 0,
  senderReady: false,
  senderDone: false,
  senderFailed: false,
  firstError: null,
};
const connectH = new Hist();
const rttH = new Hist();
const recv = []; // [seq, t_ns] per fan-out delivery
const sends = []; // [seq, slot, slot's first send t_ns, ack rtt us] per `bcast`
let phase = "init"; // init, ramp, ramped, go, stop
let goAt = 0;
const conns = []; // { i, s, up, pending, done }
const payload = "x".repeat(P.payload_len || 0);
const local = [];
for (let i = P.proc_index; i < P.conns; i += P.procs) local.push(i);
const hasSender = P.scenario === "fanout" && P.proc_index === 0;
let sender = null;

function noteError(e) {
  if (st.firstError === null) st.firstError = String((e && e.message) || e);
}

// echo: the first in_flight connections keep one echo+ack in flight, the others stay idle
function isEchoer(i) {
  return i < P.in_flight;
}

function srcAddr(i) {
  if (!P.src_ips) return undefined;
  const j = Math.floor(i / Math.max(1, P.targets.length)) % Math.min(P.src_ips, 254);
  return `127.0.0.${2 + j}`;
}

// Opens connection i; calls onUp(conn) once the Socket.IO CONNECT is answered, onFail(conn)
// when it cannot connect. A receiver or echoer that disconnects before `stop` counts as dropped.
function open(i, onUp, onFail, countDrop = true) {
  const opts = {
    transports: P.transports,
    forceNew: true,
    reconnection: false,
    timeout: P.connect_timeout_ms,
  };
  const src = srcAddr(i);
  if (src) opts.localAddress = src;
  const c = { i, s: null, up: false, pending: 0, done: false };
  const t0 = now();
  const s = io(P.targets[i % P.targets.length], opts);
  c.s = s;
  s.on("connect", () => {
    if (c.up) return;
    c.up = true;
    connectH.rec((now() - t0) * 1000);
    onUp(c);
  });
  s.on("connect_error", (e) => {
    if (c.up) return;
    noteError(e);
    s.close();
    onFail(c);
  });
  s.on("disconnect", (reason) => {
    if (phase !== "stop" && c.up && countDrop) {
      noteError(`disconnected: ${reason}`);
      st.dropped++;
    }
  });
  return c;
}

function rampedCheck() {
  if (phase !== "ramp") return;
  if (st.connected + st.failed < local.length) return;
  if (hasSender && !st.senderReady && !st.senderFailed) return;
  phase = "ramped";
  say(`ramped ${st.connected} ${st.failed}`);
}

function ramp() {
  phase = "ramp";
  const start = now() + 5;
  const failed = () => {
    st.failed++;
    st.failures++;
    rampedCheck();
  };
  const up = (c) => {
    st.connected++;
    conns.push(c);
    if (P.scenario === "fanout") {
      c.s.on("b", (b) => {
        recv.push([b && b.seq, monoNs()]);
        st.delivered++;
      });
    }
    if (phase === "go") startConn(c);
    rampedCheck();
  };
  let next = 0;
  const step = () => {
    const t = now();
    while (next < local.length && start + (local[next] / P.rate) * 1000 <= t) {
      open(local[next], up, failed);
      next++;
    }
    if (next < local.length) {
      setTimeout(step, Math.max(0, start + (local[next] / P.rate) * 1000 - now()));
    } else if (hasSender) {
      openSender();
    }
  };
  setTimeout(step, 5);
  if (local.length === 0 && !hasSender) rampedCheck();
  // answer anyway when the ramp takes far longer than scheduled
  setTimeout(() => {
    if (phase === "ramp") {
      phase = "ramped";
      say(`ramped ${st.connected} ${st.failed}`);
    }
  }, (P.conns / P.rate) * 1000 + 15000);
}

function openSender() {
  const up = (c) => {
    sender = c;
    st.senderReady = true;
    rampedCheck();
  };
  const failed = () => {
    st.senderFailed = true;
    rampedCheck();
  };
  // the sender's own copies of `b` are not deliveries; losing it fails the sender
  const c = open(P.conns, up, failed, false);
  c.s.on("disconnect", () => {
    if (phase !== "stop") st.senderFailed = true;
  });
}

// closed loop: one echo+ack in flight
function echoLoop(c) {
  if (phase !== "go" || !c.s.connected) return;
  const t = now();
  c.s.emit("echo", payload, () => {
    if (phase !== "go") return;
    rttH.rec((now() - t) * 1000);
    st.ops++;
    echoLoop(c);
  });
}

// open loop: this connection's share of the total rate, each echo at a fixed instant; latency
// from the scheduled instant; sends go out on schedule whatever is outstanding
function openLoop(c) {
  const n = Math.max(1, P.conns);
  const perConn = Math.max(P.open_rate / n, 1e-3);
  const interval = 1000 / perConn;
  const first = goAt + interval * (c.i / n);
  const end = goAt + P.duration_s * 1000;
  let k = 0;
  const step = () => {
    if (phase === "stop") return;
    const t = now();
    for (;;) {
      const sched = first + interval * k;
      if (sched >= end || sched > t) break;
      if (t - sched > 5) st.late++;
      c.pending++;
      c.s.emit("echo", payload, () => {
        c.pending--;
        if (phase === "stop") return;
        rttH.rec((now() - sched) * 1000);
        st.ops++;
        drainCheck();
      });
      k++;
    }
    const sched = first + interval * k;
    if (sched < end) setTimeout(step, Math.max(0, sched - now()));
    else {
      c.done = true;
      drainCheck();
    }
  };
  step();
}

let drainWaiter = null;
function drainCheck() {
  if (!drainWaiter) return;
  if (conns.every((c) => c.done && c.pending === 0)) {
    clearTimeout(drainWaiter);
    drainWaiter = null;
    say("drained");
  }
}

function runSender() {
  const s = sender.s;
  const burst = Math.max(1, P.burst);
  let k = 0;
  const slot = () => {
    if (phase === "stop") return;
    if (k >= P.broadcasts) {
      st.senderDone = true;
      return;
    }
    const due = goAt + P.interval_ms * k;
    const t = now();
    if (due > t) {
      setTimeout(slot, due - t);
      return;
    }
    const tNs = monoNs();
    const slotK = k;
    let got = 0;
    let failed = false;
    for (let b = 0; b < burst; b++) {
      s.timeout(P.connect_timeout_ms).emit("bcast", null, (err, n) => {
        if (failed || phase === "stop") return;
        if (err || typeof n !== "number") {
          failed = true;
          st.senderFailed = true;
          noteError(err || "bcast ack without a numeric seq");
          return;
        }
        sends.push([n, slotK, tNs, Math.max(1, Math.round((now() - t) * 1000))]);
        if (++got === burst) {
          k++;
          slot();
        }
      });
    }
  };
  slot();
}

function startConn(c) {
  if (P.scenario === "echo" && isEchoer(c.i)) echoLoop(c);
  else if (P.scenario === "echo-open") openLoop(c);
}

function go() {
  phase = "go";
  goAt = now();
  for (const c of conns) startConn(c);
  if (hasSender && sender) runSender();
}

function stop() {
  phase = "stop";
  let unanswered = 0;
  for (const c of conns) unanswered += c.pending;
  const out = {
    connected: st.connected,
    failed: st.failed,
    dropped: st.dropped,
    ops: st.ops,
    failures: st.failures,
    late: st.late,
    unanswered,
    connect: connectH.json(),
    rtt: rttH.json(),
    recv,
    sends,
    first_error: st.firstError,
    client: `socket.io-client ${CLIENT_VERSION}`,
    node: process.version,
  };
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  switch (cmd) {
    case "ramp":
      ramp();
      break;
    case "go":
      go();
      break;
    case "status":
      say(`status ${st.delivered} ${st.senderDone ? 1 : 0} ${st.senderFailed ? 1 : 0}`);
      break;
    case "drain":
      drainWaiter = setTimeout(() => {
        drainWaiter = null;
        say("drained");
      }, parseInt(arg || "5000", 10));
      drainCheck();
      break;
    default:
      stop();
  }
});
rl.on("close", () => {
  if (phase !== "stop") stop();
});
say("ready");
