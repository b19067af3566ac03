'use strict';
// Pub/sub for a client: a connection of its own (opened with the first subscription), the
// channels and patterns subscribed with their listeners, and resubscription after every
// reconnect. The shared connection never enters subscriber mode.

// While subscriptions are held, a PING this often: a connection that died without a word
// (a host gone, a NAT entry dropped) is noticed by its missing answer within twice the
// commandTimeout, then reconnected and resubscribed, instead of after TCP keep-alive's
// minutes of silence.
const { ProtocolError, ClientClosedError } = require('../errors');

const PING_EVERY_MS = 15000;

/**
 * Rejects with the first error reply among a SUBSCRIBE-family command's replies, or when one
 * is not the confirmation Redis sends (["subscribe", channel, count] and the like).
 */
function confirmed(replies) {
  const refused = replies.find((r) => r instanceof Error);
  if (refused !== undefined) throw refused;
  for (const r of replies) {
    if (!Array.isArray(r) || r.length !== 3 || typeof r[0] !== 'string' || !r[0].endsWith('subscribe')) {
      throw new ProtocolError(`the server answered a subscription with ${JSON.stringify(r)}, not a confirmation`, 'ERR_PROTOCOL');
    }
  }
  return replies;
}

// A renewal that failed (the connection dropped again, a deadline) is tried again after this.
const RESUBSCRIBE_RETRY_MS = 500;

const KINDS = {
  channel: { subscribe: 'SUBSCRIBE', unsubscribe: 'UNSUBSCRIBE' },
  pattern: { subscribe: 'PSUBSCRIBE', unsubscribe: 'PUNSUBSCRIBE' },
  shard: { subscribe: 'SSUBSCRIBE', unsubscribe: 'SUNSUBSCRIBE' },
};

function names(what, api) {
  const list = Array.isArray(what) ? what : [what];
  if (list.length === 0) throw new TypeError(`${api}: no channel given`);
  for (const c of list) {
    if (typeof c !== 'string' || c.length === 0) {
      throw new TypeError(`${api}: a channel must be a non-empty string, got ${c === null ? 'null' : typeof c}`);
    }
  }
  return [...new Set(list)];
}

function bufferMode(options, api) {
  if (options === undefined || options === false) return false;
  if (options === true) return true;
  if (options !== null && typeof options === 'object' && Object.keys(options).every((k) => k === 'buffers')) {
    return options.buffers === true;
  }
  throw new TypeError(`${api}: the third argument must be { buffers: true } or a boolean`);
}

class Subscriptions {
  #parent; // the RedisClient whose events report messages and gaps
  #open; // () => a subscriber RedisClient
  #conn = null;
  // kind → Map(name → Set of { listener, buffers })
  #subs = { channel: new Map(), pattern: new Map(), shard: new Map() };
  // kind → Map(name → the promise of the SUBSCRIBE still in flight for it)
  #pending = { channel: new Map(), pattern: new Map(), shard: new Map() };
  #retryTimer = null;
  #lostAt = 0; // when the subscriber connection closed with subscriptions held (ms), or 0
  #closed = false;
  #pinger = null;

  #holdProcess;

  // holdProcess false: listening does not keep the process alive (a client's own watcher,
  // such as Sentinel's +switch-master, must not outlive the application's work).
  constructor(parent, open, { holdProcess = true } = {}) {
    this.#parent = parent;
    this.#open = open;
    this.#holdProcess = holdProcess;
  }

