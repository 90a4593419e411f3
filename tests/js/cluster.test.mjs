// Cluster tests with the official client: several servers (ringio nodes, or ringio and Node
// nodes) sharing a Redis adapter, driven through the cluster handlers (src/demo.rs `cluster`,
// tests/js/cluster-node-server.mjs). Run by tests/cluster.rs, which starts Redis and the nodes:
//
//   NODES=http://127.0.0.1:4001,http://127.0.0.1:4002 SCENARIO=main node --test cluster.test.mjs
//
// SCENARIO: main (every operation, polling and websocket), emitter (@socket.io/redis-emitter),
// stopped (the last node is frozen: requests end at their timeout with the others' answers),
// resume (after a Redis restart: broadcasts cross nodes again).

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const NODES = (process.env.NODES ?? "http://127.0.0.1:4001,http://127.0.0.1:4002").split(",");
const SCENARIO = process.env.SCENARIO ?? "main";
// nodes in the cluster (some may have no client here)
const SIZE = Number(process.env.CLUSTER_SIZE ?? NODES.length);
const TRANSPORTS = (process.env.TRANSPORTS ?? "polling,websocket").split(",");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, cond, ms = 8000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A client on `url`, connected; it records `c`, `b` and `notified` events and answers `vote`. */
async function client(url, transport, name) {
  const s = io(url, { transports: [transport], forceNew: true, reconnection: false });
  s.got = { c: [], b: [], notified: [] };
  for (const ev of Object.keys(s.got)) s.on(ev, (x) => s.got[ev].push(x));
  s.on("vote", (_q, ack) => ack(name));
  s.name = name;
  everyClient.push(s);
  await new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", reject);
  });
  return s;
}

// a failed test leaves its clients open: close them all at the end, or the run never exits
const everyClient = [];
after(() => everyClient.forEach((c) => c.close()));

/** One client per node (client i on node i). */
async function clients(transport, nodes = NODES) {
  return Promise.all(nodes.map((u, i) => client(u, transport, `n${i}`)));
}

const call = (s, ev, ...args) => s.timeout(15000).emitWithAck(ev, ...args);
const closeAll = (cs) => cs.forEach((c) => c.close());

async function joinAll(cs, room) {
  await Promise.all(cs.map((c) => call(c, "join", room)));
  // sharded "dynamic" mode: a node subscribes to a room's channel when the room appears, after
  // the join returned (Node's adapter too): a broadcast published before that misses it
  if (process.env.SHARDED === "1") await sleep(200);
}

if (SCENARIO === "main") {
  for (const t of TRANSPORTS) {
    test(`${t}: room broadcast crosses nodes exactly once, in the sender's order`, async () => {
      const cs = await clients(t);
      await joinAll(cs, "r");
      const n = 30;
      // every client sends n emits without waiting in between: per-sender order must hold
      await Promise.all(
        cs.map((c, k) => Promise.all(
          Array.from({ length: n }, (_, i) => call(c, "c-emit", { to: ["r"] }, { k, i })))),
      );
      await until("every broadcast", () => cs.every((c) => c.got.c.length >= n * cs.length));
      await sleep(200);
      for (const c of cs) {
        assert.equal(c.got.c.length, n * cs.length, `${c.name}: exactly once`);
        for (let k = 0; k < cs.length; k++) {
          const seq = c.got.c.filter((x) => x.k === k).map((x) => x.i);
          assert.deepEqual(seq, Array.from({ length: n }, (_, i) => i), `${c.name} from ${k}`);
        }
      }
      closeAll(cs);
    });

    test(`${t}: except, binary, volatile, all sockets`, async () => {
      const cs = await clients(t);
      await joinAll(cs, "r");
      await call(cs[1], "join", "x");
      await call(cs[0], "c-emit", { to: ["r"], except: ["x"] }, "not-x");
      await call(cs[0], "bcast-payload", "r", Buffer.from([1, 2, 3]));
      await call(cs[cs.length - 1], "c-emit", {}, "all");
      await until("all", () => cs.every((c) => c.got.c.includes("all") && c.got.b.length === 1));
      // volatile: dropped only for a transport that is not ready; these are idle now, but
      // with polling the emitter's own GET carries its ack at that moment (Node drops it too)
      await sleep(100);
      await call(cs[0], "c-emit", { volatile: true }, "volatile");
      const ready = cs.filter((_, i) => t === "websocket" || i !== 0);
      await until("volatile", () => ready.every((c) => c.got.c.includes("volatile")))
        .catch((e) => assert.fail(`${e.message}: ${cs.map((c) => `${c.name} ${c.got.c}`)}`));
      await sleep(200);
      for (const [i, c] of cs.entries()) {
        assert.equal(c.got.c.includes("not-x"), i !== 1, `${c.name}: except`);
        assert.deepEqual([...c.got.b[0]], [1, 2, 3], `${c.name}: binary`);
        assert.ok(Buffer.isBuffer(c.got.b[0]) || c.got.b[0] instanceof ArrayBuffer);
        assert.ok(c.got.c.filter((x) => x === "volatile").length <= 1, `${c.name}: volatile`);
      }
      closeAll(cs);
    });

    test(`${t}: fetch_sockets, sockets_join/leave, remote socket, disconnect_sockets`, async () => {
      const cs = await clients(t);
      await joinAll(cs, "f");
      const found = await call(cs[0], "c-fetch", { to: ["f"] });
      assert.deepEqual(found.map((s) => s.id), cs.map((c) => c.id).sort());
      for (const s of found) {
        assert.equal(s.remote, s.id !== cs[0].id, `remote flag of ${s.id}`);
        assert.ok(s.rooms.includes("f") && s.rooms.includes(s.id));
      }
      const last = cs[cs.length - 1];
      await call(cs[0], "c-join", { to: [last.id] }, "j");
      await until("join", async () => (await call(cs[0], "c-fetch", { to: ["j"] })).length === 1);
      await call(cs[0], "c-emit", { to: ["j"] }, "to-j");
      await until("j", () => last.got.c.includes("to-j"));
      await call(cs[0], "c-leave", { to: ["j"] }, "j");
      await until("leave", async () => (await call(cs[0], "c-fetch", { to: ["j"] })).length === 0);
      assert.equal(await call(cs[0], "c-remote", last.id, "emit", "direct"), 1);
      await until("remote emit", () => last.got.c.includes("direct"));
      assert.equal(await call(cs[0], "c-remote", last.id, "join", "k"), 1);
      await until("remote join", async () => (await call(cs[1], "c-fetch", { to: ["k"] })).length === 1);
      const rooms = await call(cs[0], "c-rooms");
      // the sharded adapter lists this node's rooms only (as Node's)
      const remoteRoom = process.env.SHARDED !== "1" || cs.length === 1;
      assert.ok(rooms.includes("f") && (rooms.includes("k") || !remoteRoom), `all rooms: ${rooms}`);
      const gone = new Promise((r) => last.once("disconnect", r));
      await call(cs[0], "c-disconnect", { to: [last.id] }, false);
      assert.equal(await gone, "io server disconnect");
      assert.ok(cs.slice(0, -1).every((c) => c.connected));
      closeAll(cs);
    });

    test(`${t}: server_side_emit with and without acks, broadcast with acks, server count`, async () => {
      const cs = await clients(t);
      assert.equal(await call(cs[0], "c-count"), SIZE);
      const r = await call(cs[0], "c-sse", "ping", 5);
      assert.deepEqual(r, { ok: true, responses: Array(SIZE - 1).fill(["pong", 5]) });
      await call(cs[0], "c-sse-noack", "notify", 9);
      await until("notified", () => cs.slice(1).every((c) => c.got.notified.includes(9)));
      await sleep(200);
      assert.deepEqual(cs[0].got.notified, [], "not to the emitting node");
      await joinAll(cs, "v");
      const votes = await call(cs[cs.length - 1], "c-ask", { to: ["v"] }, 3000);
      assert.equal(votes.ok, true);
      assert.deepEqual(votes.responses.sort(), cs.map((c) => c.name).sort());
      closeAll(cs);
    });
  }
}

