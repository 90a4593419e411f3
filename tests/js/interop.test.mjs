// Interop tests: the official socket.io-client (4.8) against a Socket.IO
// server (Engine.IO v4 / Socket.IO protocol v5) at process.env.RINGIO_URL.
//
//   RINGIO_URL=http://127.0.0.1:3000 node --test tests/js/interop.test.mjs
//
// The server must implement the handler set of ./reference-server.mjs (see
// README.md). Every scenario runs once per transport configuration:
// polling only, websocket only, and polling followed by an upgrade to
// websocket.

import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const BASE_URL = (process.env.RINGIO_URL ?? "http://127.0.0.1:3000").replace(/\/+$/, "");
// Optional: the server's Engine.IO path, if it is not the default "/socket.io/".
const IO_PATH = process.env.RINGIO_PATH;

const T = { timeout: 10_000 }; // hard timeout of every test
const WAIT = 3_000; // default wait for one event / ack

const TRANSPORTS = [
  { name: "polling", opts: { transports: ["polling"] }, final: "polling" },
  { name: "websocket", opts: { transports: ["websocket"] }, final: "websocket" },
  { name: "polling+upgrade", opts: {}, final: "websocket", upgrade: true },
];

const RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 };

// ---------------------------------------------------------------------------
// helpers

/** Every socket created by a test; all are closed after each test. */
const live = new Set();

function closeAll() {
  for (const socket of live) {
    socket.removeAllListeners?.();
    socket.disconnect();
    socket.io.disconnect(); // closes the Manager and its Engine.IO connection, stops reconnecting
  }
  live.clear();
}
afterEach(closeAll);
after(closeAll);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the event's arguments (an array), rejects after `ms`. */
function once(emitter, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    emitter.once(event, onEvent);
  });
}

/** Resolves after `ms` if `event` did not fire; rejects as soon as it does. */
function noEvent(emitter, event, ms) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      clearTimeout(timer);
      reject(new Error(`unexpected "${event}" event: ${JSON.stringify(args)}`));
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      resolve();
    }, ms);
    emitter.once(event, onEvent);
  });
}

/** Records every occurrence of `event` on `socket` (each as an argument array). */
class Recorder {
  constructor(socket, event) {
    this.event = event;
    this.events = [];
    this.waiters = new Set();
    socket.on(event, (...args) => {
      this.events.push(args);
      for (const check of [...this.waiters]) check();
    });
  }

