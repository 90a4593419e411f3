// Node socket.io 4.8 peer for the Rust client tests (tests/client.rs): the handler set of
// reference-server.mjs plus what those tests need on top of it.
//
//   PORT=3123 HOST=127.0.0.1 node tests/js/client-peer.mjs
//
// Extra handlers (/chat comes from reference-server.mjs):
//   /      flaky (key, ack?)   acks only from the second time a key is received (retries test)
//   /      count (key, ack)    ack(number of times `key` was received by flaky)
//
// Optional environment: PING_INTERVAL, PING_TIMEOUT (ms, Engine.IO heartbeat) and
// KEEP_ALIVE_TIMEOUT (ms, Node's idle keep-alive limit for HTTP connections).

import { createServer } from "node:http";
import { startReferenceServer } from "./reference-server.mjs";

const httpServer = createServer();
if (process.env.KEEP_ALIVE_TIMEOUT) {
  httpServer.keepAliveTimeout = Number(process.env.KEEP_ALIVE_TIMEOUT);
}

const flakyCounts = new Map();

startReferenceServer({
  httpServer,
  label: "client peer",
  options: {
    pingInterval: Number(process.env.PING_INTERVAL ?? 25000),
    pingTimeout: Number(process.env.PING_TIMEOUT ?? 20000),
  },
  extend(io, { maybeAck }) {
    io.of("/").on("connection", (socket) => {
      socket.on("flaky", (key, ack) => {
        const n = (flakyCounts.get(key) ?? 0) + 1;
        flakyCounts.set(key, n);
        if (n >= 2) maybeAck(ack, n);
      });
      socket.on("count", (key, ack) => {
        maybeAck(ack, flakyCounts.get(key) ?? 0);
      });
    });
  },
});
