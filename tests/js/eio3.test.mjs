// allowEIO3: the official socket.io-client 2.x (Engine.IO v3, Socket.IO protocol v4) against a
// server at process.env.RINGIO_URL with allowEIO3 on, pingInterval 300 ms and pingTimeout
// 200 ms, and the handler set of ./reference-server.mjs. Validated against Node's own server:
//
//   ALLOW_EIO3=1 PING_INTERVAL=300 PING_TIMEOUT=200 PORT=3124 node tests/js/reference-server.mjs &
//   RINGIO_URL=http://127.0.0.1:3124 node --test tests/js/eio3.test.mjs
//
// With EIO3_REFUSED=1 the server must refuse v2 clients (allowEIO3 off).

import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import io from "socket.io-client-v2";

const URL = (process.env.RINGIO_URL ?? "http://127.0.0.1:3000").replace(/\/+$/, "");
const T = { timeout: 10_000 };
const WAIT = 3_000;

const live = new Set();
function closeAll() {
  for (const s of live) {
    s.off();
    s.close();
  }
  live.clear();
}
afterEach(closeAll);
after(closeAll);

function once(emitter, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}"`)), WAIT);
    socket.emit(event, ...args, (...response) => {
      clearTimeout(timer);
      resolve(response);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const CONFIGS = [
  { name: "polling", opts: { transports: ["polling"] }, final: "polling" },
  { name: "polling base64", opts: { transports: ["polling"], forceBase64: true }, final: "polling" },
  { name: "websocket", opts: { transports: ["websocket"] }, final: "websocket" },
  { name: "polling+upgrade", opts: {}, final: "websocket" },
];

function open(path, cfg, extra = {}) {
  const s = io(URL + path, { forceNew: true, reconnection: false, ...cfg.opts, ...extra });
  live.add(s);
  return s;
}

async function connect(path, cfg, extra) {
  const s = open(path, cfg, extra);
  await once(s, "connect");
  if (cfg.final === "websocket" && !cfg.opts.transports) {
    // wait for the upgrade
    const deadline = Date.now() + WAIT;
    while (s.io.engine.transport.name !== "websocket") {
      assert.ok(Date.now() < deadline, "no upgrade");
      await sleep(20);
    }
  }
  return s;
}

if (process.env.EIO3_REFUSED) {
  test("v2 clients are refused without allowEIO3", T, async () => {
    const s = open("/", CONFIGS[0]);
    const [err] = await once(s, "connect_error");
    assert.ok(err, "a connect error");
    assert.equal(s.connected, false);
  });
} else {
  for (const cfg of CONFIGS) {
    describe(`[${cfg.name}]`, () => {
      test('"/" is joined without a CONNECT; the socket id is the connection\'s', T, async () => {
        const s = await connect("/", cfg);
        assert.equal(s.connected, true);
        assert.equal(s.id, s.io.engine.id);
        assert.equal(s.io.engine.transport.name, cfg.final);
      });

      test("echo with ack, any JSON, binary both ways", T, async () => {
        const s = await connect("/", cfg);
        assert.deepEqual(await emitAck(s, "echo", 1, "two", { three: [true] }), [1, "two", { three: [true] }]);
        assert.deepEqual(await emitAck(s, "echo"), []);
        assert.deepEqual(await emitAck(s, "echo", "üñ€😀"), ["üñ€😀"]);
        const [bin, nested] = await emitAck(s, "echo", Buffer.from([1, 2, 3]), { b: Buffer.from([4, 5]) });
        assert.deepEqual([...bin], [1, 2, 3]);
        assert.deepEqual([...nested.b], [4, 5]);
        const got = once(s, "echo");
        s.emit("echo", "no ack");
        assert.deepEqual(await got, ["no ack"]);
      });

      test("a server->client ack", T, async () => {
        const s = await connect("/", cfg);
        s.on("question", (x, ack) => ack(`answer to ${x}`));
        assert.deepEqual(await emitAck(s, "ask", 42), ["answer to 42"]);
      });

      test("another namespace, and a middleware refusal and acceptance through the query", T, async () => {
        const custom = await connect("/custom", cfg);
        assert.deepEqual(await emitAck(custom, "echo", "on /custom"), ["on /custom"]);
        const refused = open("/secure", cfg, { query: { token: "nope" } });
        const [err] = await once(refused, "error");
        assert.deepEqual(err, { code: 401 });
        const ok = open("/secure", cfg, { query: { token: "secret" } });
        const [welcome] = await once(ok, "welcome");
        assert.equal(welcome.token, "secret");
      });

      test('disconnect-me: "io server disconnect"', T, async () => {
        const s = await connect("/", cfg);
        const d = once(s, "disconnect");
        s.emit("disconnect-me");
        assert.deepEqual(await d, ["io server disconnect"]);
      });

      test("the client's heartbeat keeps the connection (pingInterval 300 ms)", T, async () => {
        const s = await connect("/", cfg);
        let closed = null;
        s.on("disconnect", (r) => (closed = r));
        await sleep(1_500);
        assert.equal(closed, null);
        assert.deepEqual(await emitAck(s, "echo", "alive"), ["alive"]);
      });

      test("rooms: a broadcast reaches a v2 client", T, async () => {
        const [a, b] = await Promise.all([connect("/", cfg), connect("/", cfg)]);
        const room = `v2-${Math.random().toString(36).slice(2)}`;
        assert.deepEqual(await emitAck(a, "join", room), [true]);
        const got = once(a, "b");
        assert.deepEqual(await emitAck(b, "except-me", room, { hi: 2 }), [true]);
        assert.deepEqual(await got, [{ hi: 2 }]);
      });
    });
  }
}