  /** Resolves once `cond(this.events)` is truthy; rejects after `ms`. */
  until(cond, ms = WAIT, what = "condition") {
    return new Promise((resolve, reject) => {
      let timer;
      const check = () => {
        const value = cond(this.events);
        if (!value) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `timed out after ${ms} ms waiting for ${what} on "${this.event}"; ` +
              `got ${this.events.length} event(s): ${JSON.stringify(this.events).slice(0, 500)}`,
          ),
        );
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves with the first recorded argument array matching `pred`. */
  find(pred, ms = WAIT) {
    return this.until((events) => events.find(pred), ms, "a matching event");
  }
}

/** Emits with a plain ack callback; resolves with the ack's arguments (an array). */
function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ack for "${event}" within ${WAIT} ms`)),
      WAIT,
    );
    socket.emit(event, ...args, (...response) => {
      clearTimeout(timer);
      resolve(response);
    });
  });
}

/** Asserts that `value` is a Node Buffer holding exactly `bytes`. */
function assertBytes(value, bytes) {
  assert.ok(Buffer.isBuffer(value), `expected a Buffer, got ${Object.prototype.toString.call(value)}`);
  assert.equal(Buffer.compare(value, Buffer.from(bytes)), 0, `bytes differ: [${[...value]}] vs [${bytes}]`);
}

/**
 * For polling+upgrade: every Engine.IO connection a Manager opens is watched
 * from its "open" event (which fires before the upgrade probe starts), so the
 * "upgrade" event is seen even when it comes before the namespace "connect".
 */
const upgradeOf = new WeakMap(); // engine -> { initial, upgraded: Promise }

function watchUpgrades(manager) {
  manager.on("open", () => {
    const engine = manager.engine;
    upgradeOf.set(engine, {
      initial: engine.transport.name,
      upgraded: new Promise((resolve) => engine.once("upgrade", resolve)),
    });
  });
}

/** Asserts the engine of `socket` opened over polling, emitted "upgrade", and now runs websocket. */
async function ensureUpgraded(socket, ms = 5_000) {
  const engine = socket.io.engine;
  const watched = upgradeOf.get(engine);
  assert.ok(watched, "engine was not watched for upgrades");
  assert.equal(watched.initial, "polling", "polling+upgrade must open over polling");
  let timer;
  await Promise.race([
    watched.upgraded,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no "upgrade" event within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(socket.io.engine, engine);
  assert.equal(engine.transport.name, "websocket");
}

/**
 * Tests of one transport configuration. `cfg` is one of TRANSPORTS.
 */
function helpersFor(cfg) {
  /** Creates a client socket (new Manager, not yet connected). */
  function client(ns, opts = {}) {
    const socket = io(BASE_URL + ns, {
      forceNew: true,
      reconnection: false,
      timeout: 5_000,
      ...(IO_PATH ? { path: IO_PATH } : {}),
      ...cfg.opts,
      ...opts,
    });
    live.add(socket);
    if (cfg.upgrade) watchUpgrades(socket.io);
    return socket;
  }

  /** Resolves when `socket` is connected (and upgraded, for polling+upgrade). */
  async function connected(socket, ms = 5_000) {
    if (!socket.connected) {
      await new Promise((resolve, reject) => {
        const cleanup = () => {
          clearTimeout(timer);
          socket.off("connect", onConnect);
          socket.off("connect_error", onError);
        };
        const onConnect = () => {
          cleanup();
          resolve();
        };
        const onError = (err) => {
          cleanup();
          reject(new Error(`connect_error on "${socket.nsp}": ${err?.message}`, { cause: err }));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no "connect" on "${socket.nsp}" within ${ms} ms (${BASE_URL})`));
        }, ms);
        socket.on("connect", onConnect);
        socket.on("connect_error", onError);
      });
    }
    assert.equal(typeof socket.id, "string");
    if (cfg.upgrade) {
      await ensureUpgraded(socket);
    } else {
      assert.equal(socket.io.engine.transport.name, cfg.final);
    }
    return socket;
  }

  /** New client on namespace `ns`; resolves with the socket once connected. */
  const connect = (ns, opts) => connected(client(ns, opts));

  /** Opens another namespace on an existing Manager (same Engine.IO connection). */
  function openNamespace(manager, ns, opts) {
    const socket = manager.socket(ns, opts);
    live.add(socket);
    return connected(socket);
  }

  /** New client on `ns` that must fail to connect; resolves with the connect_error. */
  async function connectError(ns, opts) {
    const socket = client(ns, opts);
    const [err] = await Promise.race([
      once(socket, "connect_error", 5_000),
      once(socket, "connect", 5_000).then(() => {
        throw new Error(`"${ns}" unexpectedly connected`);
      }),
    ]);
    assert.equal(socket.connected, false);
    return err;
  }

  return { client, connected, connect, openNamespace, connectError };
}

// ---------------------------------------------------------------------------
// scenarios

