'use strict';
// Reads the Redis configuration from the environment and from options in code (which win),
// validates it, and returns the checked settings the native client receives.
const net = require('net');
const { inspect } = require('util');
const { ConfigError } = require('../errors');
const { resolveTls } = require('./tls');
const { resolveCluster } = require('./cluster');
const { resolveSentinel } = require('./sentinel');
const { clientConstants } = require('../binding');
const { invalidParameterError, checkInteger, checkType, checkKnownOptions } = require('../util/validate');

// The native client's own defaults (one source: src/client/redis_client.h and the binding).
const DEFAULTS = Object.freeze({
  username: '',
  password: '',
  db: 0,
  name: '',
  keyPrefix: '',
  retryStrategy: null,
  maxRetriesPerRequest: 0,
  maxBlockingConnections: 4,
  ...clientConstants.defaults,
});

const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_BULK = 512 * 1024 * 1024; // Redis's own proto-max-bulk-len default.
const MAX_DB = 2 ** 31 - 1;

function configError(message) {
  return new ConfigError(message, 'ERR_INVALID_CONFIG');
}

// What the option errors add to the shared vocabulary: the code every configuration error
// has had, whichever class it is.
const OPTION = { code: 'ERR_INVALID_CONFIG' };
// A value read from the environment is not an argument: it is refused as a ConfigError.
const ENV = { code: 'ERR_INVALID_CONFIG', ErrorClass: ConfigError };

