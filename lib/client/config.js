'use strict';
// Reads the Redis configuration from the environment and from options in code (which win),
// validates it, and returns the checked settings the native client receives.
const { ConfigError, UnsupportedError } = require('../errors');
const { clientConstants } = require('../binding');

// The native client's own defaults (one source: src/client/redis_client.h and the binding).
const DEFAULTS = Object.freeze({
  username: '',
  password: '',
  db: 0,
  name: '',
  ...clientConstants.defaults,
});

const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_BULK = 512 * 1024 * 1024; // Redis's own proto-max-bulk-len default.

function configError(message, Kind = ConfigError) {
  const err = new Kind(message, Kind === UnsupportedError ? 'ERR_UNSUPPORTED' : 'ERR_INVALID_CONFIG');
  return err;
}

/**
 * Hides the credentials of a redis:// URL so it can appear in an error message. A password
 * may itself hold '@', '/' or ':', so everything between '//' and the last '@' goes (when
 * the path holds an '@', more is hidden than needed, never less).
 */
function redactUrl(text) {
  const s = String(text);
  const start = s.indexOf('//');
  const at = s.lastIndexOf('@');
  if (start < 0 || at < start) return s;
  const userinfo = s.slice(start + 2, at);
  const colon = userinfo.indexOf(':');
  const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  return `${s.slice(0, start + 2)}${user && colon >= 0 ? `${user}:***` : '***'}@${s.slice(at + 1)}`;
}

function decodeCredential(name, part, raw) {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw configError(`the ${part} in ${name} has a malformed %-escape`);
  }
}

function describe(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

function parseInteger(name, raw, { min, max }) {
  const text = typeof raw === 'number' ? String(raw) : String(raw).trim();
  if (!/^\d+$/.test(text)) {
    throw configError(`${name} must be an integer from ${min} to ${max}, got ${describe(raw)}`);
  }
  const n = Number(text);
  if (n < min || n > max) {
    throw configError(`${name} must be an integer from ${min} to ${max}, got ${describe(raw)}`);
  }
  return n;
}

function checkNumberOption(name, value, { min, max }) {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    const err = new TypeError(`option ${name} must be an integer, got ${describe(value)}`);
    err.code = 'ERR_INVALID_CONFIG';
    throw err;
  }
  if (value < min || value > max) {
    const err = new RangeError(`option ${name} must be from ${min} to ${max}, got ${value}`);
    err.code = 'ERR_INVALID_CONFIG';
    throw err;
  }
  return value;
}

function checkStringOption(name, value) {
  if (typeof value !== 'string') {
    const err = new TypeError(`option ${name} must be a string, got ${describe(value)}`);
    err.code = 'ERR_INVALID_CONFIG';
    throw err;
  }
  return value;
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
  throw configError(`${name} must be true or false, got ${describe(raw)}`);
}

function tlsUnsupported(source) {
  return configError(
    `${source} asks for TLS, which hirecache does not support yet; it will not fall back to a plaintext connection`,
    UnsupportedError,
  );
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
    throw configError(`${name} is not a valid URL: ${describe(redactUrl(text))}; expected redis://[user[:password]@]host[:port][/db] or the word disabled`);
  }
  if (url.protocol === 'rediss:') throw tlsUnsupported(name);
  if (url.protocol !== 'redis:') {
    throw configError(`${name} must use the redis:// scheme, got ${describe(url.protocol)}`);
  }
  let host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host) throw configError(`${name} has no host: ${describe(redactUrl(text))}`);
  const out = { enabled: true, host };
  if (url.port !== '') out.port = parseInteger(`the port in ${name}`, url.port, { min: 1, max: 65535 });
  // new URL() accepts "host:" with an empty port and drops it; that is a typo, not a default.
  const authority = text.replace(/^[a-z]+:\/\//i, '').split(/[/?#]/)[0];
  if (authority.endsWith(':')) throw configError(`${name} has an empty port: ${describe(redactUrl(text))}`);
  if (url.username) out.username = decodeCredential(name, 'user name', url.username);
  if (url.password) out.password = decodeCredential(name, 'password', url.password);
  const path = url.pathname;
  if (path && path !== '/') {
    out.db = parseInteger(`the database number in ${name}`, path.slice(1), { min: 0, max: 2 ** 31 - 1 });
  }
  for (const [key, value] of url.searchParams) {
    if (key === 'db') out.db = parseInteger(`the db parameter of ${name}`, value, { min: 0, max: 2 ** 31 - 1 });
    else if (key === 'name') out.name = value;
  }
  return out;
}

/**
 * Resolves the client settings from `env` (REDIS_URL, else REDIS_HOST, REDIS_PORT,
 * REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB, REDIS_TLS) and `options` (which override them).
 * Throws ConfigError / UnsupportedError / TypeError / RangeError naming what is wrong.
 */
