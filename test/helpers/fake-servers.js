'use strict';
// Loopback TCP servers that misbehave on purpose, for the fault tests: one that answers
// every command with bytes of the test's choosing, one that reads and never answers, one
// that never reads at all. Each resolves with { url, port, sockets, close() }.
const net = require('net');

/** Listens with `onSocket` for each connection; close() destroys every open socket. */
async function listen(onSocket) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Answers each command it reads with `reply(n)` (n counts commands on the connection; a
 * falsy result answers nothing). Commands are counted by the '*' that starts each one, so
 * arguments must not contain '*'.
 */
function scriptedServer(reply) {
  return listen((socket) => {
    let n = 0;
    socket.on('data', (chunk) => {
      for (const byte of chunk) {
        if (byte === 0x2a) {
          const out = reply(n++);
          if (out) socket.write(out);
        }
      }
    });
  });
}

/**
 * Parses the RESP commands a client sends and answers each with `handle(argv, conn)`:
 * argv is an array of strings, conn is { index, socket } (index counts connections from 0).
 * A null or undefined answer sends nothing. Resolves with the listener's { url, port,
 * sockets, close() } plus `connections` (every conn so far).
 */
async function commandServer(handle) {
  const connections = [];
  const server = await listen((socket) => {
    const conn = { index: connections.length, socket };
    connections.push(conn);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = parseCommand(pending);
        if (parsed === null) return;
        pending = pending.subarray(parsed.end);
        const out = handle(parsed.argv, conn);
        if (out !== null && out !== undefined && !socket.destroyed) socket.write(out);
      }
    });
  });
  return { ...server, connections };
}

/** One RESP array of bulk strings from the start of `buf`: { argv, end }, or null if incomplete. */
function parseCommand(buf) {
  if (buf.length === 0) return null;
  let at = buf.indexOf('\r\n');
  if (at === -1) return null;
  const count = Number(buf.subarray(1, at).toString());
  let pos = at + 2;
  const argv = [];
  for (let i = 0; i < count; i++) {
    at = buf.indexOf('\r\n', pos);
    if (at === -1) return null;
    const len = Number(buf.subarray(pos + 1, at).toString());
    if (buf.length < at + 2 + len + 2) return null;
    argv.push(buf.subarray(at + 2, at + 2 + len).toString());
    pos = at + 2 + len + 2;
  }
  return { argv, end: pos };
}

/** Reads and discards everything; answers nothing. */
function silentServer() {
  return listen((socket) => socket.on('data', () => {}));
}

/** Accepts and never reads: the kernel's buffers fill, then the client's writes wait. */
function nonReadingServer() {
  return listen((socket) => socket.pause());
}

module.exports = { scriptedServer, commandServer, silentServer, nonReadingServer };