const URL_FORM = 'redis://[user[:password]@]host[:port][/db] (rediss:// for TLS) or the word disabled';
// Query parameters whose values an error may show: the ones this parser reads, neither of
// which can hold a credential. Any other parameter (?password=, ?token=) is hidden.
const SHOWN_QUERY_KEYS = new Set(['db', 'name']);
// A scheme as RFC 3986 writes it, after any spaces or control characters (which new URL()
// would strip too).
// eslint-disable-next-line no-control-regex -- the characters new URL() strips from the ends
const SCHEME = /^[\x00-\x20]*[A-Za-z][A-Za-z0-9+.-]*:/;
// A user name as RFC 3986 allows it unencoded. Anything else before the ':' (an '@', a '/')
// means the text is cut in the wrong place, and what looks like the user name may be a
// piece of the password.
const USER_NAME = /^[A-Za-z0-9._~!$&'()*+,;=%-]+$/;

/**
 * Returns `text`, a Redis URL of any shape, well-formed or not, with everything that could
 * be a credential replaced by "***", so that it can appear in an error message. The rules
 * assume nothing about where the URL went wrong:
 * - The scheme and whatever separates it from the rest (any number of '/', '\\' or
 *   spaces, or none) stay. A text without a scheme is treated as what follows one.
 * - Everything before the last '@' is user information: a well-formed user name stays,
 *   whatever follows the first ':' goes ('alice:***@'); without a ':', all of it goes
 *   ('***@'), since a lone word before '@' is often a password. A password may hold '@',
 *   '/', ':', '#' or '?', so taking the last '@' hides more than needed when a later part
 *   holds one, never less.
 * - A host part with an empty host or a port that is not digits ('h:notaport', or
 *   'user:password' with the host forgotten) may itself be a piece of a password: it goes
 *   with all that follows.
 * - The path (the database number) stays; the query keeps the values of db and name only;
 *   a fragment goes.
 */
function redactUrl(text) {
  const s = String(text);
  const scheme = SCHEME.exec(s);
  let shown = scheme ? scheme[0] : '';
  let rest = s.slice(shown.length);
  const separator = /^[\s/\\]*/.exec(rest)[0];
  shown += separator;
  rest = rest.slice(separator.length);

  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    const user = colon > 0 ? userinfo.slice(0, colon) : '';
    shown += USER_NAME.test(user) ? `${user}:***@` : '***@';
    rest = rest.slice(at + 1);
  }

  const end = rest.search(/[/?#]/);
  const hostPort = end < 0 ? rest : rest.slice(0, end);
  // An IPv6 literal's colons are not a port's.
  const close = hostPort.startsWith('[') ? hostPort.indexOf(']') : -1;
  const colon = hostPort.indexOf(':', close + 1);
  if (colon === 0 || (colon > 0 && !/^\d*$/.test(hostPort.slice(colon + 1)))) return `${shown}***`;
  shown += hostPort;
  if (end < 0) return shown;

  const tail = rest.slice(end);
  const hash = tail.indexOf('#');
  const beforeHash = hash < 0 ? tail : tail.slice(0, hash);
  const question = beforeHash.indexOf('?');
  shown += question < 0 ? beforeHash : beforeHash.slice(0, question);
  if (question >= 0) {
    const params = beforeHash.slice(question + 1).split('&').map((param) => {
      const eq = param.indexOf('=');
      if (eq < 0) return param === '' ? '' : '***';
      return SHOWN_QUERY_KEYS.has(param.slice(0, eq).toLowerCase()) ? param : `${param.slice(0, eq)}=***`;
    });
    shown += `?${params.join('&')}`;
  }
  if (hash >= 0) shown += '#***';
  return shown;
}

/**
 * The ConfigError for a URL that `name` (REDIS_URL or option url) holds: says what is wrong
 * with it and shows it through redactUrl. Every error about a URL is made here, so none
 * quotes a piece of the URL that redactUrl has not seen.
 */
function urlError(name, problem, text) {
  return configError(`${name} ${problem}: ${inspect(redactUrl(text))}; expected ${URL_FORM}`);
}

function decodeCredential(name, part, raw) {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw configError(`the ${part} in ${name} has a malformed %-escape`);
  }
}

/**
 * Returns `host` when it can be a host name or an IP address (an IPv6 one possibly in
 * brackets), what the connection resolves. A URL or a "user:password@host" written where a
 * host goes (REDIS_HOST=redis://...) would otherwise reach the resolver's error messages, the
 * client's status and its inspect output whole, password included; it is refused here, and
 * the message does not show it, since no shape of such a text is safe to print.
 */
function checkHost(name, host) {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const zoneless = bare.split('%')[0];
  if (/[@/\\?#\s]/.test(host) || (bare.includes(':') && !net.isIPv6(zoneless)) || (bare !== host && !net.isIPv6(zoneless))) {
    throw configError(
      `${name} must be a host name or an IP address, not a URL or a host with a port or credentials ` +
        '(its value is not shown, as it may hold a password); put a URL in REDIS_URL or the option url',
    );
  }
  // An IPv6 address may come in brackets, as in a URL; the resolver wants it bare.
  return bare;
}

/** The decimal integer that an environment variable holds, from `min` to `max`. */
function parseInteger(name, raw, { min, max }) {
  const text = String(raw).trim();
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw invalidParameterError(name, `an integer from ${min} to ${max}`, raw, ENV);
  }
  return n;
}

/** The entries of `source` named in `keys` that `over` does not set itself. */
function pickDefined(source, keys, over) {
  const out = {};
  for (const key of keys) if (source[key] !== undefined && over[key] === undefined) out[key] = source[key];
  return out;
}

function parseTlsFlag(name, raw) {
  const v = String(raw).trim().toLowerCase();
  if (v === '' || v === 'false' || v === '0' || v === 'no') return false;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  throw invalidParameterError(name, 'true or false', raw, ENV);
}

/**
 * The database number `raw` that the URL `text` holds (in its path or its db parameter).
 * The error shows the whole URL through redactUrl, never `raw` alone: with a password
 * that holds a '/', what looks like the path may be the end of the password.
 */
function urlDb(name, what, raw, text) {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n <= MAX_DB)) throw urlError(name, `has ${what} that is not an integer from 0 to ${MAX_DB}`, text);
  return n;
}

/**
 * Parses a redis:// URL. `name` is what to call it in errors (REDIS_URL or option url).
 * Returns the settings it names; the word `disabled` returns { enabled: false }.
 */
