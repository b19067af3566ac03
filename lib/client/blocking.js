'use strict';
// Blocking commands (BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD … BLOCK …) on connections of
// their own: on the shared, pipelined connection one BLPOP would hold every command queued
// behind it for as long as it waits. A small pool, opened lazily, one command at a time per
// connection; calls beyond it wait their turn (at most maxQueue of them).
const { CommandTimeoutError, QueueFullError, ClientClosedError } = require('../errors');
const { clientConstants } = require('../binding');

const { BLOCKING } = clientConstants.commandFlags;

/**
 * Sends one blocking command on `conn` without the client's deadline (the core neither times
 * it out nor takes its silence for a stall); `timeoutMs` is its own timeout (0: it waits
 * forever). If no reply came `guardMs` after that, `conn` is dropped and the call fails
 * with ETIMEDOUT.
 */
async function runBlocking(conn, flags, name, args, timeoutMs, guardMs) {
  let timer = null;
  let timedOut = false;
  try {
    const reply = conn._command(flags | BLOCKING, name, ...args);
    if (timeoutMs > 0 && guardMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        conn.disconnect();
      }, timeoutMs + guardMs);
    }
    return await reply;
  } catch (err) {
    if (timedOut) {
      throw new CommandTimeoutError(`${name} had no reply ${guardMs} ms after its own timeout of ${timeoutMs} ms; ` +
        'its connection was dropped (the command may or may not have run)', 'ETIMEDOUT');
    }
    throw err;
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

class BlockingPool {
  #open; // () => a RedisClient of its own (no reconnect, no breaker, no command deadline)
  #max;
  #maxWaiting;
  #guardMs; // the client's commandTimeout: how long past its own timeout a command may take
  #idle = [];
  #busy = new Set();
  #waiting = [];
  #closed = false;

  constructor(open, { max, maxWaiting, guardMs }) {
    this.#open = open;
    this.#max = max;
    this.#maxWaiting = maxWaiting;
    this.#guardMs = guardMs;
  }

  /** Runs one blocking command on a connection of the pool (see runBlocking). */
  async run(flags, name, args, timeoutMs) {
    if (this.#closed) throw new ClientClosedError(`${name}: the client was closed`, 'ERR_CLIENT_CLOSED');
    const conn = await this.#acquire(name);
    try {
      return await runBlocking(conn, flags, name, args, timeoutMs, this.#guardMs);
    } finally {
      this.#release(conn);
    }
  }

  #acquire(name) {
    while (this.#idle.length > 0) {
      const conn = this.#idle.pop();
      if (conn.status().state !== 'closed') {
        this.#busy.add(conn);
        return Promise.resolve(conn);
      }
    }
    if (this.#busy.size < this.#max) {
      const conn = this.#open();
      this.#busy.add(conn);
      return Promise.resolve(conn);
    }
    if (this.#waiting.length >= this.#maxWaiting) {
      return Promise.reject(new QueueFullError(`${name} refused: all ${this.#max} blocking connections are busy and ` +
        `${this.#waiting.length} blocking commands already wait for one (maxQueue ${this.#maxWaiting}; ` +
        'raise maxBlockingConnections)', 'ERR_QUEUE_FULL'));
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  #release(conn) {
    this.#busy.delete(conn);
    const alive = conn.status().state !== 'closed' && !this.#closed;
    const next = this.#waiting.shift();
    if (next !== undefined) {
      const c = alive ? conn : this.#open();
      this.#busy.add(c);
      next.resolve(c);
    } else if (alive) {
      this.#idle.push(conn);
    }
  }

  /** Closes every connection; waiting calls fail. */
  close(graceful) {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new ClientClosedError('the client was closed', 'ERR_CLIENT_CLOSED'));
    const all = [...this.#idle, ...this.#busy];
    this.#idle = [];
    return Promise.all(all.map((c) => (graceful && !this.#busy.has(c) ? c.quit() : Promise.resolve(c.disconnect()))));
  }
}

module.exports = { BlockingPool, runBlocking };
