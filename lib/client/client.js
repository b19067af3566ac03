'use strict';
// RedisClient: the JS face of the native client. Commands are queued by the C++ core and
// written once per turn of the event loop; every returned promise settles.
const util = require('util');
const { EventEmitter } = require('events');
const binding = require('../binding');
const { resolveConfig } = require('./config');
const { nativeError, ConfigError } = require('../errors');

// Flags understood by the native command(), as the addon defines them.
const { REPLY_BUFFERS, SOFT_FAIL, REPLY_IS_OK, REPLY_LATIN1, BREAKER_EARLY, UNSENT_EARLY } = binding.clientConstants.commandFlags;
const { createLogSink } = require('./log');
const { installCommands } = require('./commands');

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
  #fallbacks = new Map(); // source → how many components on this client use a fallback
  #watchers = new Set();
  #reports = new Map();
  #log;
  #breakerCell;

  /**
   * @param {object} [options] see README "Configuration"; options override the environment.
   * @param {object} [env] the environment to read (process.env by default).
   */
  constructor(options = {}, env = process.env) {
    super();
    const config = resolveConfig(env, options);
    if (!config.enabled) {
      throw new ConfigError('Redis is disabled (REDIS_URL=disabled); there is no client to create', 'ERR_REDIS_DISABLED');
    }
    this.#config = config;
    this.#log = createLogSink(options.logger, env, `${config.host}:${config.port}`, () => this.breakerState === 'closed');
    // The native client opens no socket until the first command.
    this.#native = new binding.Client(config, nativeError);
    this.#breakerCell = this.#native.breakerCell;
    // A property, not a closure the native side holds: the client and its native half stay
    // collectable together.
    const self = new WeakRef(this);
    this.#native.onEvent = (type, detail) => {
      const client = self.deref();
      if (client !== undefined) client.#onNativeEvent(type, detail);
    };
  }

  #onNativeEvent(type, detail) {
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
    return this.#native.command(0, command, ...args);
  }

  /** Internal: sends command `name` (lowercase) for the generated methods (see ./commands). */
  _invoke(flags, name, args) {
    return this.#native.command(flags, name, ...args);
  }

  /** Like call(), with bulk replies as Buffers. */
  callBuffer(command, ...args) {
    return this.#native.command(REPLY_BUFFERS, command, ...args);
  }

  get(key) {
    return this.#native.get(0, key);
  }

  getBuffer(key) {
    return this.#native.get(REPLY_BUFFERS, key);
  }

  /**
   * SET key value, with `EX ttlSec` when a TTL is given. Resolves 'OK'. A value over
   * maxValueBytes throws a RangeError (ERR_VALUE_TOO_LARGE) before anything is sent.
   */
  set(key, value, ttlSec) {
    if (ttlSec === undefined) return this.#native.command(0, 'SET', key, value);
    checkTtl(ttlSec);
    return this.#native.setex(0, key, value, ttlSec);
  }

  mget(keys) {
    return this.#native.command(0, 'MGET', ...keys);
  }

  del(...keys) {
    return this.#native.command(0, 'DEL', ...keys);
  }

  unlink(...keys) {
    return this.#native.command(0, 'UNLINK', ...keys);
  }

  /**
   * Internal fast path for the cache module: `flags` picks the reply shape and whether a
   * failure resolves (null / false) instead of rejecting.
   */
  _command(flags, ...args) {
    return this.#native.command(flags, ...args);
  }

  /** Internal fast paths for the cache module: GET and SET … EX without the verb's conversion. */
  _get(flags, key) {
    return this.#native.get(flags, key);
  }

  _setex(flags, key, value, ttlSec) {
    return this.#native.setex(flags, key, value, ttlSec);
  }

  /** Graceful close: answers every accepted command, sends QUIT, closes. */
  quit() {
    return this.#native.quit();
  }

  /** Immediate close: pending commands fail (written ones with ERR_OUTCOME_UNKNOWN). */
  disconnect() {
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
      host: this.#config.host,
      port: this.#config.port,
      db: this.#config.db,
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
    };
  }

  /** The validated settings, without the password. */
  get options() {
    const { password, ...rest } = this.#config;
    return { ...rest, password: password ? '***' : '' };
  }

  [util.inspect.custom](depth, opts, inspect) {
    const c = this.#config;
    const user = c.username ? `${c.username}:***@` : c.password ? ':***@' : '';
    const where = `redis://${user}${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}/${c.db}`;
    return `RedisClient { ${where}, state: ${inspect(this.#native.status().state, opts)} }`;
  }
}

// Every other command of the table as a method (hset, hgetall, hgetallBuffer…).
installCommands(RedisClient.prototype, RedisClient.prototype._invoke, REPLY_BUFFERS);

module.exports = {
  RedisClient, checkValueSize, checkTtl, REPLY_BUFFERS, SOFT_FAIL, REPLY_IS_OK, REPLY_LATIN1, BREAKER_EARLY, UNSENT_EARLY,
};
