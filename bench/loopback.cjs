// Preloaded into Portkey's gateway (node --require) so it listens on 127.0.0.1 only.
// Its start-server.js passes a port but no host, and Node would then bind every interface;
// the benchmark's rule is that every server binds loopback. This rewrites listen() calls that
// name no host; it changes nothing else.
"use strict";
const net = require("net");

const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    if (first.port !== undefined && first.host === undefined && first.path === undefined) {
      args[0] = Object.assign({}, first, { host: "127.0.0.1" });
    }
  } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (args[1] === undefined || args[1] === null) {
      args[1] = "127.0.0.1"; // listen(port, undefined, cb): hono's node-server passes no hostname
    } else if (typeof args[1] !== "string") {
      args.splice(1, 0, "127.0.0.1"); // listen(port, cb) or listen(port, backlog, cb)
    }
  }
  return originalListen.apply(this, args);
};