  #connection() {
    if (this.#conn !== null) return this.#conn;
    const conn = this.#open();
    conn._onPush = (parts) => this.#deliver(parts);
    conn._watch((type) => {
      if (type === 'close' && this.#count() > 0 && this.#lostAt === 0) this.#lostAt = Date.now();
      else if (type === 'connect' && this.#lostAt !== 0) this.#resubscribe();
    });
    this.#conn = conn;
    return conn;
  }

  // While anything is subscribed: a PING now and then (see PING_EVERY_MS), on a timer that
  // keeps the process alive as ioredis's subscriber socket does: a worker whose only job is
  // to listen must not exit, and the client must not be collected while it listens.
  #keepAlive() {
    const listening = this.#count() > 0 && !this.#closed;
    if (listening && this.#pinger === null) {
      this.#pinger = setInterval(() => {
        if (this.#conn !== null) this.#conn._command(0, 'PING').catch(() => {});
      }, PING_EVERY_MS);
      if (!this.#holdProcess) this.#pinger.unref();
    } else if (!listening && this.#pinger !== null) {
      clearInterval(this.#pinger);
      this.#pinger = null;
    }
  }

  #count() {
    return this.#subs.channel.size + this.#subs.pattern.size + this.#subs.shard.size;
  }

  // After a reconnect: every channel and pattern again, then a 'subscriptionGap' event
  // (messages published while the connection was down were not received).
  #resubscribe() {
    const from = this.#lostAt;
    const sent = [];
    for (const kind of Object.keys(KINDS)) {
      const list = [...this.#subs[kind].keys()];
      if (list.length === 0) continue;
      if (kind === 'shard' && this.#conn._isCluster) {
        // Shard channels live on their slot's node: one SSUBSCRIBE each.
        for (const name of list) sent.push(this.#conn._unitReplies(KINDS[kind].subscribe, [name]).then(confirmed));
      } else {
        sent.push(this.#conn._unitReplies(KINDS[kind].subscribe, list).then(confirmed));
      }
    }
    Promise.all(sent).then(
      () => {
        this.#lostAt = 0;
        this.#parent.emit('subscriptionGap', { from, to: Date.now(), ...this.list() });
      },
      // Tried again shortly, and on the next 'connect': the subscriptions must not stay
      // listed while nothing is subscribed.
      () => {
        if (this.#closed || this.#retryTimer !== null) return;
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = null;
          if (!this.#closed && this.#lostAt !== 0 && this.#conn !== null) this.#resubscribe();
        }, RESUBSCRIBE_RETRY_MS);
        this.#retryTimer.unref();
      },
    );
  }

  #deliver(parts) {
    const kind = parts[0].toString('latin1');
    let map;
    let pattern = null;
    let channel;
    let payload;
    if (kind === 'pmessage') {
      map = this.#subs.pattern;
      [, pattern, channel, payload] = parts;
    } else {
      map = kind === 'smessage' ? this.#subs.shard : this.#subs.channel;
      [, channel, payload] = parts;
    }
    // Each part decoded once.
    const channelText = channel.toString();
    const patternText = pattern === null ? null : pattern.toString();
    const text = payload.toString();
    // ioredis's events on the client, then each subscription's listeners.
    const parent = this.#parent;
    if (kind === 'pmessage') {
      parent.emit('pmessage', patternText, channelText, text);
      parent.emit('pmessageBuffer', pattern, channel, payload);
    } else {
      const event = kind === 'smessage' ? 'smessage' : 'message';
      parent.emit(event, channelText, text);
      parent.emit(`${event}Buffer`, channel, payload);
    }
    const entries = map.get(patternText ?? channelText);
    if (entries === undefined) return;
    for (const { listener, buffers } of entries) {
      try {
        if (buffers) listener(payload, channel, pattern);
        else listener(text, channelText, patternText);
      } catch (err) {
        process.nextTick(() => { throw err; });
      }
    }
  }

  /** Adds `listener` to each name; subscribes to those not yet subscribed. */
  subscribe(kind, what, listener, options) {
    const api = KINDS[kind].subscribe.toLowerCase();
    if (this.#closed) return Promise.reject(closedError(api));
    const list = names(what, api);
    if (listener !== undefined && typeof listener !== 'function') throw new TypeError(`${api}: the listener must be a function`);
    const buffers = bufferMode(options, api);
    const subs = this.#subs[kind];
    const pending = this.#pending[kind];
    const fresh = list.filter((n) => !subs.has(n));
    // Names another call is still subscribing: this one settles with that call.
    const waits = list.filter((n) => pending.has(n)).map((n) => pending.get(n));
    for (const n of list) {
      if (!subs.has(n)) subs.set(n, new Set());
      if (listener !== undefined && ![...subs.get(n)].some((e) => e.listener === listener && e.buffers === buffers)) {
        subs.get(n).add({ listener, buffers });
      }
    }
    this.#keepAlive();
    if (fresh.length > 0) {
      const conn = this.#connection();
      const done = conn._unitReplies(KINDS[kind].subscribe, fresh).then(confirmed).then(
        () => {
          for (const n of fresh) pending.delete(n);
        },
        (err) => {
          // Not subscribed: the names this call added go again, with every listener added
          // meanwhile (their calls reject too), so a later subscribe() sends them again.
          for (const n of fresh) {
            subs.delete(n);
            pending.delete(n);
          }
          this.#keepAlive();
          // A deadline says nothing of whether Redis subscribed: undo it, in case.
          if (err && err.code === 'ETIMEDOUT') conn._unitReplies(KINDS[kind].unsubscribe, fresh).catch(() => {});
          throw err;
        },
      );
      for (const n of fresh) pending.set(n, done);
      waits.push(done);
    }
    return Promise.all(waits).then(() => this.#count());
  }

  /**
   * Removes `listener` (or every listener when none is given) from each name (every name of
   * the kind when none is given); unsubscribes from names left without listeners.
   */
  unsubscribe(kind, what, listener) {
    const api = KINDS[kind].unsubscribe.toLowerCase();
    const subs = this.#subs[kind];
    const list = what === undefined || (Array.isArray(what) && what.length === 0) ? [...subs.keys()] : names(what, api);
    const gone = [];
    for (const n of list) {
      const entries = subs.get(n);
      if (entries === undefined) continue;
      if (listener !== undefined) {
        for (const e of entries) if (e.listener === listener) entries.delete(e);
      } else {
        entries.clear();
      }
      if (entries.size === 0) {
        subs.delete(n);
        gone.push(n);
      }
    }
    this.#keepAlive();
    if (gone.length === 0 || this.#conn === null) return Promise.resolve(this.#count());
    return this.#conn._unitReplies(KINDS[kind].unsubscribe, gone).then(() => this.#count(), (err) => {
      // Unsubscribed here whatever happened: a message for it is no longer delivered.
      if (err && err.code === 'ERR_CLIENT_CLOSED') return this.#count();
      throw err;
    });
  }

  /**
   * For health(): the subscriber connection's state, how many names of each kind are held,
   * and since when they are being renewed after a lost connection (null when they are not).
   */
  status() {
    const conn = this.#conn;
    const s = conn === null ? null : conn.status();
    return {
      state: s === null ? 'idle' : s.state,
      channels: this.#subs.channel.size,
      patterns: this.#subs.pattern.size,
      shardChannels: this.#subs.shard.size,
      renewingSince: this.#lostAt === 0 ? null : this.#lostAt,
      lastError: s === null ? null : s.lastError,
    };
  }

  /** The subscribed names of each kind. */
  list() {
    return {
      channels: [...this.#subs.channel.keys()],
      patterns: [...this.#subs.pattern.keys()],
      shardChannels: [...this.#subs.shard.keys()],
    };
  }

  /** Closes the subscriber connection (quit: graceful; otherwise at once). */
  close(graceful) {
    this.#closed = true;
    this.#keepAlive();
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const conn = this.#conn;
    this.#conn = null;
    if (conn === null) return Promise.resolve();
    if (graceful) return conn.quit();
    conn.disconnect();
    return Promise.resolve();
  }
}

function closedError(api) {
  return new ClientClosedError(`${api}: the client was closed`, 'ERR_CLIENT_CLOSED');
}

module.exports = { Subscriptions };