if (SCENARIO === "emitter") {
  test("@socket.io/redis-emitter reaches every node's clients", async () => {
    const { createClient } = await import("redis");
    const { Emitter } = await import("@socket.io/redis-emitter");
    const redis = createClient({ url: process.env.REDIS_URL });
    await redis.connect();
    const emitter = new Emitter(redis);
    const cs = await clients("websocket");
    await joinAll(cs, "e");
    await call(cs[0], "join", "no");
    emitter.to("e").except("no").emit("c", { from: "emitter" });
    emitter.emit("b", Buffer.from([9, 8]));
    await until("emitter", () => cs.slice(1).every((c) => c.got.c.length === 1) && cs.every((c) => c.got.b.length === 1));
    assert.deepEqual(cs[1].got.c, [{ from: "emitter" }]);
    assert.deepEqual([...cs[0].got.b[0]], [9, 8]);
    emitter.in(cs[1].id).socketsJoin("by-emitter");
    await until("emitter join", async () => (await call(cs[0], "c-fetch", { to: ["by-emitter"] })).length === 1);
    await sleep(100);
    assert.deepEqual(cs[0].got.c, []);
    closeAll(cs);
    await redis.quit();
  });
}

if (SCENARIO === "stopped") {
  // the last node is frozen (SIGSTOP): it still counts as a subscriber but never answers
  test("requests time out with the answers of the nodes that answered", async () => {
    const live = NODES.slice(0, -1);
    const cs = await clients("websocket", live);
    await joinAll(cs, "s");
    const t0 = Date.now();
    const found = await call(cs[0], "c-fetch", { to: ["s"] });
    const took = Date.now() - t0;
    assert.deepEqual(found.map((s) => s.id), cs.map((c) => c.id).sort());
    assert.ok(took >= 4000 && took < 9000, `fetch ended at the 5 s timeout (${took} ms)`);
    const r = await call(cs[0], "c-sse", "ping", 1);
    assert.equal(r.ok, false);
    assert.equal(r.responses.length, live.length - 1);
    await call(cs[0], "c-emit", { to: ["s"] }, "still");
    await until("local and live nodes", () => cs.every((c) => c.got.c.includes("still")));
    closeAll(cs);
  });
}

if (SCENARIO === "killed") {
  test("after a node is gone, requests complete at once with the others", async () => {
    const cs = await clients("websocket");
    const t0 = Date.now();
    assert.equal(await call(cs[0], "c-count"), NODES.length);
    const found = await call(cs[0], "c-fetch", {});
    assert.equal(found.length, cs.length);
    const r = await call(cs[0], "c-sse", "ping", 2);
    assert.equal(r.ok, true);
    assert.ok(Date.now() - t0 < 3000);
    closeAll(cs);
  });
}

if (SCENARIO === "resume") {
  test("after a Redis restart, broadcasts cross nodes again", async () => {
    const cs = await clients("websocket");
    await joinAll(cs, "after");
    let i = 0;
    await until("a broadcast to cross nodes", async () => {
      await call(cs[0], "c-emit", { to: ["after"] }, i++);
      await sleep(100);
      return cs.slice(1).every((c) => c.got.c.length > 0);
    }, 20000);
    closeAll(cs);
  });
}