function parseRedisUrl(name, raw) {
  const text = String(raw).trim();
  if (text.toLowerCase() === 'disabled') return { enabled: false };
  let url;
  try {
    url = new URL(text);
  } catch {
    // Node's error would carry the whole URL as its `input`: it is dropped here.
    throw urlError(name, 'is not a valid URL', text);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw urlError(name, 'must use the redis:// or rediss:// scheme', text);
  let host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host) throw urlError(name, 'has no host', text);
  const out = { enabled: true, host };
  if (url.protocol === 'rediss:') out.tls = true;
  if (url.port !== '') {
    // new URL() has checked that the port is digits below 65536; only 0 is left to refuse.
    out.port = Number(url.port);
    if (out.port < 1) throw urlError(name, 'has a port outside 1 to 65535', text);
  }
  // new URL() accepts "host:" with an empty port and drops it; that is a typo, not a default.
  const authority = text.replace(/^[a-z]+:\/\//i, '').split(/[/?#]/)[0];
  if (authority.endsWith(':')) throw urlError(name, 'has an empty port', text);
  if (url.username) out.username = decodeCredential(name, 'user name', url.username);
  if (url.password) out.password = decodeCredential(name, 'password', url.password);
  const path = url.pathname;
  if (path && path !== '/') out.db = urlDb(name, 'a database number', path.slice(1), text);
  for (const [key, value] of url.searchParams) {
    if (key === 'db') out.db = urlDb(name, 'a db parameter', value, text);
    else if (key === 'name') out.name = value;
  }
  return out;
}

/**
 * Resolves the client settings from `env` (REDIS_URL, else REDIS_HOST, REDIS_PORT,
 * REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB, REDIS_TLS) and `options` (which override them).
 * Throws ConfigError / UnsupportedError / TypeError / RangeError naming what is wrong.
 */
// The breaker's settings and their ranges (defaults come from the native side).
const BREAKER_KEYS = {
  stallMs: { min: 1, max: MAX_TIMER_MS },
  failureThreshold: { min: 0, max: 2 ** 31 - 1 },
  failureRatePercent: { min: 0, max: 100 },
  windowMs: { min: 10, max: MAX_TIMER_MS },
  minimumRequests: { min: 1, max: 2 ** 31 - 1 },
  openMs: { min: 1, max: MAX_TIMER_MS },
  maxOpenMs: { min: 1, max: MAX_TIMER_MS },
};

/** The breaker settings from `breaker` (false, true, or an object of BREAKER_KEYS). */
function resolveBreaker(breaker, fromEnv) {
  const config = { enabled: true, ...clientConstants.defaults.breaker, ...fromEnv };
  if (breaker === undefined) return config;
  if (typeof breaker === 'boolean') return { ...config, enabled: breaker };
  if (breaker === null || typeof breaker !== 'object') {
    throw invalidParameterError('option breaker', 'false or an object', breaker, OPTION);
  }
  checkKnownOptions(breaker, ['enabled', ...Object.keys(BREAKER_KEYS)], { path: 'breaker.', code: 'ERR_INVALID_CONFIG' });
  if (breaker.enabled !== undefined) config.enabled = checkType('option breaker.enabled', breaker.enabled, 'boolean', OPTION);
  for (const [key, range] of Object.entries(BREAKER_KEYS)) {
    if (breaker[key] !== undefined) config[key] = checkInteger(`option breaker.${key}`, breaker[key], { ...range, ...OPTION });
  }
  if (config.maxOpenMs < config.openMs) config.maxOpenMs = config.openMs;
  return config;
}

/** HIRECACHE_BREAKER (on/off) and HIRECACHE_BREAKER_STALL_MS, for the process-wide client. */
function breakerFromEnv(env) {
  const out = {};
  const raw = env.HIRECACHE_BREAKER;
  if (raw !== undefined && String(raw).trim() !== '') {
    const v = String(raw).trim().toLowerCase();
    if (['0', 'off', 'false', 'no'].includes(v)) out.enabled = false;
    else if (['1', 'on', 'true', 'yes'].includes(v)) out.enabled = true;
    else throw configError(`HIRECACHE_BREAKER must be on or off, got ${JSON.stringify(String(raw))}`);
  }
  const stall = env.HIRECACHE_BREAKER_STALL_MS;
  if (stall !== undefined && String(stall).trim() !== '') {
    out.stallMs = parseInteger('HIRECACHE_BREAKER_STALL_MS', stall, BREAKER_KEYS.stallMs);
  }
  return out;
}

// Every option createClient() reads. Any other name is refused, never ignored.
const CLIENT_OPTIONS = new Set([
  'url', 'host', 'port', 'username', 'password', 'db', 'name', 'connectionName', 'connectTimeout',
  'commandTimeout', 'keepAlive', 'noDelay', 'maxQueue', 'maxInFlight', 'maxQueueBytes', 'maxValueBytes',
  'maxBulkBytes', 'maxAggregateElements', 'maxLineBytes', 'maxDepth', 'reconnectBaseDelay',
  'reconnectMaxDelay', 'tls', 'metrics', 'breaker', 'logger', 'lazyConnect', 'keyPrefix', 'retryStrategy',
  'maxRetriesPerRequest', 'maxBlockingConnections', 'cluster', 'sentinels', 'sentinelPassword', 'sentinelUsername', 'role',
]);
// Options of ioredis and node-redis that users bring along, and what to do instead.
const FOREIGN_OPTIONS = {
  enableOfflineQueue: 'commands wait for a connection within commandTimeout (bounded by maxQueue), and fail fast once Redis is known to be down unless maxRetriesPerRequest lets them wait',
  enableReadyCheck: "'ready' is emitted once the server has answered",
  autoResubscribe: 'client.subscribe() always resubscribes after a reconnect, and emits subscriptionGap',
  autoResendUnfulfilledCommands: 'a written command is never resent (its outcome is unknown); see maxRetriesPerRequest for unsent ones',
  reconnectOnError: 'a READONLY reply (failover) reconnects by itself',
  enableAutoPipelining: 'every command issued in one turn of the event loop is written in one go, always',
  family: 'the address family follows what the host name resolves to',
  enableTLSForSentinelMode: 'the connections to the sentinels are plaintext; the primary\'s take the tls option',
  sentinelRetryStrategy: 'the sentinels are asked in turn at each connect attempt, within connectTimeout',
  natMap: 'not supported: the nodes must be reachable at the addresses they announce',
  socket: 'use host, port, connectTimeout, keepAlive and noDelay; for TLS, tls (true or tls.connect options) or a rediss:// URL',
  database: 'use db',
};

function checkOptionNames(options) {
  for (const key of Object.keys(options)) {
    if (CLIENT_OPTIONS.has(key)) continue;
    const hint = Object.prototype.hasOwnProperty.call(FOREIGN_OPTIONS, key) ? ` (not supported: ${FOREIGN_OPTIONS[key]})` : '';
    const err = new TypeError(`unknown option ${key}${hint}; known: ${[...CLIENT_OPTIONS].join(', ')}`);
    err.code = 'ERR_INVALID_CONFIG';
    throw err;
  }
  if (options.lazyConnect !== undefined && typeof options.lazyConnect !== 'boolean') {
    throw invalidParameterError('option lazyConnect', 'a boolean', options.lazyConnect, OPTION);
  }
  if (options.connectionName !== undefined && options.name !== undefined && options.connectionName !== options.name) {
    throw invalidParameterError('option connectionName', `the same as option name (${JSON.stringify(options.name)}), or left out`, options.connectionName, OPTION);
  }
}

function resolveConfig(env = process.env, options = {}) {
  if (options === null || typeof options !== 'object') {
    throw invalidParameterError('options', 'an object', options, OPTION);
  }
  // Sentinel mode (option sentinels, or REDIS_SENTINELS when no address is given in code):
  // `name` is then the primary's name as the sentinels know it, as in ioredis, and
  // connectionName is CLIENT SETNAME.
  const explicitAddress = options.url !== undefined || options.host !== undefined || options.cluster !== undefined;
  const sentinel = resolveSentinel(options, options.sentinels === undefined && explicitAddress ? {} : env);
  if (sentinel !== null) {
    options = { ...options };
    delete options.name;
    if (options.cluster !== undefined) throw configError('options cluster and sentinels were both given: a client talks to a cluster or to a primary its sentinels name, not both');
    if (options.url !== undefined || options.host !== undefined || options.port !== undefined) {
      throw configError('option sentinels names where the primary is found: leave out url, host and port');
    }
  }
  checkOptionNames(options);
  if (options.connectionName !== undefined && options.name === undefined) {
    // ioredis's name for CLIENT SETNAME.
    options = { ...options, name: options.connectionName };
  }
  // The separate variables first; REDIS_URL, when set, wins for whatever it names (a URL
  // without credentials still takes REDIS_PASSWORD, a common way to keep secrets apart).
  let fromEnv = { enabled: true };
  if (env.REDIS_HOST !== undefined && String(env.REDIS_HOST).trim() !== '') {
    fromEnv.host = checkHost('REDIS_HOST', String(env.REDIS_HOST).trim());
  }
  if (env.REDIS_PORT !== undefined && String(env.REDIS_PORT).trim() !== '') {
    fromEnv.port = parseInteger('REDIS_PORT', env.REDIS_PORT, { min: 1, max: 65535 });
  }
  if (env.REDIS_USERNAME) fromEnv.username = String(env.REDIS_USERNAME);
  if (env.REDIS_PASSWORD) fromEnv.password = String(env.REDIS_PASSWORD);
  if (env.REDIS_DB !== undefined && String(env.REDIS_DB).trim() !== '') {
    fromEnv.db = parseInteger('REDIS_DB', env.REDIS_DB, { min: 0, max: MAX_DB });
  }
  const rawUrl = env.REDIS_URL;
  if (rawUrl !== undefined && String(rawUrl).trim() !== '') {
    const fromUrl = parseRedisUrl('REDIS_URL', rawUrl);
    fromEnv = fromUrl.enabled === false
      ? fromUrl
      : { ...fromUrl, ...pickDefined(fromEnv, ['username', 'password', 'db'], fromUrl) };
  }
  const envTls = env.REDIS_TLS !== undefined && parseTlsFlag('REDIS_TLS', env.REDIS_TLS);

  let fromOptions = {};
  if (options.url !== undefined) fromOptions = parseRedisUrl('option url', checkType('option url', options.url, 'string', OPTION));
  const config = { ...DEFAULTS, ...(options.url !== undefined ? {} : fromEnv), ...fromOptions };
  if (options.url !== undefined) config.enabled = fromOptions.enabled !== false;
  // What asked for TLS besides the tls option: the URL in use, else REDIS_TLS.
  // REDIS_TLS=true holds whatever the URL says: it never turns into a plaintext connection.
  let tlsAskedBy = null;
  if (options.url !== undefined && fromOptions.tls) tlsAskedBy = 'option url';
  else if (options.url === undefined && fromEnv.tls) tlsAskedBy = 'REDIS_URL';
  else if (envTls) tlsAskedBy = 'REDIS_TLS';
  config.tls = config.enabled ? resolveTls(options.tls, tlsAskedBy, env) : null;

  const stringKeys = ['host', 'username', 'password', 'name'];
  for (const key of stringKeys) {
    // A password given as a number is still a password: its value never reaches a message.
    const secret = key === 'password';
    if (options[key] !== undefined) config[key] = checkType(`option ${key}`, options[key], 'string', { ...OPTION, secret });
  }
  if (options.host !== undefined && options.host !== '') config.host = checkHost('option host', options.host);
  const numberKeys = {
    port: { min: 1, max: 65535 },
    db: { min: 0, max: MAX_DB },
    connectTimeout: { min: 1, max: MAX_TIMER_MS },
    commandTimeout: { min: 0, max: MAX_TIMER_MS },
    keepAlive: { min: 0, max: MAX_TIMER_MS },
    maxQueue: { min: 1, max: 2 ** 31 - 1 },
    maxInFlight: { min: 1, max: 2 ** 31 - 1 },
    maxQueueBytes: { min: 1, max: Number.MAX_SAFE_INTEGER },
    maxValueBytes: { min: 1, max: MAX_BULK },
    maxBulkBytes: { min: 1, max: Number.MAX_SAFE_INTEGER },
    maxAggregateElements: { min: 1, max: 2 ** 31 - 1 },
    maxLineBytes: { min: 64, max: 2 ** 31 - 1 },
    maxDepth: { min: 1, max: 7 },
    reconnectBaseDelay: { min: 1, max: MAX_TIMER_MS },
    reconnectMaxDelay: { min: 1, max: MAX_TIMER_MS },
  };
  for (const [key, range] of Object.entries(numberKeys)) {
    if (options[key] !== undefined) config[key] = checkInteger(`option ${key}`, options[key], { ...range, ...OPTION });
  }
  if (options.keyPrefix !== undefined && options.keyPrefix !== null) {
    if (typeof options.keyPrefix !== 'string' && !Buffer.isBuffer(options.keyPrefix)) {
      throw invalidParameterError('option keyPrefix', 'a string or a Buffer', options.keyPrefix, OPTION);
    }
    config.keyPrefix = Buffer.isBuffer(options.keyPrefix) && options.keyPrefix.length === 0 ? '' : options.keyPrefix;
  }
  if (options.retryStrategy !== undefined && options.retryStrategy !== null) {
    if (typeof options.retryStrategy !== 'function') {
      throw invalidParameterError('option retryStrategy', 'a function (times) => delay in ms, or null to stop', options.retryStrategy, OPTION);
    }
    config.retryStrategy = options.retryStrategy;
  }
  if (options.maxRetriesPerRequest !== undefined) {
    config.maxRetriesPerRequest = options.maxRetriesPerRequest === null
      ? null
      : checkInteger('option maxRetriesPerRequest', options.maxRetriesPerRequest, { min: 0, max: 2 ** 31 - 1, ...OPTION });
  }
  if (options.maxBlockingConnections !== undefined) {
    config.maxBlockingConnections = checkInteger('option maxBlockingConnections', options.maxBlockingConnections, { min: 1, max: 1024, ...OPTION });
  }
  if (options.noDelay !== undefined) config.noDelay = checkType('option noDelay', options.noDelay, 'boolean', OPTION);
  if (options.metrics !== undefined) config.metrics = checkType('option metrics', options.metrics, 'boolean', OPTION);
  config.breaker = resolveBreaker(options.breaker, options.url !== undefined ? {} : breakerFromEnv(env));
  if (config.enabled === undefined) config.enabled = true;
  if (config.enabled) {
    if (!config.host) throw configError('the Redis host is empty');
    if (config.name !== '' && !/^[!-~]+$/.test(config.name)) {
      throw invalidParameterError('option name', 'printable ASCII without spaces (CLIENT SETNAME refuses others)', config.name, ENV);
    }
    if (config.username && !config.password) {
      throw configError('a Redis username was given without a password');
    }
  }
  if (config.reconnectMaxDelay < config.reconnectBaseDelay) config.reconnectMaxDelay = config.reconnectBaseDelay;
  config.sentinel = config.enabled ? sentinel : null;
  if (config.sentinel !== null) {
    if (options.sentinels === undefined) {
      for (const other of ['REDIS_CLUSTER_NODES', 'REDIS_URL']) {
        if (env[other] !== undefined && String(env[other]).trim() !== '') {
          throw configError(`REDIS_SENTINELS and ${other} are both set: set the one that describes your Redis (the primary's password goes in REDIS_PASSWORD)`);
        }
      }
    }
    // Where the native client starts: replaced by the primary the sentinels name before any
    // connection is opened.
    config.host = sentinel.sentinels[0].host;
    config.port = sentinel.sentinels[0].port;
  }
  config.cluster = config.enabled && config.sentinel === null ? clusterConfig(env, options, config) : null;
  config.keepAliveSeconds = config.keepAlive === 0 ? 0 : Math.max(1, Math.round(config.keepAlive / 1000));
  return config;
}

/**
 * The cluster settings (option cluster, else REDIS_CLUSTER_NODES), with what node URLs say
 * about credentials and TLS moved into `config`; null for a single Redis.
 */
function clusterConfig(env, options, config) {
  const fromEnv = options.cluster === undefined && options.url === undefined && env.REDIS_CLUSTER_NODES !== undefined
    && String(env.REDIS_CLUSTER_NODES).trim() !== '';
  if (fromEnv && env.REDIS_URL !== undefined && String(env.REDIS_URL).trim() !== '') {
    throw configError('REDIS_URL and REDIS_CLUSTER_NODES are both set: set REDIS_CLUSTER_NODES alone for a cluster '
      + '(credentials in REDIS_USERNAME / REDIS_PASSWORD or in the node URLs), or REDIS_URL alone for one Redis');
  }
  const cluster = resolveCluster(options.cluster, options.url !== undefined ? {} : env, config, parseRedisUrl);
  if (cluster === null) return null;
  const where = fromEnv ? 'REDIS_CLUSTER_NODES' : 'option cluster';
  const { fromUrls } = cluster;
  delete cluster.fromUrls;
  if (fromUrls.username !== undefined && options.username === undefined) config.username = fromUrls.username;
  if (fromUrls.password !== undefined && options.password === undefined) config.password = fromUrls.password;
  if (config.username && !config.password) throw configError('a Redis username was given without a password');
  if (config.db !== 0 || (fromUrls.db !== undefined && fromUrls.db !== 0)) {
    throw configError(`a Redis Cluster has one database (0), but database ${config.db || fromUrls.db} was asked for (${where})`);
  }
  if (fromUrls.tls === true && config.tls === null) config.tls = resolveTls(options.tls, where, env);
  if (config.retryStrategy !== null) {
    throw configError('option retryStrategy does not apply to a cluster: each node reconnects on its own '
      + '(reconnectBaseDelay, reconnectMaxDelay) and the slot map moves slots away from a node that failed');
  }
  config.host = cluster.nodes[0].host;
  config.port = cluster.nodes[0].port;
  return cluster;
}

module.exports = { resolveConfig, parseRedisUrl, redactUrl, DEFAULTS };
