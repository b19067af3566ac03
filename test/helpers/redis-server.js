'use strict';
// Starts a real redis-server for tests and benchmarks: on a free loopback port, in a
// temporary folder, with persistence off. Used by Jest's global setup, by individual
// suites that need a server of their own (restarts, AUTH, ACL) and by bench/.
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

/** Resolves with a TCP port that was free on 127.0.0.1 a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function redisServerBinary() {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (fs.existsSync(p)) return p;
  const r = spawnSync('which', ['redis-server'], { encoding: 'utf8' });
  if (r.status === 0) return r.stdout.trim();
  throw new Error('redis-server is not installed: run `npm test` as root once, or `apt-get install -y redis-server`');
}

function ping(port, timeoutMs = 200) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    // A server that demands AUTH answers -NOAUTH, which still proves it is up.
    sock.on('data', (d) => { buf += d; if (buf.includes('\r\n')) done(/^(\+PONG|-NOAUTH)/.test(buf)); });
  });
}

/**
 * Starts redis-server and resolves when it answers.
 * options.port: a fixed port (to restart a server on the port it had); default a free one.
 * options.args: extra command-line arguments (e.g. ['--requirepass', 'secret']).
 * options.dir: the working folder; default a new temporary one.
 * options.listenArgs: the arguments that open its listener instead of ['--port', port]
 *   (test/helpers/tls.js passes ['--port', '0', '--tls-port', port, …]).
 * options.probe: async (port) => whether it answers; default ping(port), plain RESP.
 * Resolves with { port, host, url, dir, pid, stop(), kill() }.
 */
async function startRedis(options = {}) {
  const port = options.port || (await freePort());
  const dir = options.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-redis-'));
  const args = [
    ...(options.listenArgs || ['--port', String(port)]), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning',
    '--logfile', path.join(dir, 'redis.log'),
    ...(options.args || []),
  ];
  const child = spawn(redisServerBinary(), args, { stdio: 'ignore', detached: false });
  let exited = false;
  child.on('exit', () => { exited = true; });
  const deadline = Date.now() + 10000;
  const probe = options.probe || ping;
  while (!(await probe(port))) {
    if (exited) throw new Error(`redis-server exited at start; see ${path.join(dir, 'redis.log')}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('redis-server did not answer within 10 s'); }
    await new Promise((r) => setTimeout(r, 25));
  }
  const waitExit = () => new Promise((resolve) => (exited ? resolve() : child.once('exit', resolve)));
  return {
    port,
    host: '127.0.0.1',
    url: `redis://127.0.0.1:${port}`,
    dir,
    pid: child.pid,
    /** Stops the server (SIGTERM) and removes its folder unless keepDir. */
    async stop({ keepDir = false } = {}) {
      if (!exited) child.kill('SIGTERM');
      await waitExit();
      if (!keepDir && !options.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
    /** Kills the server at once (SIGKILL), as a crash would; the folder stays. */
    async kill() {
      if (!exited) child.kill('SIGKILL');
      await waitExit();
    },
  };
}

module.exports = { startRedis, freePort, ping };
