'use strict';
// RedisClient: the JS face of the native client. Commands are queued by the C++ core and
// written once per turn of the event loop; every returned promise settles.
const util = require('util');
const { EventEmitter } = require('events');
const binding = require('../binding');
const { resolveConfig } = require('./config');
const { nativeError, ConfigError, CommandRefusedError, ClientClosedError } = require('../errors');
const { refusal, isBlocking, blockingTimeoutMs, upper, SPECIAL } = require('./rules');
const { Multi, Pipeline } = require('./batch');
const { Subscriptions } = require('./pubsub');
const { BlockingPool, runBlocking } = require('./blocking');

// Flags understood by the native command(), as the addon defines them.
const { REPLY_BUFFERS, SOFT_FAIL, REPLY_IS_OK, REPLY_LATIN1, BREAKER_EARLY, UNSENT_EARLY } = binding.clientConstants.commandFlags;
const { createLogSink } = require('./log');
const { nativeTls, warnIfUnverified, redactTls } = require('./tls');
const { installCommands, prefixKey, prefixKeysOf, withCallback, transformOf } = require('./commands');
const { splitBySlot, SPLIT } = require('./cluster');
const { SentinelResolver } = require('./sentinel');

// The breaker's states by the number the native side writes into breakerCell.
const BREAKER_STATES = binding.clientConstants.breakerStates;

/** Throws a RangeError when a string or Buffer value is larger than `max` bytes. */
function checkValueSize(value, max) {
  let size = 0;
  if (typeof value === 'string') {
    // A UTF-8 encoding takes at most 3 bytes per UTF-16 unit: most values need no count.
    if (value.length * 3 > max) size = Buffer.byteLength(value);
  } else if (Buffer.isBuffer(value)) {
    size = value.length;
  }
  if (size > max) {
    const err = new RangeError(`value is ${size} bytes, more than maxValueBytes (${max})`);
    err.code = 'ERR_VALUE_TOO_LARGE';
    throw err;
  }
}

const MAX_TTL_SEC = 2 ** 31 - 1;

/** Throws a TypeError / RangeError unless `ttlSec` is a whole number of seconds > 0. */
function checkTtl(ttlSec) {
  if (typeof ttlSec !== 'number') {
    throw new TypeError(`ttlSec must be a number of seconds, got ${ttlSec === null ? 'null' : typeof ttlSec}`);
  }
  if (!Number.isInteger(ttlSec) || ttlSec <= 0 || ttlSec > MAX_TTL_SEC) {
    throw new RangeError(`ttlSec must be a whole number of seconds from 1 to ${MAX_TTL_SEC}, got ${ttlSec}`);
  }
}

/**
 * The native client's events, as the client emits them: (native type, detail) → the
 * arguments of emit(). ioredis's names where they apply.
 */
const EMITTED = {
  connect: () => ['connect'],
  ready: () => ['ready'],
  error: (d) => ['error', d.error],
  close: () => ['close'],
  reconnecting: (d) => ['reconnecting', d.delayMs],
  breaker: (d) => ['breaker', { state: d.state, reason: d.reason }],
  end: () => ['end'],
};

/**
 * A Redis client. An EventEmitter: `connect`, `ready`, `error` (err), `close`,
 * `reconnecting` (delayMs), `end`, and `breaker` ({ state, reason }) when the circuit
 * breaker changes state. Unlike a plain EventEmitter, an `error` without a listener does
 * not throw: it is logged (once per outage) by the client's logger.
 */
class RedisClient extends EventEmitter {
  #native;
  #config;
  #options; // as given, for the connections this client opens (pub/sub, blocking, isolated)
  #env;
  #dedicated; // a connection of the caller's own (isolated(), the blocking pool)
  #keyPrefix;
  #retryStrategy;
  #subscriptions = null;
  #blocking = null;
  #isolated = new Set(); // isolated() connections still open
  #closed = false; // quit() or disconnect() was called
  #fallbacks = new Map(); // source → how many components on this client use a fallback
  #watchers = new Set();
  #reports = new Map();
  #log;
  #breakerCell;
  #cluster = false; // a Redis Cluster: the native side routes by slot; multi-key commands split here
  #sentinel = null; // Sentinel mode: asked where the primary is before each connect attempt
  #background = false; // a client's own helper (a sentinel connection): never holds the process

