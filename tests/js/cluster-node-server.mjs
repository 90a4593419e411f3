// A Node socket.io 4.8 server in a Redis cluster (@socket.io/redis-adapter), with the reference
// handler set plus the cluster handlers of ringio's demo set (src/demo.rs `cluster`): the
// mixed-cluster tests (tests/cluster.rs) and the cluster benchmark (scripts/cluster-bench.mjs)
// run it beside ringio nodes.
//
//   PORT=4001 REDIS_URL=redis://127.0.0.1:6379 [SHARDED=1] node tests/js/cluster-node-server.mjs

import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { startReferenceServer } from "./reference-server.mjs";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const sharded = process.env.SHARDED === "1";
const pub = createClient({ url });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on("error", () => {});
await Promise.all([pub.connect(), sub.connect()]);
const adapter = sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);

function select(io, sel = {}) {
  let op = io.of("/");
  for (const r of sel.to ?? []) op = op.to(r);
  for (const r of sel.except ?? []) op = op.except(r);
  if (sel.volatile) op = op.volatile;
  if (sel.thisNode) op = op.local;
  return op;
}

startReferenceServer({
  label: `cluster node (${sharded ? "sharded" : "classic"} redis adapter)`,
  options: { adapter },
  extend(io) {
    const root = io.of("/");
    root.on("ping", (x, ack) => ack(["pong", x]));
    root.on("notify", (x) => root.local.emit("notified", x));
    root.on("connection", (socket) => {
      socket.on("c-emit", (sel, payload, ack) => {
        select(io, sel).emit("c", payload);
        ack(true);
      });
      socket.on("c-fetch", async (sel, ack) => {
        const found = (await select(io, sel).fetchSockets()).map((s) => ({
          id: s.id,
          rooms: [...s.rooms],
          remote: s.constructor.name === "RemoteSocket",
        }));
        found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        ack(found);
      });
      socket.on("c-join", (sel, room, ack) => {
        select(io, sel).socketsJoin(room);
        ack(true);
      });
      socket.on("c-leave", (sel, room, ack) => {
        select(io, sel).socketsLeave(room);
        ack(true);
      });
      socket.on("c-disconnect", (sel, close, ack) => {
        select(io, sel).disconnectSockets(close);
        ack(true);
      });
      socket.on("c-sse", async (event, arg, ack) => {
        try {
          ack({ ok: true, responses: await root.serverSideEmitWithAck(event, arg) });
        } catch (e) {
          ack({ ok: false, responses: e.responses ?? [] });
        }
      });
      socket.on("c-sse-noack", (event, arg, ack) => {
        root.serverSideEmit(event, arg);
        ack(true);
      });
      socket.on("c-ask", async (sel, ms, ack) => {
        try {
          ack({ ok: true, responses: await select(io, sel).timeout(ms).emitWithAck("vote", "q") });
        } catch (e) {
          ack({ ok: false, responses: [] });
        }
      });
      // the sharded adapter has no allRooms: this node's rooms, as its users would get
      socket.on("c-rooms", async (ack) => {
        const all = root.adapter.allRooms ? await root.adapter.allRooms() : root.adapter.rooms.keys();
        ack([...all].sort());
      });
      socket.on("c-count", async (ack) => ack(await root.adapter.serverCount()));
      socket.on("c-remote", async (id, action, arg, ack) => {
        const found = await root.to(id).fetchSockets();
        for (const s of found) {
          if (action === "emit") s.emit("c", arg);
          else if (action === "join") s.join(arg);
          else if (action === "leave") s.leave(arg);
          else s.disconnect(arg === "close");
        }
        ack(found.length);
      });
    });
  },
});
