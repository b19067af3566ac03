'use strict';
// Redis Sentinel: the `sentinels` option and REDIS_SENTINELS / REDIS_SENTINEL_NAME read into
// the settings below, and the resolver a client in Sentinel mode asks, before each connect
// attempt, where the primary is. The native client waits for the answer (its 'resolve'
// event, within connectTimeout) and reconnects on its own when told of a new primary
// (+switch-master), when the server answers READONLY (a failover made it a replica), or when
// the connection is lost.
const { ConfigError, ConnectionError } = require('../errors');
const { parseHostPort } = require('./endpoints');
const { invalidParameterError, checkType } = require('../util/validate');

const OPTION = { code: 'ERR_INVALID_CONFIG' };
const NODE_FORM = 'host:port, [ipv6]:port or { host, port }';

function configError(message) {
  return new ConfigError(message, 'ERR_INVALID_CONFIG');
}

/** One sentinel from `entry`; `name` says where it came from, for errors. */
function parseSentinel(name, entry) {
  if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
    const host = checkType(`${name}.host`, entry.host, 'string', OPTION);
    if (host === '') throw configError(`${name}.host is empty`);
    const port = entry.port === undefined ? 26379 : entry.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidParameterError(`${name}.port`, 'an integer from 1 to 65535', port, OPTION);
    return { host, port };
  }
  if (typeof entry !== 'string') throw invalidParameterError(name, NODE_FORM, entry, OPTION);
  const sentinel = parseHostPort(entry, 26379);
  if (sentinel === null) {
    // "user:secret@host": the value is not shown, it may hold a password.
    if (entry.includes('@')) throw configError(`${name} must be ${NODE_FORM} (a sentinel's password goes in sentinelPassword; the value is not shown)`);
    throw invalidParameterError(name, NODE_FORM, entry, OPTION);
  }
  return sentinel;
}

/**
 * The Sentinel settings from options (sentinels, name, sentinelPassword, sentinelUsername,
 * role) or, when `sentinels` is not given, REDIS_SENTINELS and REDIS_SENTINEL_NAME; null
 * when neither names sentinels. `name` is the primary's name as the sentinels know it
 * (ioredis's meaning of `name` in Sentinel mode); CLIENT SETNAME is then `connectionName`.
 */
function resolveSentinel(options, env) {
  let list = options.sentinels;
  let source = 'option sentinels';
  let name = options.name;
  if (list === undefined) {
    const text = env.REDIS_SENTINELS;
    if (text === undefined || String(text).trim() === '') {
      for (const key of ['sentinelPassword', 'sentinelUsername', 'role']) {
        if (options[key] !== undefined) throw configError(`option ${key} is for Sentinel mode: give option sentinels (or REDIS_SENTINELS) too`);
      }
      return null;
    }
    list = String(text).split(',').map((s) => s.trim()).filter((s) => s !== '');
    source = 'REDIS_SENTINELS';
    if (name === undefined) name = env.REDIS_SENTINEL_NAME;
  }
  if (!Array.isArray(list) || list.length === 0) throw invalidParameterError(source, `a non-empty array of ${NODE_FORM}`, list, OPTION);
  const sentinels = list.map((entry, i) => parseSentinel(source === 'REDIS_SENTINELS' ? source : `option sentinels[${i}]`, entry));
  if (name === undefined || name === null || String(name).trim() === '') {
    throw configError(`${source} is set but the primary's name is not: give option name (or REDIS_SENTINEL_NAME), as the sentinels know it`);
  }
  if (typeof name !== 'string') throw invalidParameterError('option name', 'a string', name, OPTION);
  if (options.role !== undefined && options.role !== 'master') {
    throw invalidParameterError('option role', "'master' (a client in Sentinel mode talks to the primary; reading from replicas is not supported)", options.role, OPTION);
  }
  const out = { sentinels, name: name.trim(), password: '', username: '' };
  if (options.sentinelPassword !== undefined) out.password = checkType('option sentinelPassword', options.sentinelPassword, 'string', { ...OPTION, secret: true });
  else if (env.REDIS_SENTINEL_PASSWORD) out.password = String(env.REDIS_SENTINEL_PASSWORD);
  if (options.sentinelUsername !== undefined) out.username = checkType('option sentinelUsername', options.sentinelUsername, 'string', OPTION);
  if (out.username !== '' && out.password === '') throw configError('a sentinel username was given without a sentinel password');
  return out;
}

