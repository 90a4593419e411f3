// Cross-node broadcast through Redis: two ringio nodes vs two Node socket.io 4.8 nodes with
// @socket.io/redis-adapter, same harness, same run. Self-contained (the load harness of
// loadtest/ is not used): starts its own redis-server, the two nodes of each kind in turn,
// N receivers spread over both nodes (websocket), and one sender on node 1 that emits
// `bcast-payload(null, {id, ts})` (a broadcast to every socket of `/`, via the adapter).
//
//   node tests/js/cluster-bench.mjs [--receivers 200] [--rate 100] [--seconds 4]
//        [--burst 1000] [--window 16] [--ringio target/release/ringio] [--shards 1]
//
// Two measurements per kind:
// - paced: `rate` broadcasts/s for `seconds`; per broadcast, the time from the emit to its
//   arrival at the last receiver (median, p99, max);
// - burst: `burst` broadcasts with at most `window` unacknowledged; deliveries/s = deliveries
//   received / (last arrival - first emit).
// Clients and servers share the machine: figures compare the two kinds, nothing more.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const RECEIVERS = Number(arg("receivers", 200));
const RATE = Number(arg("rate", 100));
const SECONDS = Number(arg("seconds", 4));
const BURST = Number(arg("burst", 1000));
const WINDOW = Number(arg("window", 16));
const RINGIO = arg("ringio", join(root, "target/release/ringio"));
const SHARDS = arg("shards", "1");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port) {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise((r) => {
      const s = createServer();
      s.once("error", () => r(true));
      s.listen(port, "127.0.0.1", () => s.close(() => r(false)));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`port ${port} never opened`);
}

const children = [];
function start(cmd, args, env = {}) {
  const c = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
  children.push(c);
  return c;
}
function stopAll() {
  while (children.length) children.pop().kill("SIGKILL");
}
process.on("exit", stopAll);

async function nodes(kind, redisUrl) {
  const ports = [await freePort(), await freePort()];
  for (const [i, port] of ports.entries()) {
    if (kind === "ringio") {
      start(RINGIO, ["serve", "--host", "127.0.0.1", "--port", String(port), "--shards", SHARDS,
        "--node-id", String(i + 1), "--redis", redisUrl], { RUST_LOG: "warn" });
    } else {
      start("node", [join(here, "cluster-node-server.mjs")], { PORT: String(port), REDIS_URL: redisUrl });
    }
    await waitPort(port);
  }
  await sleep(300);
  return ports.map((p) => `http://127.0.0.1:${p}`);
}

function connect(url) {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

async function measure(kind, redisUrl) {
  const urls = await nodes(kind, redisUrl);
  const sockets = [];
  for (let i = 0; i < RECEIVERS; i++) sockets.push(await connect(urls[i % 2]));
  const sender = await connect(urls[0]);
  const all = [...sockets, sender];
  let last = new Map(); // id -> [count, last arrival]
  let received = 0;
  for (const s of all) {
    s.on("b", (p) => {
      const t = performance.now();
      received++;
      const e = last.get(p.id);
      if (e) {
        e[0]++;
        e[1] = t;
      } else last.set(p.id, [1, t]);
    });
  }
  const sent = new Map();
  const emit = (id) => {
    sent.set(id, performance.now());
    return sender.timeout(10000).emitWithAck("bcast-payload", null, { id });
  };
  const waitAll = async (n) => {
    for (let i = 0; i < 500 && received < n * all.length; i++) await sleep(20);
  };
  // warm-up
  for (let i = 0; i < 20; i++) await emit(`w${i}`);
  await waitAll(20);
  // paced
  last = new Map();
  received = 0;
  const n = RATE * SECONDS;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    emit(`p${i}`).catch(() => {});
  }
  await waitAll(n);
  const lat = [];
  let complete = 0;
  for (let i = 0; i < n; i++) {
    const e = last.get(`p${i}`);
    if (e && e[0] === all.length) {
      complete++;
      lat.push(e[1] - sent.get(`p${i}`));
    }
  }
  lat.sort((a, b) => a - b);
  // burst
  last = new Map();
  received = 0;
  const b0 = performance.now();
  let inflight = [];
  for (let i = 0; i < BURST; i++) {
    inflight.push(emit(`b${i}`));
    if (inflight.length >= WINDOW) {
      await inflight.shift();
    }
  }
  await Promise.all(inflight);
  await waitAll(BURST);
  let end = b0;
  for (const [, e] of last) end = Math.max(end, e[1]);
  const deliveries = received;
  const perSec = deliveries / ((end - b0) / 1000);
  for (const s of all) s.close();
  stopAll();
  await sleep(300);
  return {
    kind,
    complete: `${complete}/${n}`,
    median: pct(lat, 50),
    p99: pct(lat, 99),
    max: lat[lat.length - 1],
    deliveries: `${deliveries}/${BURST * all.length}`,
    perSec,
  };
}

const dir = mkdtempSync(join(tmpdir(), "ringio-bench-redis-"));
const redisPort = await freePort();
// redis stays up for both kinds; only the nodes restart
const redis = start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]);
children.splice(children.indexOf(redis), 1);
process.on("exit", () => redis.kill("SIGKILL"));
await waitPort(redisPort);
const redisUrl = `redis://127.0.0.1:${redisPort}`;
const results = [];
try {
  for (const kind of ["ringio", "node"]) results.push(await measure(kind, redisUrl));
} finally {
  stopAll();
  redis.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

const f = (x) => (x === undefined ? "-" : x.toFixed(2));
console.log(`\n${RECEIVERS} receivers on 2 nodes (+ the sender on node 1), websocket; paced ${RATE}/s for ${SECONDS} s; burst ${BURST} with window ${WINDOW}\n`);
console.log("| nodes | paced: complete | to last receiver median ms | p99 ms | max ms | burst: delivered | deliveries/s |");
console.log("|---|---|---|---|---|---|---|");
for (const r of results) {
  const name = r.kind === "ringio" ? `2 × ringio (--shards ${SHARDS})` : "2 × Node socket.io 4.8 + redis-adapter";
  console.log(`| ${name} | ${r.complete} | ${f(r.median)} | ${f(r.p99)} | ${f(r.max)} | ${r.deliveries} | ${Math.round(r.perSec)} |`);
}
process.exit(0);