  /**
   * @param {object} [options] see README "Configuration"; options override the environment.
   * @param {object} [env] the environment to read (process.env by default).
   */
  constructor(options = {}, env = process.env, internal = {}) {
    super();
    const config = resolveConfig(env, options);
    if (!config.enabled) {
      throw new ConfigError('Redis is disabled (REDIS_URL=disabled); there is no client to create', 'ERR_REDIS_DISABLED');
    }
    this.#config = config;
    this.#options = { ...options };
    this.#env = env;
    this.#dedicated = internal.dedicated === true;
    this.#background = internal.background === true;
    this.#keyPrefix = config.keyPrefix;
    this.#retryStrategy = config.retryStrategy;
    this.#cluster = config.cluster !== null;
    const label = config.cluster !== null ? `cluster ${config.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
      : config.sentinel !== null ? `sentinel primary ${config.sentinel.name}` : `${config.host}:${config.port}`;
    this.#log = createLogSink(options.logger, env, label, () => this.breakerState === 'closed');
    // The native client opens no socket until the first command.
    try {
      this.#native = new binding.Client({
        ...config,
        tls: nativeTls(config.tls),
        subscriber: internal.subscriber === true,
        reconnect: internal.reconnect !== false,
        ownerSchedulesReconnect: config.retryStrategy !== null,
        endpointFromOwner: config.sentinel !== null,
        maxRetriesPerRequest: config.maxRetriesPerRequest === null ? -1 : config.maxRetriesPerRequest,
      }, nativeError);
    } catch (err) {
      // A TLS setting OpenSSL cannot use (a bad PEM, a wrong passphrase) is found here.
      if (err.code === 'ERR_INVALID_CONFIG') throw new ConfigError(err.message, err.code);
      throw err;
    }
    warnIfUnverified(config, this.#log);
    this.#breakerCell = this.#native.breakerCell;
    if (config.sentinel !== null) {
      const native = this.#native;
      this.#sentinel = new SentinelResolver(config.sentinel, {
        connect: (o) => new RedisClient(o, {}, { background: true }),
        timeouts: { connect: Math.min(config.connectTimeout, 2000), command: Math.min(config.commandTimeout || 2000, 2000) },
        onSwitch: (host, port) => native.setEndpoint(host, port),
        log: (level, message) => this.#log.write(level, message),
      });
    }
    // A property, not a closure the native side holds: the client and its native half stay
    // collectable together.
    const self = new WeakRef(this);
    this.#native.onEvent = (type, detail) => {
      const client = self.deref();
      if (client !== undefined) client.#onNativeEvent(type, detail);
    };
    if (internal.subscriber === true) {
      this.#native.onPush = (parts) => {
        const client = self.deref();
        if (client !== undefined && client._onPush !== undefined) client._onPush(parts);
      };
    }
    // ioredis connects when the client is created unless lazyConnect is set; so does this
    // client when lazyConnect: false is asked for. Failures reach 'error' and the logger.
    if (options.lazyConnect === false) this.connect().catch(() => {});
  }

  #onNativeEvent(type, detail) {
    if (type === 'resolve') {
      this.#resolvePrimary();
      return;
    }
    if (type === 'reconnecting' && detail.ownerDecides) {
      this.#askRetryStrategy(detail);
      return;
    }
    this.#log.event(type, detail);
    for (const fn of this.#watchers) {
      try {
        fn(type, detail);
      } catch (err) {
        process.nextTick(() => { throw err; });
      }
    }
    const shape = EMITTED[type];
    if (shape === undefined) return;
    const args = shape(detail);
    // An error nobody listens to is the logger's to report, never a crash.
    if (args[0] === 'error' && this.listenerCount('error') === 0) return;
    this.emit(...args);
  }

  // A connect attempt waits for the primary's address: the sentinels are asked.
  #resolvePrimary() {
    const native = this.#native;
    this.#sentinel.resolve().then(
      ({ host, port }) => native.setEndpoint(host, port),
      (err) => native.failResolve(err.code || 'ERR_SENTINEL', err.message),
    );
  }

  // retryStrategy(times) → the wait before the next attempt in ms, or anything else to stop
  // reconnecting: the client then ends ('end'), and pending commands fail.
  #askRetryStrategy(detail) {
    let delay;
    try {
      delay = this.#retryStrategy(detail.attempt);
    } catch (err) {
      this.#log.write('error', `retryStrategy threw (${err && err.message}); the client stops reconnecting`);
      delay = null;
    }
    if (typeof delay === 'number' && Number.isFinite(delay) && delay >= 0) {
      const ms = Math.min(Math.round(delay), 2 ** 31 - 1);
      this.#native.reconnectIn(ms);
      this.#onNativeEvent('reconnecting', { delayMs: ms, attempt: detail.attempt });
      return;
    }
    this.#log.write('warn', `retryStrategy returned ${delay === null ? 'null' : typeof delay} after ${detail.attempt} failed attempts; the client stops reconnecting`);
    this.disconnect();
  }

  /**
   * The circuit breaker's state: 'closed' (Redis is used), 'open' (calls fail fast or go to
   * fallbacks), 'half-open' (a probe decides).
   */
  get breakerState() {
    return BREAKER_STATES[this.#breakerCell[0]];
  }

  /**
   * Internal: how many times the breaker has opened, read without a call into the addon (a
   * fallback store knows from it whether an outage it served is over).
   */
  get _breakerOpenings() {
    return this.#breakerCell[1];
  }

  /**
   * Internal: `fn(type, detail)` for every native event, before it is emitted; not removed
   * by removeAllListeners(). Returns the function that unsubscribes.
   */
  _watch(fn) {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /**
   * Internal: a component on this client (a cache, a limiter) reports its state for
   * health() and metrics under `name`. Returns the function that unregisters it.
   */
  _report(name, fn) {
    this.#reports.set(String(name), fn);
    return () => {
      if (this.#reports.get(String(name)) === fn) this.#reports.delete(String(name));
    };
  }

  /** Internal: the reports of the components on this client, by name. */
  _reports() {
    const out = {};
    for (const [name, fn] of this.#reports) {
      try {
        out[name] = fn();
      } catch (err) {
        // One component's failure must not hide the others' figures.
        out[name] = { error: err && err.message ? String(err.message) : String(err) };
      }
    }
    return out;
  }

  /** Internal: a line for the client's logger. */
  _log(level, message) {
    this.#log.write(level, message);
  }

  /**
   * Counters kept by the native client: outcomes by command (hit, miss, ok, error,
   * timeout, unknown, refused), latency histograms by command, and the connection's and
   * breaker's counts. See README "Metrics".
   */
  metrics() {
    const m = this.#native.metrics();
    const s = this.#native.status();
    m.connectionsOpened = s.connectionsOpened;
    m.reconnectAttempts = s.reconnectAttempts;
    m.breakerState = s.breaker;
    m.breakerOpened = s.breakerOpened;
    m.breakerClosed = s.breakerClosed;
    m.inFlight = s.inFlight;
    m.queued = s.queued;
    return m;
  }

  /**
   * Sends any command: `call('HSET', key, field, value)`. Bulk replies come back as strings.
   * An argument over maxValueBytes throws a RangeError (ERR_VALUE_TOO_LARGE) before anything
   * is sent.
   */
  call(command, ...args) {
    return this.#callAs(0, command, args);
  }

  /** Like call(), with bulk replies as Buffers. */
  callBuffer(command, ...args) {
    return this.#callAs(REPLY_BUFFERS, command, args);
  }

  // A command named by the caller: in any case, as a string or bytes; the reply transform of
  // its name applies (call('HGETALL') resolves an object).
  #callAs(flags, command, args) {
    const lower = typeof command === 'string' ? command.toLowerCase() : upper(command).toLowerCase();
    const p = this.#dispatch(flags, command, lower, args);
    const transform = typeof command === 'string' ? transformOf(lower) : undefined;
    return transform === undefined ? p : p.then(transform);
  }

  /** Internal: a command by its lower-case name, with its arguments as an array (the generated methods). */
  _invoke(flags, name, args) {
    return this.#dispatch(flags, name, name, args);
  }

  // Every command goes through here: a command that would change the shared connection's
  // state is refused, a blocking one goes to a connection of its own, and the keyPrefix is
  // applied to the key arguments.
  #dispatch(flags, command, lower, args) {
    if (SPECIAL.has(lower)) return this.#special(flags, command, lower, args);
    if (this.#keyPrefix !== '') args = prefixKeysOf(lower, args, this.#keyPrefix);
    if (this.#cluster) return this.#clusterCommand(flags, command, lower, args);
    return this.#native.command(flags, command, ...args);
  }

  // On a cluster: multi-key commands split by slot, SCRIPT LOAD on every primary (EVALSHA
  // then finds the script wherever its key lives), anything else routed by the native side.
  #clusterCommand(flags, command, lower, args) {
    if (args.length > 1 && SPLIT.has(lower)) {
      return splitBySlot(lower, args, (keys) => this.#native.command(flags, command, ...keys));
    }
    if (lower === 'script' && args.length > 0 && String(args[0]).toLowerCase() === 'load') {
      return this._primaries().then((primaries) => Promise.all(primaries.map((p) => this.#native.commandOn(p, flags, command, ...args))))
        .then((shas) => shas[0]);
    }
    return this.#native.command(flags, command, ...args);
  }

  #special(flags, command, lower, args) {
    const name = lower.toUpperCase();
    const why = refusal(name, args, this.#dedicated);
    if (why !== null) {
      const where = this.#dedicated ? 'on this connection' : 'on the shared connection';
      throw new CommandRefusedError(`${name} refused ${where}: ${why}`, 'ERR_COMMAND_REFUSED');
    }
    if (this.#keyPrefix !== '') args = prefixKeysOf(lower, args, this.#keyPrefix);
    if (isBlocking(name, args)) {
      // On the shared client, a connection of the pool; on one of the caller's own, this
      // one, without the commandTimeout deadline (its own timeout plus commandTimeout guards it).
      const timeoutMs = blockingTimeoutMs(name, args);
      if (!this.#dedicated) return this.#blockingPool().run(flags, command, args, timeoutMs);
      return runBlocking(this, flags, command, args, timeoutMs, this.#config.commandTimeout);
    }
    return this.#native.command(flags, command, ...args);
  }

  /** Internal: `args` with the keyPrefix applied to the key arguments of command `lower` (lower case). */
  _keyArgs(lower, args) {
    return this.#keyPrefix === '' ? args : prefixKeysOf(lower, args, this.#keyPrefix);
  }

  /** Internal: the keyPrefix ('' for none), for the cache and the limiter's own keys. */
  get _keyPrefix() {
    return this.#keyPrefix;
  }

  /** Internal: commands queued as one unit; resolves an array of their replies. */
  _unit(buffers, commands) {
    return this.#native.unit(buffers ? REPLY_BUFFERS : 0, 0, commands);
  }

  /** Internal: one SUBSCRIBE-family command, which Redis answers once per name. */
  _unitReplies(command, names) {
    return this.#native.unit(0, names.length, [[command, ...names]]);
  }

  /**
   * A transaction: queue commands on the builder (`.set(k, v).incr(n)` or `.call(…)`), then
   * `exec()` sends MULTI … EXEC as one unit no other caller's command can come between.
   * `commands`, if given, is an array of [name, ...args] to queue first.
   */
  multi(commands) {
    return new Multi(this, commands);
  }

  /**
   * Commands sent together: `exec()` resolves one [error, result] pair per command, as
   * ioredis does. They share the connection's automatic pipelining with every other call.
   */
  pipeline(commands) {
    return new Pipeline(this, commands);
  }

  /**
   * Runs `fn(conn)` with a connection of its own, for what needs connection state: WATCH …
   * MULTI … EXEC, WAIT after writes, a series of blocking commands. The connection never
   * reconnects (what it held would be lost): if it drops, its commands fail. It is closed
   * when `fn` settles; resolves what `fn` resolves.
   */
  async isolated(fn) {
    if (typeof fn !== 'function') throw new TypeError('isolated(fn): fn must be a function taking the connection');
    if (this.#closed) throw new ClientClosedError('isolated(): the client was closed', 'ERR_CLIENT_CLOSED');
    const conn = this.#spawn({}, { dedicated: true, reconnect: false });
    this.#isolated.add(conn);
    try {
      return await fn(conn);
    } finally {
      this.#isolated.delete(conn);
      conn.quit().catch(() => {});
    }
  }

  /** A new client with the same options (and `overrides`): a connection of its own. */
  duplicate(overrides = {}) {
    return new RedisClient({ ...this.#options, ...overrides }, this.#env);
  }

  #spawn(overrides, internal) {
    return new RedisClient({ ...this.#options, lazyConnect: true, ...overrides }, this.#env, internal);
  }

  #blockingPool() {
    if (this.#blocking === null) {
      this.#blocking = new BlockingPool(
        () => this.#spawn({ commandTimeout: 0, breaker: false, logger: false }, { dedicated: true, reconnect: false }),
        { max: this.#config.maxBlockingConnections, maxWaiting: this.#config.maxQueue, guardMs: this.#config.commandTimeout },
      );
    }
    return this.#blocking;
  }

  #pubsub() {
    if (this.#subscriptions === null) {
      // Its own backoff, never giving up: a retryStrategy that stops would leave the
      // subscriptions listed with nothing subscribed.
      this.#subscriptions = new Subscriptions(this, () => this.#spawn({ breaker: false, retryStrategy: null }, { subscriber: true }), {
        holdProcess: !this.#background,
      });
    }
    return this.#subscriptions;
  }

  /**
   * Subscribes to channels on the client's pub/sub connection (opened now if needed):
   * `subscribe(channel | channels, listener?, { buffers }?)`. The listener gets (message,
   * channel), strings unless buffers: true; the client also emits 'message' (channel,
   * message) and 'messageBuffer'. ioredis's form `subscribe('a', 'b', (err, count) => …)`
   * is understood too. Resolves the number of subscriptions. After a reconnect every
   * subscription is renewed and 'subscriptionGap' is emitted.
   */
  subscribe(...args) {
    return this.#subscribeAs('channel', args);
  }

  /** Subscribes to glob patterns: the listener gets (message, channel, pattern). */
  psubscribe(...args) {
    return this.#subscribeAs('pattern', args);
  }

  /** Subscribes to shard channels (SSUBSCRIBE, Redis 7). */
  ssubscribe(...args) {
    return this.#subscribeAs('shard', args);
  }

  /** Removes a listener (or all) from channels (or all); unsubscribes those left without one. */
  unsubscribe(...args) {
    return this.#unsubscribeAs('channel', args);
  }

  punsubscribe(...args) {
    return this.#unsubscribeAs('pattern', args);
  }

  sunsubscribe(...args) {
    return this.#unsubscribeAs('shard', args);
  }

  // (names, listener?, options?) or ioredis's (name, name…, callback?).
  #subscribeAs(kind, args) {
    if (args.length >= 2 && typeof args[1] === 'string') {
      const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
      return withCallback(this.#pubsub().subscribe(kind, args), callback);
    }
    return this.#pubsub().subscribe(kind, args[0], args[1], args[2]);
  }

  #unsubscribeAs(kind, args) {
    if (this.#subscriptions === null) return Promise.resolve(0);
    if (args.length >= 2 && typeof args[1] === 'string') {
      const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
      return withCallback(this.#subscriptions.unsubscribe(kind, args), callback);
    }
    return this.#subscriptions.unsubscribe(kind, args[0], args[1]);
  }

  /** Internal, for health(): the pub/sub connection's state, or null when nothing was ever subscribed. */
  _pubsubStatus() {
    return this.#subscriptions === null ? null : this.#subscriptions.status();
  }

  /** The channels, patterns and shard channels subscribed. */
  subscriptions() {
    return this.#subscriptions === null ? { channels: [], patterns: [], shardChannels: [] } : this.#subscriptions.list();
  }

  /**
   * WATCH, only on a connection of the caller's own (isolated()): on the shared connection
   * another caller's commands would run between it and EXEC.
   */
  watch(...keys) {
    return this.#dispatch(0, 'WATCH', 'watch', keys.flat());
  }

  unwatch() {
    return this.#dispatch(0, 'UNWATCH', 'unwatch', []);
  }

  /**
   * Connects now (ioredis's connect(), for lazyConnect: true): resolves once the server has
   * answered, rejects if it cannot be reached. Calls need not wait for it.
   */
  connect(callback) {
    const ready = this.#native.status().state === 'ready'
      ? Promise.resolve()
      : this.#native.command(0, 'PING').then(() => undefined);
    return withCallback(ready, callback);
  }

  get(key, callback) {
    const p = this.#native.get(0, this.#keyPrefix === '' ? key : prefixKey(this.#keyPrefix, key));
    return callback === undefined ? p : withCallback(p, callback);
  }

  getBuffer(key, callback) {
    const p = this.#native.get(REPLY_BUFFERS, this.#keyPrefix === '' ? key : prefixKey(this.#keyPrefix, key));
    return callback === undefined ? p : withCallback(p, callback);
  }

  /**
   * SET key value, with `EX ttlSec` when a TTL is given as a number of seconds (a bad one
   * throws a RangeError). ioredis's form set(key, value, 'EX', 60, 'NX') is sent as given.
   * Resolves 'OK' (null when NX/XX prevented it). A value over maxValueBytes throws a
   * RangeError (ERR_VALUE_TOO_LARGE) before anything is sent.
   */
  set(key, value, ...rest) {
    const callback = typeof rest[rest.length - 1] === 'function' ? rest.pop() : undefined;
    let p;
    const k = this.#keyPrefix === '' ? key : prefixKey(this.#keyPrefix, key);
    if (rest.length === 0 || (rest.length === 1 && rest[0] === undefined)) {
      p = this.#native.command(0, 'SET', k, value);
    } else if (rest.length === 1 && typeof rest[0] === 'number') {
      checkTtl(rest[0]);
      p = this.#native.setex(0, k, value, rest[0]);
    } else {
      p = this.#native.command(0, 'SET', k, value, ...rest);
    }
    return callback === undefined ? p : withCallback(p, callback);
  }

  /**
   * Internal fast path for the cache module: `flags` picks the reply shape and whether a
   * failure resolves (null / false) instead of rejecting.
   */
  _command(flags, ...args) {
    if (this.#cluster) return this.#clusterCommand(flags, args[0], String(args[0]).toLowerCase(), args.slice(1));
    return this.#native.command(flags, ...args);
  }

  /** Internal: whether this client talks to a Redis Cluster. */
  get _isCluster() {
    return this.#cluster;
  }

  /**
   * Internal: the primaries of the cluster's current slot map ("host:port"); reads the map
   * first if no command has yet. [] for a single Redis.
   */
  async _primaries() {
    if (!this.#cluster) return [];
    let nodes = this.#native.nodes();
    if (!nodes.some((n) => n.role === 'primary')) {
      await this.#native.command(0, 'PING');
      nodes = this.#native.nodes();
    }
    return nodes.filter((n) => n.role === 'primary').map((n) => n.endpoint);
  }

  /**
   * Internal: SCAN … MATCH pattern COUNT count to its end, on the one Redis or on every
   * primary of a cluster (and on any that became one while the scan went on: a failover),
   * calling onPage(keys) with each page's keys (Latin-1 strings: any bytes survive) until
   * stop() says so. Rejects with the first failure.
   */
  async _scanAll(flags, pattern, count, onPage, stop = () => false) {
    const scanNode = async (send) => {
      let cursor = '0';
      do {
        const [next, keys] = await send(cursor);
        cursor = next;
        onPage(keys);
      } while (cursor !== '0' && !stop());
    };
    const args = (cursor) => ['SCAN', cursor, 'MATCH', pattern, 'COUNT', count];
    if (!this.#cluster) {
      await scanNode((cursor) => this.#native.command(flags | REPLY_LATIN1, ...args(cursor)));
      return;
    }
    const done = new Set();
    for (;;) {
      const todo = (await this._primaries()).filter((p) => !done.has(p));
      if (todo.length === 0 || stop()) return;
      for (const endpoint of todo) {
        await scanNode((cursor) => this.#native.commandOn(endpoint, flags | REPLY_LATIN1, ...args(cursor)));
        done.add(endpoint);
        if (stop()) return;
      }
    }
  }

  /** Internal: one command to one node of the cluster ("host:port"), as it is (SCAN on each primary). */
  _commandOn(endpoint, flags, ...args) {
    return this.#native.commandOn(endpoint, flags, ...args);
  }

  /** Internal fast paths for the cache module: GET and SET … EX without the verb's conversion. */
  _get(flags, key) {
    return this.#native.get(flags, key);
  }

  _setex(flags, key, value, ttlSec) {
    return this.#native.setex(flags, key, value, ttlSec);
  }

  /** Graceful close: answers every accepted command, sends QUIT, closes (pub/sub and blocking connections too). */
  quit(callback) {
    this.#closed = true;
    const others = [...this.#isolated].map((conn) => conn.quit());
    if (this.#subscriptions !== null) others.push(this.#subscriptions.close(true));
    if (this.#blocking !== null) others.push(this.#blocking.close(true));
    if (this.#sentinel !== null) others.push(this.#sentinel.close());
    const done = Promise.all([this.#native.quit(), ...others]).then(() => 'OK');
    return withCallback(done, callback);
  }

  /** Immediate close: pending commands fail (written ones with ERR_OUTCOME_UNKNOWN). */
  disconnect() {
    this.#closed = true;
    for (const conn of this.#isolated) conn.disconnect();
    if (this.#subscriptions !== null) this.#subscriptions.close(false);
    if (this.#blocking !== null) this.#blocking.close(false);
    if (this.#sentinel !== null) this.#sentinel.close();
    this.#native.disconnect();
  }

  /**
   * A module serving from its local fallback reports it here (active true), and again when it
   * stops (false), for status().fallbacks; components sharing a source name are counted.
   */
  noteFallback(source, active) {
    const name = String(source);
    const n = (this.#fallbacks.get(name) || 0) + (active ? 1 : -1);
    if (n > 0) this.#fallbacks.set(name, n);
    else this.#fallbacks.delete(name);
  }

  /**
   * The connection's health: state ('idle' | 'connecting' | 'ready' | 'down' | 'closing' |
   * 'closed'), whether it is ready, the breaker's state and why it opened, the last error
   * and when, reconnect attempts, commands in flight and queued, and which fallbacks are in
   * use.
   */
  status() {
    const s = this.#native.status();
    return {
      state: s.state,
      ready: s.state === 'ready',
      // In Sentinel mode, the primary last named (null before the first answer).
      host: this.#sentinel !== null ? this.#sentinel.address?.host ?? null : this.#config.host,
      port: this.#sentinel !== null ? this.#sentinel.address?.port ?? null : this.#config.port,
      db: this.#config.db,
      tls: this.#config.tls !== null,
      breaker: s.breaker,
      breakerReason: s.breakerReason,
      breakerOpenedAt: s.breakerOpenedAt || null,
      lastError: s.lastError,
      lastErrorTime: s.lastError ? s.lastError.at : null,
      reconnectAttempts: s.reconnectAttempts,
      connectionsOpened: s.connectionsOpened,
      inFlight: s.inFlight,
      queued: s.queued,
      fallbacks: [...this.#fallbacks.keys()],
      ...(this.#cluster ? { cluster: this.#clusterStatus(s) } : {}),
      ...(this.#sentinel !== null ? {
        sentinel: {
          name: this.#sentinel.settings.name,
          primary: this.#sentinel.primary,
          sentinels: this.#sentinel.settings.sentinels.map(({ host, port }) => `${host}:${port}`),
        },
      } : {}),
    };
  }

  // Each node's connection as status() shows the client's, with its role and slots.
  #clusterStatus(s) {
    return {
      mapReads: s.mapReads || 0,
      redirections: s.redirections || 0,
      nodes: this.#native.nodes().map((n) => ({
        endpoint: n.endpoint,
        role: n.role,
        slots: n.slots,
        state: n.state,
        breaker: n.breaker,
        lastError: n.lastError,
        reconnectAttempts: n.reconnectAttempts,
        connectionsOpened: n.connectionsOpened,
        inFlight: n.inFlight,
        queued: n.queued,
      })),
    };
  }

  /** The validated settings, without the password. */
  get options() {
    const { password, tls, ...rest } = this.#config;
    return { ...rest, password: password ? '***' : '', tls: redactTls(tls) };
  }

  [util.inspect.custom](depth, opts, inspect) {
    const c = this.#config;
    const user = c.username ? `${c.username}:***@` : c.password ? ':***@' : '';
    const scheme = `${c.tls ? 'rediss' : 'redis'}://${user}`;
    const hostPort = ({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const where = c.cluster !== null
      ? `cluster ${scheme}${c.cluster.nodes.map(hostPort).join(',')}`
      : `${scheme}${hostPort(c)}/${c.db}`;
    return `RedisClient { ${where}, state: ${inspect(this.#native.status().state, opts)} }`;
  }
}

// Every other command of the table as a method (hset, hgetall, hgetallBuffer…).
installCommands(RedisClient.prototype, RedisClient.prototype._invoke, REPLY_BUFFERS);

module.exports = {
  RedisClient, checkValueSize, checkTtl, REPLY_BUFFERS, SOFT_FAIL, REPLY_IS_OK, REPLY_LATIN1, BREAKER_EARLY, UNSENT_EARLY,
};
