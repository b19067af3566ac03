'use strict';
// A loopback port where a TCP connect neither succeeds nor fails: a redis-server started
// with a listen backlog of 0, stopped with SIGSTOP so it never accepts, and one filler
// connection occupying the only backlog slot. The kernel then drops further SYNs, so a
// connect to this port hangs until the client's own connect deadline, as it would
// towards a firewalled host.
const net = require('net');
const { startRedis } = require('./redis-server');

/** Resolves with { port, url, close() }. */
async function startBlackhole() {
  const server = await startRedis({ args: ['--tcp-backlog', '0'] });
  process.kill(server.pid, 'SIGSTOP');
  const filler = net.connect({ port: server.port, host: '127.0.0.1' });
  filler.on('error', () => {});
  await new Promise((resolve, reject) => {
    filler.once('connect', resolve);
    filler.once('error', reject);
  });
  return {
    port: server.port,
    url: `redis://127.0.0.1:${server.port}`,
    async close() {
      filler.destroy();
      process.kill(server.pid, 'SIGCONT');
      await server.stop();
    },
  };
}

module.exports = { startBlackhole };
