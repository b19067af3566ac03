'use strict';
// A probe whose answer comes after its timeout (the server was slow, not gone) must not
// leave the breaker open for good. Here the breaker opens because the server was
// unreachable (two connections dropped at once); the connection comes back, its PING probe
// is answered after the probe timed out, and nothing else would probe again (only a breaker
// opened by failures waits for a timed probe): the late answer itself closes the breaker.
const net = require('net');
const { createClient } = require('../../lib/redis');
const { waitFor } = require('../helpers/async');

test('a probe answered after its timeout still closes a breaker opened because Redis was unreachable', async () => {
  let accepted = 0;
  let pings = 0;
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    accepted += 1;
    if (accepted <= 2) {
      socket.destroy(); // dropped as soon as it is made: Redis counts as unreachable
      return;
    }
    socket.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      const count = (re) => (text.match(re) || []).length;
      for (let i = count(/PING\r\n/g); i > 0; i--) {
        pings += 1;
        // The probe's answer comes after the probe timeout (commandTimeout, 300 ms) but
        // before the connection would count as dead (twice that).
        setTimeout(() => socket.write('+PONG\r\n'), 450);
      }
      for (let i = count(/GET\r\n/g); i > 0; i--) socket.write('$-1\r\n');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = createClient({
    port: server.address().port, logger: false, commandTimeout: 300, reconnectBaseDelay: 20, reconnectMaxDelay: 20,
    breaker: { openMs: 200, maxOpenMs: 400 },
  });
  const states = [];
  client.on('breaker', ({ state, reason }) => states.push(`${state}/${reason}`));
  client.on('error', () => {});
  try {
    client.call('GET', 'k').catch(() => {});
    await waitFor(() => pings >= 1, { what: 'the first probe' });
    await waitFor(() => client.breakerState === 'closed', { timeoutMs: 5000, what: `the breaker to close (${states.join(' ')})` });
    expect(pings).toBe(1);
    expect(states).toEqual(['open/unreachable', 'half-open/unreachable', 'open/unreachable', 'closed/null']);
    expect(client.status().state).toBe('ready');
    expect(await client.call('GET', 'k')).toBeNull();
  } finally {
    client.disconnect();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