for (const cfg of TRANSPORTS) {
  describe(`[${cfg.name}]`, () => {
    const { client, connected, connect, openNamespace, connectError } = helpersFor(cfg);

    // a. namespaces -----------------------------------------------------------

    test("a. connect to / and /custom: string ids, distinct per namespace", T, async () => {
      const root = await connect("/");
      assert.equal(root.connected, true);
      assert.ok(root.id.length > 0);

      const custom = await openNamespace(root.io, "/custom");
      assert.equal(custom.io, root.io, "both namespaces share one Manager");
      assert.equal(custom.connected, true);
      assert.ok(custom.id.length > 0);
      assert.notEqual(custom.id, root.id);

      // both namespaces are usable over the shared connection
      assert.equal(await root.timeout(2_000).emitWithAck("echo", "on /"), "on /");
      assert.equal(await custom.timeout(2_000).emitWithAck("echo", "on /custom"), "on /custom");
    });

    test("a. two clients on / get different ids; /custom works on its own", T, async () => {
      const [one, two, custom] = await Promise.all([connect("/"), connect("/"), connect("/custom")]);
      assert.notEqual(one.id, two.id);
      assert.notEqual(custom.id, one.id);
      assert.notEqual(custom.id, two.id);
      assert.deepEqual(await emitAck(custom, "echo", 7), [7]);
    });

    // b. events and client->server acks -----------------------------------------

    test("b. echo with ack: ack gets exactly the emitted arguments", T, async () => {
      const s = await connect("/");
      assert.deepEqual(await emitAck(s, "echo", 1, "two", { three: [true] }), [1, "two", { three: [true] }]);
      // ack with no arguments at all
      assert.deepEqual(await emitAck(s, "echo"), []);
      // various JSON values
      const values = [0, -1.5, "", "üñï€😀", null, false, [], {}, { a: { b: [1, null, "c"] } }];
      assert.deepEqual(await emitAck(s, "echo", ...values), values);
    });

    test("b. echo without ack: server emits echo back", T, async () => {
      const s = await connect("/");
      const echoed = once(s, "echo");
      s.emit("echo", "x");
      assert.deepEqual(await echoed, ["x"]);

      const echoed2 = once(s, "echo");
      s.emit("echo", 1, "two", { three: [true] });
      assert.deepEqual(await echoed2, [1, "two", { three: [true] }]);
    });

    test("b. timeout(2000).emitWithAck resolves with the ack value", T, async () => {
      const s = await connect("/");
      assert.equal(await s.timeout(2_000).emitWithAck("echo", "hello"), "hello");
      assert.deepEqual(await s.timeout(2_000).emitWithAck("echo", { k: [1, 2] }), { k: [1, 2] });
      // several acks in flight at once, each matched to its own id
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => s.timeout(2_000).emitWithAck("echo", i)),
      );
      assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i));
    });

    // c. binary -------------------------------------------------------------------

    test("c. binary with ack: ack receives the same bytes", T, async () => {
      const s = await connect("/");
      const ack = await emitAck(s, "echo", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) });
      assert.equal(ack.length, 2);
      assertBytes(ack[0], [1, 2, 3]);
      assert.deepEqual(Object.keys(ack[1]), ["nested"]);
      assertBytes(ack[1].nested, [4, 5]);

      // empty buffer, and binary mixed with plain values in an array
      const [empty, mixed] = await emitAck(s, "echo", Buffer.alloc(0), ["a", Buffer.from([0, 255]), 3]);
      assertBytes(empty, []);
      assert.equal(mixed.length, 3);
      assert.equal(mixed[0], "a");
      assertBytes(mixed[1], [0, 255]);
      assert.equal(mixed[2], 3);
    });

    test("c. binary without ack: echo event carries the binary", T, async () => {
      const s = await connect("/");
      const echoed = once(s, "echo");
      s.emit("echo", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) });
      const args = await echoed;
      assert.equal(args.length, 2);
      assertBytes(args[0], [1, 2, 3]);
      assertBytes(args[1].nested, [4, 5]);

      // a larger payload (64 KiB)
      const big = Buffer.alloc(64 * 1024, 0).map((_, i) => i % 251);
      const echoedBig = once(s, "echo");
      s.emit("echo", big);
      const [bigBack] = await echoedBig;
      assertBytes(bigBack, big);
    });

    // d. server->client acks with timeout ---------------------------------------------

    test("d. ask: server asks the client a question and forwards its answer", T, async () => {
      const s = await connect("/");
      s.on("question", (x, cb) => cb(x * 2));
      assert.deepEqual(await emitAck(s, "ask", 21), [42]);
      assert.equal(await s.timeout(2_000).emitWithAck("ask", 50), 100);
    });

    test('d. ask: client never answers -> ack receives "timeout"', T, async () => {
      const s = await connect("/");
      const questions = new Recorder(s, "question");
      s.on("question", () => {
        /* deliberately never calls the ack */
      });
      const started = Date.now();
      assert.deepEqual(await emitAck(s, "ask", 21), ["timeout"]);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 400, `server timed out too early (${elapsed} ms)`);
      assert.equal(questions.events.length, 1);
      assert.equal(questions.events[0][0], 21);
      assert.equal(typeof questions.events[0][1], "function", "question carries an ack callback");
      // the connection is still fine afterwards
      assert.equal(await s.timeout(2_000).emitWithAck("echo", "still here"), "still here");
    });

    // e. auth and middleware ------------------------------------------------------------

    test("e. /secure without the right token: connect_error 'not authorized' {code: 401}", T, async () => {
      const noAuth = await connectError("/secure");
      assert.equal(noAuth.message, "not authorized");
      assert.deepEqual(noAuth.data, { code: 401 });

      const wrong = await connectError("/secure", { auth: { token: "wrong" } });
      assert.equal(wrong.message, "not authorized");
      assert.deepEqual(wrong.data, { code: 401 });
    });

    test("e. /secure with token 'secret': connects and receives welcome with the auth", T, async () => {
      const s = client("/secure", { auth: { token: "secret" } });
      const welcome = once(s, "welcome", 5_000);
      await connected(s);
      assert.deepEqual(await welcome, [{ token: "secret" }]);
    });

    test("e. refused /secure does not affect / on the same connection", T, async () => {
      const root = await connect("/");
      const secure = root.io.socket("/secure", { auth: { token: "nope" } });
      live.add(secure);
      const [err] = await once(secure, "connect_error");
      assert.equal(err.message, "not authorized");
      assert.deepEqual(err.data, { code: 401 });
      assert.equal(root.connected, true);
      assert.equal(await root.timeout(2_000).emitWithAck("echo", "ok"), "ok");
    });

    test("e. unknown namespace /nope: connect_error 'Invalid namespace'", T, async () => {
      const err = await connectError("/nope");
      assert.equal(err.message, "Invalid namespace");
    });

    // f. server-side namespace disconnect ---------------------------------------------------

    test('f. disconnect-me: "io server disconnect" and no automatic reconnect', T, async () => {
      const s = await connect("/", RECONNECT);
      const disconnected = once(s, "disconnect");
      s.emit("disconnect-me");
      const [reason] = await disconnected;
      assert.equal(reason, "io server disconnect");
      assert.equal(s.connected, false);

      await Promise.all([noEvent(s, "connect", 1_500), noEvent(s.io, "reconnect_attempt", 1_500)]);
      assert.equal(s.connected, false);
      assert.equal(s.active, false);

      // a manual reconnect works
      s.connect();
      await connected(s);
      assert.equal(await s.timeout(2_000).emitWithAck("echo", "back"), "back");
    });

    // g. transport dropped by the server -------------------------------------------------------

    test("g. drop-transport: transport close, automatic reconnect, acks work again", T, async () => {
      const s = await connect("/", RECONNECT);
      const disconnected = once(s, "disconnect");
      const reconnectedP = disconnected.then(() => once(s, "connect", 5_000));
      s.emit("drop-transport");
      const [reason] = await disconnected;
      assert.ok(
        reason === "transport close" || reason === "transport error",
        `unexpected disconnect reason "${reason}"`,
      );
      await reconnectedP;
      await connected(s); // asserts transport / upgrade again
      assert.equal(s.connected, true);
      assert.deepEqual(await emitAck(s, "echo", "after", 1), ["after", 1]);
      assert.equal(await s.timeout(2_000).emitWithAck("echo", "again"), "again");
    });

    // h. rooms and broadcasts -----------------------------------------------------------------------

    test("h. join acks true; room broadcast reaches members only, seq matches ack", T, async () => {
      const [A, B, C] = await Promise.all([connect("/"), connect("/"), connect("/")]);
      const [recA, recB, recC] = [A, B, C].map((s) => new Recorder(s, "b"));

      assert.deepEqual(await emitAck(A, "join", "r1"), [true]);
      assert.deepEqual(await emitAck(B, "join", "r1"), [true]);

      const [seq] = await emitAck(A, "bcast", "r1");
      assert.equal(typeof seq, "number");
      for (const rec of [recA, recB]) {
        const [payload] = await rec.find(([p]) => p?.seq === seq);
        assert.deepEqual(Object.keys(payload).sort(), ["seq", "t"]);
        assert.equal(typeof payload.t, "number");
        assert.ok(Math.abs(payload.t - Date.now()) < 60_000, `t looks wrong: ${payload.t}`);
      }
      await sleep(300);
      const withSeq = (rec) => rec.events.filter(([p]) => p?.seq === seq).length;
      assert.equal(withSeq(recC), 0, "C is not in r1 and must receive nothing");
      assert.equal(withSeq(recA), 1, "A must receive the broadcast exactly once");
      assert.equal(withSeq(recB), 1, "B must receive the broadcast exactly once");
    });

    test("h. bcast to null reaches every client on /", T, async () => {
      const [A, B, C] = await Promise.all([connect("/"), connect("/"), connect("/")]);
      const recs = [A, B, C].map((s) => new Recorder(s, "b"));
      assert.deepEqual(await emitAck(A, "join", "r1"), [true]);

      const [seq] = await emitAck(A, "bcast", null);
      assert.equal(typeof seq, "number");
      for (const rec of recs) {
        const [payload] = await rec.find(([p]) => p?.seq === seq);
        assert.equal(typeof payload.t, "number");
      }

      // seq increases with every bcast
      const [seq2] = await emitAck(C, "bcast", null);
      assert.ok(seq2 > seq, `seq did not increase: ${seq} then ${seq2}`);
      for (const rec of recs) await rec.find(([p]) => p?.seq === seq2);
    });

    test("h. leave acks true; the client no longer receives room broadcasts", T, async () => {
      const [A, B] = await Promise.all([connect("/"), connect("/")]);
      const [recA, recB] = [A, B].map((s) => new Recorder(s, "b"));
      assert.deepEqual(await emitAck(A, "join", "r1"), [true]);
      assert.deepEqual(await emitAck(B, "join", "r1"), [true]);

      const [seq1] = await emitAck(A, "bcast", "r1");
      await recB.find(([p]) => p?.seq === seq1);

      assert.deepEqual(await emitAck(B, "leave", "r1"), [true]);
      const [seq2] = await emitAck(A, "bcast", "r1");
      await recA.find(([p]) => p?.seq === seq2);
      await sleep(300);
      assert.ok(!recB.events.some(([p]) => p?.seq === seq2), "B left r1 but got the broadcast");

      // B still receives broadcasts to everyone
      const [seq3] = await emitAck(A, "bcast", null);
      await recB.find(([p]) => p?.seq === seq3);
    });

    test("h. bcast-payload: binary payload broadcast to a room", T, async () => {
      const [A, B, C] = await Promise.all([connect("/"), connect("/"), connect("/")]);
      const [recA, recB, recC] = [A, B, C].map((s) => new Recorder(s, "b"));
      assert.deepEqual(await emitAck(A, "join", "r1"), [true]);
      assert.deepEqual(await emitAck(B, "join", "r1"), [true]);

      const tag = `bin-${Math.random()}`;
      const payload = { tag, data: Buffer.from([9, 8, 7]) };
      assert.deepEqual(await emitAck(C, "bcast-payload", "r1", payload), [true]);
      for (const rec of [recA, recB]) {
        const [got] = await rec.find(([p]) => p?.tag === tag);
        assert.deepEqual(Object.keys(got), ["tag", "data"]);
        assertBytes(got.data, [9, 8, 7]);
      }
      await sleep(300);
      assert.ok(!recC.events.some(([p]) => p?.tag === tag), "C is not in r1 (the sender need not be)");
    });

    // j. Node's semantics a ported app relies on ---------------------------------------------------

    test("j. socket.to(room) leaves the sender out; the other members get it", T, async () => {
      const [A, B] = await Promise.all([connect("/"), connect("/")]);
      const room = `except-${Math.random().toString(36).slice(2)}`;
      assert.deepEqual(await emitAck(A, "join", room), [true]);
      assert.deepEqual(await emitAck(B, "join", room), [true]);
      const gotB = once(B, "b");
      const quietA = noEvent(A, "b", 500);
      assert.deepEqual(await emitAck(A, "except-me", room, { hi: 1 }), [true]);
      assert.deepEqual(await gotB, [{ hi: 1 }]);
      await quietA;
    });

    test('j. disconnect(true): "io server disconnect" on every namespace, no reconnect', T, async () => {
      const root = await connect("/", RECONNECT);
      const custom = await openNamespace(root.io, "/custom");
      const [d1, d2] = [once(root, "disconnect"), once(custom, "disconnect")];
      root.emit("disconnect-all");
      assert.deepEqual((await d1)[0], "io server disconnect");
      assert.deepEqual((await d2)[0], "io server disconnect");
      await Promise.all([
        noEvent(root, "connect", 1_000),
        noEvent(custom, "connect", 1_000),
        noEvent(root.io, "reconnect_attempt", 1_000),
      ]);
      assert.equal(root.connected, false);
      assert.equal(custom.connected, false);
    });

    test("j. objects keep their key order (/chat message is {from, text})", T, async () => {
      const [A, B] = await Promise.all([connect("/chat"), connect("/chat")]);
      const got = once(B, "message");
      A.emit("message", "hello");
      const [msg] = await got;
      assert.deepEqual(Object.keys(msg), ["from", "text"]);
      assert.equal(msg.from, A.id);
      assert.equal(msg.text, "hello");
      // server-built objects in a broadcast: {seq, t} in that order
      const rec = new Recorder(A, "b");
      const root = await connect("/");
      const recRoot = new Recorder(root, "b");
      const [seq] = await emitAck(root, "bcast", null);
      const [payload] = await recRoot.find(([p]) => p?.seq === seq);
      assert.deepEqual(Object.keys(payload), ["seq", "t"]);
      assert.equal(rec.events.length, 0, "/chat sockets get no / broadcast");
    });

    // i. ordering ------------------------------------------------------------------------------------

    test("i. 500 echo events come back in order", T, async () => {
      const s = await connect("/");
      const rec = new Recorder(s, "echo");
      const N = 500;
      for (let i = 0; i < N; i++) s.emit("echo", i);
      await rec.until((events) => events.length >= N, 8_000, `${N} echoes`);
      assert.deepEqual(
        rec.events.map((args) => args[0]),
        Array.from({ length: N }, (_, i) => i),
      );
    });
  });
}
