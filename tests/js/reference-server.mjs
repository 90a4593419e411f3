// Reference implementation (Node socket.io 4.8) of the handler set that
// interop.test.mjs expects. ringio must implement the same handlers.
//
//   PORT=3123 node tests/js/reference-server.mjs
//   RINGIO_URL=http://127.0.0.1:3123 node --test tests/js/interop.test.mjs
//
// `startReferenceServer()` is also imported by client-peer.mjs, which adds handlers on top.

import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { Server } from "socket.io";

/**
 * Starts the reference handler set on PORT/HOST (environment). `options` go to socket.io's
 * Server; `extend(io)` may add handlers; `label` names the server in its start-up line.
 */
export function startReferenceServer({
  options = {},
  extend = () => {},
  label = "reference server",
  httpServer = createServer(),
} = {}) {
  const PORT = Number(process.env.PORT ?? 3000);
  const HOST = process.env.HOST ?? "127.0.0.1";

  const io = new Server(httpServer, {
    cors: { origin: "*" },
    ...options,
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

  // Calls `ack(value)` only if the client asked for an acknowledgement.
  function maybeAck(ack, ...values) {
    if (typeof ack === "function") ack(...values);
  }

  let bcastCounter = 0;

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

    // Namespace-level disconnect: the Engine.IO connection stays open.
    socket.on("disconnect-me", () => {
      socket.disconnect();
    });

    // Close the whole Engine.IO connection, like a network loss.
    socket.on("drop-transport", () => {
      socket.conn.close();
    });

    socket.on("except-me", (room, payload, ack) => {
      socket.to(room).emit("b", payload);
      maybeAck(ack, true);
    });

    socket.on("disconnect-all", () => {
      socket.disconnect(true);
    });

    socket.on("ask", (x, ack) => {
      socket.timeout(500).emit("question", x, (err, answer) => {
        maybeAck(ack, err ? "timeout" : answer);
      });
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

  extend(io, { maybeAck, echoHandler });

  httpServer.listen(PORT, HOST, () => {
    console.log(`socket.io ${label} listening on http://${HOST}:${PORT}`);
  });

  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      io.close();
      httpServer.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 500).unref();
    });
  }
  return io;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  // optional: ALLOW_EIO3=1 (socket.io-client 2.x), PING_INTERVAL / PING_TIMEOUT (ms)
  const options = {};
  if (process.env.ALLOW_EIO3) options.allowEIO3 = true;
  if (process.env.PING_INTERVAL) options.pingInterval = Number(process.env.PING_INTERVAL);
  if (process.env.PING_TIMEOUT) options.pingTimeout = Number(process.env.PING_TIMEOUT);
  startReferenceServer({ options });
}
