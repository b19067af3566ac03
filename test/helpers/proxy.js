'use strict';
// An in-process TCP proxy that sits between the client under test and redis-server so a
// suite can inject faults: delay chunks, hold them (stop forwarding), cut every
// connection, reset them (RST), refuse new connections, and count what it saw.
//
//   const proxy = await createProxy({ port: server.port });
//   const client = createClient({ url: proxy.url });
//   proxy.hold('toClient');   // replies stop here; commands still reach the server
//   proxy.release();          // held chunks go on, in order
//   proxy.cut();              // every open connection is destroyed
//   await proxy.close();
//
// Directions: 'toServer' (client -> redis), 'toClient' (redis -> client), 'both'.
const net = require('net');

const DIRECTIONS = ['toServer', 'toClient'];

function directionsOf(direction) {
  if (direction === 'both') return DIRECTIONS;
  if (DIRECTIONS.includes(direction)) return [direction];
  throw new TypeError(`proxy: direction must be 'toServer', 'toClient' or 'both', got ${direction}`);
}

/**
 * One accepted client connection and its upstream connection. Chunks of each direction
 * go through one ordered queue so that delays and holds never reorder bytes.
 */
class ProxiedConnection {
  constructor(proxy, clientSocket) {
    this.proxy = proxy;
    this.client = clientSocket;
    this.server = net.connect({ port: proxy.targetPort, host: proxy.targetHost });
    this.closed = false;
    this.queues = { toServer: [], toClient: [] };
    this.timers = { toServer: null, toClient: null };
    this.client.setNoDelay(true);
    this.server.setNoDelay(true);

    // A side that ends (FIN) has its last chunks delivered, through any delay or hold,
    // before the other side is ended; a side that fails or closes without ending destroys
    // the pair at once, as a broken network path would.
    this.ending = { toServer: false, toClient: false };
    this.client.on('data', (chunk) => this.push('toServer', chunk));
    this.server.on('data', (chunk) => this.push('toClient', chunk));
    this.client.on('end', () => this.end('toServer'));
    this.server.on('end', () => this.end('toClient'));
    this.client.on('error', () => this.destroy());
    this.server.on('error', () => this.destroy());
    this.client.on('close', () => this.destroy());
    this.server.on('close', () => {
      if (!this.ending.toClient) this.destroy();
    });
  }

  end(dir) {
    this.ending[dir] = true;
    this.pump(dir);
  }

  push(dir, chunk) {
    if (this.closed) return;
    const stats = this.proxy.stats[dir];
    stats.chunks += 1;
    stats.bytes += chunk.length;
    this.queues[dir].push({ chunk, due: Date.now() + this.proxy.delays[dir] });
    this.pump(dir);
  }

  /** Writes every queued chunk of one direction that is due and not held, in order. */
  pump(dir) {
    if (this.closed || this.timers[dir]) return;
    const queue = this.queues[dir];
    const out = dir === 'toServer' ? this.server : this.client;
    while (queue.length && !this.proxy.held[dir]) {
      const wait = queue[0].due - Date.now();
      if (wait > 0) {
        this.timers[dir] = setTimeout(() => {
          this.timers[dir] = null;
          this.pump(dir);
        }, wait);
        return;
      }
      out.write(queue.shift().chunk);
    }
    if (queue.length === 0 && this.ending[dir] && !this.proxy.held[dir]) out.end();
  }

  destroy({ reset = false } = {}) {
    if (this.closed) return;
    this.closed = true;
    for (const dir of DIRECTIONS) {
      clearTimeout(this.timers[dir]);
      this.queues[dir] = [];
    }
    if (reset && typeof this.client.resetAndDestroy === 'function') this.client.resetAndDestroy();
    else this.client.destroy();
    this.server.destroy();
    this.proxy.connections.delete(this);
  }
}

class Proxy {
  constructor({ port, host = '127.0.0.1' }) {
    this.targetPort = port;
    this.targetHost = host;
    this.port = 0;
    this.connections = new Set();
    this.listener = null;
    /** How many client connections the proxy has accepted since it started. */
    this.accepted = 0;
    this.delays = { toServer: 0, toClient: 0 };
    this.held = { toServer: false, toClient: false };
    this.stats = { toServer: { chunks: 0, bytes: 0 }, toClient: { chunks: 0, bytes: 0 } };
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Connections open right now. */
  get open() {
    return this.connections.size;
  }

  async listen() {
    const server = net.createServer((socket) => {
      this.accepted += 1;
      this.connections.add(new ProxiedConnection(this, socket));
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = server.address().port;
    this.listener = server;
    return this;
  }

  /** Delays every chunk of `direction` by ms from now on (0 restores plain forwarding). */
  delay(ms, direction = 'both') {
    for (const dir of directionsOf(direction)) this.delays[dir] = ms;
    return this;
  }

  /** Stops forwarding `direction`; chunks wait in the proxy until release(). */
  hold(direction = 'both') {
    for (const dir of directionsOf(direction)) this.held[dir] = true;
    return this;
  }

  /** Resumes forwarding `direction` and sends what was held, in order. */
  release(direction = 'both') {
    for (const dir of directionsOf(direction)) {
      this.held[dir] = false;
      for (const conn of this.connections) conn.pump(dir);
    }
    return this;
  }

  /** Destroys every open connection (both sides); held chunks are dropped. */
  cut() {
    for (const conn of [...this.connections]) conn.destroy();
    return this;
  }

  /** Resets every open connection: the client side gets an RST (ECONNRESET). */
  reset() {
    for (const conn of [...this.connections]) conn.destroy({ reset: true });
    return this;
  }

  /**
   * Stops listening: new connections are refused (ECONNREFUSED); open ones stay.
   * accept() listens again on the same port.
   */
  async refuse() {
    const server = this.listener;
    this.listener = null;
    // close() shuts the listening socket now; its callback would wait for the open
    // connections, which refuse() keeps, so only wait for the handle to go.
    if (server) {
      server.close();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return this;
  }

  async accept() {
    if (!this.listener) await this.listen();
    return this;
  }

  /** Closes the listener and every connection; the proxy cannot be used afterwards. */
  async close() {
    this.cut();
    const server = this.listener;
    this.listener = null;
    if (server) await new Promise((resolve) => server.close(() => resolve()));
  }
}

/**
 * Starts a proxy on a free loopback port that forwards to { port, host }.
 * Resolves with the Proxy (see the methods above).
 */
function createProxy(target) {
  return new Proxy(target).listen();
}

module.exports = { createProxy, Proxy };
