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

/** Reads and discards everything; answers nothing. */
function silentServer() {
  return listen((socket) => socket.on('data', () => {}));
}

/** Accepts and never reads: the kernel's buffers fill, then the client's writes wait. */
function nonReadingServer() {
  return listen((socket) => socket.pause());
}

module.exports = { scriptedServer, silentServer, nonReadingServer };