/**
 * Asks the sentinels where the primary is, in turn, starting with the last one that
 * answered, and follows +switch-master on one of them. `connect(options)` opens a plain
 * client to a sentinel (the caller's RedisClient, so that no module requires the other).
 */
class SentinelResolver {
  #settings;
  #connect;
  #timeouts;
  #clients = new Map(); // "host:port" → client
  #first = 0; // the sentinel to ask first
  #watching = null; // the client subscribed to +switch-master
  #closed = false;
  #primary = null; // { host, port } last named
  #onSwitch;
  #log;

  constructor(settings, { connect, timeouts, onSwitch, log }) {
    this.#settings = settings;
    this.#connect = connect;
    this.#timeouts = timeouts;
    this.#onSwitch = onSwitch;
    this.#log = log;
  }

  /** The primary last named by a sentinel, as "host:port", or null. */
  get primary() {
    return this.#primary === null ? null : `${this.#primary.host}:${this.#primary.port}`;
  }

  /** The primary last named, as { host, port }, or null. */
  get address() {
    return this.#primary;
  }

  get settings() {
    return this.#settings;
  }

  #client(sentinel) {
    const key = `${sentinel.host}:${sentinel.port}`;
    let c = this.#clients.get(key);
    if (c === undefined) {
      c = this.#connect({
        host: sentinel.host,
        port: sentinel.port,
        password: this.#settings.password,
        username: this.#settings.username,
        connectTimeout: this.#timeouts.connect,
        commandTimeout: this.#timeouts.command,
        breaker: false,
        logger: false,
      });
      c.on('error', () => {}); // each failure is reported through resolve()'s answer
      this.#clients.set(key, c);
    }
    return c;
  }

  /**
   * Resolves { host, port } of the primary, asking each sentinel in turn; rejects with a
   * ConnectionError (ERR_SENTINEL) saying what each answered when none names one.
   */
  async resolve() {
    const { sentinels, name } = this.#settings;
    const reasons = [];
    for (let i = 0; i < sentinels.length && !this.#closed; i++) {
      const at = (this.#first + i) % sentinels.length;
      const s = sentinels[at];
      let reply;
      try {
        reply = await this.#client(s).call('SENTINEL', 'get-master-addr-by-name', name);
      } catch (err) {
        reasons.push(`${s.host}:${s.port}: ${err.code || 'error'} ${err.message}`);
        continue;
      }
      if (!Array.isArray(reply) || reply.length < 2 || !/^\d+$/.test(String(reply[1]))) {
        reasons.push(`${s.host}:${s.port} knows no primary named ${JSON.stringify(name)}`);
        continue;
      }
      this.#first = at;
      this.#primary = { host: String(reply[0]), port: Number(reply[1]) };
      this.#watch(s);
      return this.#primary;
    }
    const err = new ConnectionError(`no sentinel named a primary for ${JSON.stringify(name)}: ${reasons.join('; ') || 'the client was closed'}`);
    err.code = 'ERR_SENTINEL';
    throw err;
  }

  // Follows +switch-master on `sentinel` (one subscription at a time; it moves to the
  // sentinel that answered last when the one watched stops answering).
  #watch(sentinel) {
    const key = `${sentinel.host}:${sentinel.port}`;
    if (this.#watching === key || this.#closed) return;
    const previous = this.#watching === null ? null : this.#clients.get(this.#watching);
    this.#watching = key;
    if (previous !== undefined && previous !== null) previous.unsubscribe('+switch-master').catch(() => {});
    this.#client(sentinel).subscribe('+switch-master', (message) => {
      const [who, , , host, port] = String(message).split(' ');
      if (who !== this.#settings.name || !/^\d+$/.test(port || '')) return;
      this.#primary = { host, port: Number(port) };
      this.#log('info', `hirecache: sentinel ${key} says the primary ${who} is now ${host}:${port}`);
      this.#onSwitch(host, Number(port));
    }).catch(() => {
      if (this.#watching === key) this.#watching = null;
    });
  }

  close() {
    this.#closed = true;
    return Promise.all([...this.#clients.values()].map((c) => c.quit().catch(() => {})));
  }
}

module.exports = { resolveSentinel, SentinelResolver };
