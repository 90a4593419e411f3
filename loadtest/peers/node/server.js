// Node socket.io 4.8 peer for the ringio load harness. Implements exactly the bench handler set
// of bench-handlers.md (the set `ringio serve` runs), listening on $PORT (default 3000).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = parseInt(process.env.PORT || "3000", 10);
const host = process.env.HOST || "0.0.0.0";

const httpServer = http.createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

// one counter per server process: every receiver of one `bcast` sees the seq its ack returned
let seq = 0;
// wall clock ms as a float
const nowMs = () => performance.timeOrigin + performance.now();

// splits a trailing ack callback off the arguments
function splitAck(args) {
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

io.on("connection", (socket) => {
  socket.on("echo", (...all) => {
    const [args, ack] = splitAck(all);
    if (ack) ack(...args);
    else socket.emit("echo", ...args);
  });
  socket.on("join", (...all) => {
    const [args, ack] = splitAck(all);
    socket.join(args[0]);
    if (ack) ack(true);
  });
  socket.on("leave", (...all) => {
    const [args, ack] = splitAck(all);
    socket.leave(args[0]);
    if (ack) ack(true);
  });
  socket.on("bcast", (...all) => {
    const [args, ack] = splitAck(all);
    const room = args[0];
    const n = ++seq;
    const payload = { seq: n, t: nowMs() };
    // a room includes the sender when it is a member; null reaches every socket on "/"
    if (room !== undefined && room !== null) io.to(room).emit("b", payload);
    else io.emit("b", payload);
    if (ack) ack(n);
  });
  socket.on("bcast-payload", (...all) => {
    const [args, ack] = splitAck(all);
    const room = args[0];
    const payload = args[1];
    if (room !== undefined && room !== null) io.to(room).emit("b", payload);
    else io.emit("b", payload);
    if (ack) ack(true);
  });
  socket.on("to-room", (...all) => {
    // everyone in the room except the sender
    const [args, ack] = splitAck(all);
    socket.to(args[0]).emit("b", args[1]);
    if (ack) ack(true);
  });
  socket.on("disconnect-me", () => {
    // Socket.IO DISCONNECT for "/" only; the Engine.IO session stays open
    socket.disconnect();
  });
});

io.of("/chat").on("connection", (socket) => {
  socket.on("message", (text) => {
    socket.broadcast.emit("message", { from: socket.id, text });
  });
});

httpServer.listen(port, host, () => {
  console.error(`node socket.io ${require("socket.io/package.json").version} listening on ${host}:${port}`);
});

function stop() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
