// Node socket.io 4.8 peer for the Rust client tests (tests/client.rs): the handler set of
// reference-server.mjs plus what those tests need on top of it.
//
//   PORT=3123 HOST=127.0.0.1 node tests/js/client-peer.mjs
//
// Extra handlers:
//   /chat  message (text)      broadcast "message" {from: socket.id, text} to the others
//   /      flaky (key, ack?)   acks only from the second time a key is received (retries test)
//   /      count (key, ack)    ack(number of times `key` was received by flaky)
//
// Optional environment: PING_INTERVAL, PING_TIMEOUT (ms, Engine.IO heartbeat) and
// KEEP_ALIVE_TIMEOUT (ms, Node's idle keep-alive limit for HTTP connections).

import { createServer } from "node:http";
import { Server } from "socket.io";

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? "127.0.0.1";

const httpServer = createServer();
if (process.env.KEEP_ALIVE_TIMEOUT) {
  httpServer.keepAliveTimeout = Number(process.env.KEEP_ALIVE_TIMEOUT);
}
const io = new Server(httpServer, {
  cors: { origin: "*" },
  pingInterval: Number(process.env.PING_INTERVAL ?? 25000),
  pingTimeout: Number(process.env.PING_TIMEOUT ?? 20000),
});

function echoHandler(socket) {
  socket.on("echo", (...args) => {
    const last = args[args.length - 1];
    if (typeof last === "function") {
      const ack = args.pop();
      ack(...args);
    } else {
      socket.emit("echo", ...args);
    }
  });
}

function maybeAck(ack, ...values) {
  if (typeof ack === "function") ack(...values);
}

let bcastCounter = 0;
const flakyCounts = new Map();

const root = io.of("/");
root.on("connection", (socket) => {
  echoHandler(socket);

  socket.on("join", (room, ack) => {
    socket.join(room);
    maybeAck(ack, true);
  });

  socket.on("leave", (room, ack) => {
    socket.leave(room);
    maybeAck(ack, true);
  });

  socket.on("bcast", (room, ack) => {
    const n = ++bcastCounter;
    const target = room == null ? root : root.to(room);
    target.emit("b", { seq: n, t: Date.now() });
    maybeAck(ack, n);
  });

  socket.on("bcast-payload", (room, payload, ack) => {
    const target = room == null ? root : root.to(room);
    target.emit("b", payload);
    maybeAck(ack, true);
  });

  socket.on("disconnect-me", () => {
    socket.disconnect();
  });

  socket.on("drop-transport", () => {
    socket.conn.close();
  });

  socket.on("ask", (x, ack) => {
    socket.timeout(500).emit("question", x, (err, answer) => {
      maybeAck(ack, err ? "timeout" : answer);
    });
  });

  socket.on("flaky", (key, ack) => {
    const n = (flakyCounts.get(key) ?? 0) + 1;
    flakyCounts.set(key, n);
    if (n >= 2) maybeAck(ack, n);
  });

  socket.on("count", (key, ack) => {
    maybeAck(ack, flakyCounts.get(key) ?? 0);
  });
});

io.of("/custom").on("connection", (socket) => {
  echoHandler(socket);
});

io.of("/chat").on("connection", (socket) => {
  socket.on("message", (text) => {
    socket.broadcast.emit("message", { from: socket.id, text });
  });
});

const secure = io.of("/secure");
secure.use((socket, next) => {
  const auth = socket.handshake.auth;
  if (auth && auth.token === "secret") {
    next();
  } else {
    const err = new Error("not authorized");
    err.data = { code: 401 };
    next(err);
  }
});
secure.on("connection", (socket) => {
  socket.emit("welcome", socket.handshake.auth);
});

httpServer.listen(PORT, HOST, () => {
  console.log(`socket.io client peer listening on http://${HOST}:${PORT}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