function resolveConfig(env = process.env, options = {}) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  // The separate variables first; REDIS_URL, when set, wins for whatever it names (a URL
  // without credentials still takes REDIS_PASSWORD, a common way to keep secrets apart).
  let fromEnv = { enabled: true };
  if (env.REDIS_HOST !== undefined && String(env.REDIS_HOST).trim() !== '') {
    fromEnv.host = String(env.REDIS_HOST).trim();
  }
  if (env.REDIS_PORT !== undefined && String(env.REDIS_PORT).trim() !== '') {
    fromEnv.port = parseInteger('REDIS_PORT', env.REDIS_PORT, { min: 1, max: 65535 });
  }
  if (env.REDIS_USERNAME) fromEnv.username = String(env.REDIS_USERNAME);
  if (env.REDIS_PASSWORD) fromEnv.password = String(env.REDIS_PASSWORD);
  if (env.REDIS_DB !== undefined && String(env.REDIS_DB).trim() !== '') {
    fromEnv.db = parseInteger('REDIS_DB', env.REDIS_DB, { min: 0, max: 2 ** 31 - 1 });
  }
  const rawUrl = env.REDIS_URL;
  if (rawUrl !== undefined && String(rawUrl).trim() !== '') {
    const fromUrl = parseRedisUrl('REDIS_URL', rawUrl);
    fromEnv = fromUrl.enabled === false
      ? fromUrl
      : { ...fromUrl, ...pickDefined(fromEnv, ['username', 'password', 'db'], fromUrl) };
  }
  if (env.REDIS_TLS !== undefined && parseTlsFlag('REDIS_TLS', env.REDIS_TLS)) throw tlsUnsupported('REDIS_TLS');

  let fromOptions = {};
  if (options.url !== undefined) fromOptions = parseRedisUrl('option url', checkStringOption('url', options.url));
  if (options.tls !== undefined && options.tls !== false && options.tls !== null) throw tlsUnsupported('option tls');
  const config = { ...DEFAULTS, ...(options.url !== undefined ? {} : fromEnv), ...fromOptions };
  if (options.url !== undefined) config.enabled = fromOptions.enabled !== false;

  const stringKeys = ['host', 'username', 'password', 'name'];
  for (const key of stringKeys) {
    if (options[key] !== undefined) config[key] = checkStringOption(key, options[key]);
  }
  const numberKeys = {
    port: { min: 1, max: 65535 },
    db: { min: 0, max: 2 ** 31 - 1 },
    connectTimeout: { min: 1, max: MAX_TIMER_MS },
    commandTimeout: { min: 0, max: MAX_TIMER_MS },
    keepAlive: { min: 0, max: MAX_TIMER_MS },
    maxQueue: { min: 1, max: 2 ** 31 - 1 },
    maxInFlight: { min: 1, max: 2 ** 31 - 1 },
    maxValueBytes: { min: 1, max: MAX_BULK },
    maxBulkBytes: { min: 1, max: Number.MAX_SAFE_INTEGER },
    maxAggregateElements: { min: 1, max: 2 ** 31 - 1 },
    maxLineBytes: { min: 64, max: 2 ** 31 - 1 },
    maxDepth: { min: 1, max: 7 },
    reconnectBaseDelay: { min: 1, max: MAX_TIMER_MS },
    reconnectMaxDelay: { min: 1, max: MAX_TIMER_MS },
  };
  for (const [key, range] of Object.entries(numberKeys)) {
    if (options[key] !== undefined) config[key] = checkNumberOption(key, options[key], range);
  }
  if (options.noDelay !== undefined) {
    if (typeof options.noDelay !== 'boolean') throw new TypeError(`option noDelay must be a boolean, got ${describe(options.noDelay)}`);
    config.noDelay = options.noDelay;
  }
  if (config.enabled === undefined) config.enabled = true;
  if (config.enabled) {
    if (!config.host) throw configError('the Redis host is empty');
    if (config.name !== '' && !/^[!-~]+$/.test(config.name)) {
      throw configError(`option name must be printable ASCII without spaces (CLIENT SETNAME refuses others), got ${describe(config.name)}`);
    }
    if (config.username && !config.password) {
      throw configError('a Redis username was given without a password');
    }
  }
  if (config.reconnectMaxDelay < config.reconnectBaseDelay) config.reconnectMaxDelay = config.reconnectBaseDelay;
  config.keepAliveSeconds = config.keepAlive === 0 ? 0 : Math.max(1, Math.round(config.keepAlive / 1000));
  return config;
}

module.exports = { resolveConfig, parseRedisUrl, redactUrl, DEFAULTS };
