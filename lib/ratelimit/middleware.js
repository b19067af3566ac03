'use strict';
// Express middleware on a limiter: rateLimitByIp and rateLimitByKey.
const net = require('net');
const { DEFAULT_MAX_KEY_LENGTH, MAX_POINTS, RateLimitResult } = require('./shared');
const { invalidParameterError, checkInteger, checkType, checkOneOf, checkKnownOptions } = require('../util/validate');

// Warnings about the deployment are emitted once per process, by their code.
const warned = new Set();
function warnOnce(code, message) {
  if (warned.has(code)) return;
  warned.add(code);
  process.emitWarning(message, { code });
}

/** Parses an IPv6 address into its eight 16-bit groups, or returns null. */
function ipv6Groups(address) {
  const at = address.indexOf('%'); // a zone index (fe80::1%eth0) is not part of the address
  let ip = at === -1 ? address : address.slice(0, at);
  if (!net.isIPv6(ip)) return null;
  const lastColon = ip.lastIndexOf(':');
  if (ip.indexOf('.', lastColon) !== -1) {
    // A dotted IPv4 tail (::ffff:192.0.2.1) is two groups written differently.
    const o = ip.slice(lastColon + 1).split('.').map(Number);
    ip = `${ip.slice(0, lastColon + 1)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const parse = (part) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const halves = ip.split('::');
  const head = parse(halves[0]);
  if (halves.length === 1) return head;
  const tail = parse(halves[1]);
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * The network of the first `prefix` bits of `groups`, written as RFC 5952 does (lower-case
 * hex, the longest run of two or more zero groups as '::') followed by /prefix, so that one
 * network always gives one key however its addresses were written.
 */
function networkKey(groups, prefix) {
  const masked = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, prefix - i * 16));
    return g & ((0xffff << (16 - keep)) & 0xffff);
  });
  let runStart = 0;
  let runLength = 0;
  for (let i = 0; i < 8; i++) {
    let end = i;
    while (end < 8 && masked[end] === 0) end++;
    if (end - i > runLength) [runStart, runLength] = [i, end - i];
    i = end;
  }
  const hex = (part) => part.map((g) => g.toString(16)).join(':');
  const text = runLength < 2 ? hex(masked) : `${hex(masked.slice(0, runStart))}::${hex(masked.slice(runStart + runLength))}`;
  return `${text}/${prefix}`;
}

/** Whether groups[from..to) are all zero. */
function zeroGroups(groups, from, to) {
  for (let i = from; i < to; i++) if (groups[i] !== 0) return false;
  return true;
}

/** The IPv4 address in the last 32 bits of an IPv6 address's groups, dotted. */
function embeddedIpv4(groups) {
  return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
}

/**
 * The bucket key for a client address, or undefined when `address` is not an IP address.
 * - An IPv4 address is its own key.
 * - An IPv6 address that stands for an IPv4 client is keyed as that IPv4 address, so the
 *   client has one bucket however it reached the app: IPv4-mapped (::ffff:a.b.c.d, an IPv4
 *   client on a dual-stack socket), IPv4-translated (::ffff:0:a.b.c.d, SIIT) and the NAT64
 *   well-known prefix 64:ff9b::/96 (RFC 6052), where every translated client carries its own
 *   IPv4 address in the last 32 bits and a shared /`subnet` would put them all in one bucket.
 * - An address in ::/96 (the unspecified ::, the loopback ::1 and the deprecated
 *   IPv4-compatible ::a.b.c.d) is keyed as itself (/128): nobody holds a network there, and
 *   nothing still produces IPv4-compatible addresses, so the IPv4 inside is no client's.
 * - Any other IPv6 address is keyed by its /`subnet` network, since one IPv6 user or host
 *   typically holds a whole /64 or /56. Network-specific NAT64 prefixes (64:ff9b:1::/48 and
 *   others) are among these: where the IPv4 address sits depends on how the operator chose
 *   the prefix length.
 * A zone index (fe80::1%eth0) is ignored.
 */
function ipKey(address, subnet = 56) {
  checkInteger('subnet', subnet, { where: 'ipKey', min: 1, max: 128 });
  if (typeof address !== 'string') return undefined;
  if (net.isIPv4(address)) return address;
  const g = ipv6Groups(address);
  if (g === null || g.length !== 8) return undefined;
  if (zeroGroups(g, 0, 4)) {
    if (g[4] === 0 && g[5] === 0xffff) return embeddedIpv4(g); // ::ffff:a.b.c.d
    if (g[4] === 0xffff && g[5] === 0) return embeddedIpv4(g); // ::ffff:0:a.b.c.d
    if (g[4] === 0 && g[5] === 0) return networkKey(g, 128); // ::, ::1, ::a.b.c.d
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && zeroGroups(g, 2, 6)) return embeddedIpv4(g); // 64:ff9b::a.b.c.d
  return networkKey(g, subnet);
}

/**
 * The address in `a.b.c.d:port` or `[v6]:port` (some proxies write the client's port into
 * X-Forwarded-For, and Express's req.ip keeps it), or undefined.
 */
function withoutPort(address) {
  if (typeof address !== 'string') return undefined;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(address);
  if (v4 !== null) return v4[1];
  const v6 = /^\[([0-9A-Fa-f:.]+(?:%[^\]]+)?)\](?::\d{1,5})?$/.exec(address);
  return v6 !== null ? v6[1] : undefined;
}

/**
 * The bucket key of the request's client: ipKey(req.ip), so Express's 'trust proxy' decides
 * which address that is, or of the socket's address outside Express. A req.ip that is not
 * an IP address (with 'trust proxy' on, whatever a client wrote into X-Forwarded-For) must not
 * become a bucket the client chose: the socket's address is keyed instead, and when that is
 * not an IP address either, the key is missing (options.onMissingKey decides).
 */
function clientKey(req, subnet) {
  if (!warned.has('HIRECACHE_RATELIMIT_TRUST_PROXY') && req.headers && req.headers['x-forwarded-for'] !== undefined) {
    const trust = req.app && typeof req.app.get === 'function' ? req.app.get('trust proxy') : undefined;
    if (!trust) {
      warnOnce(
        'HIRECACHE_RATELIMIT_TRUST_PROXY',
        "rateLimitByIp: a request carries X-Forwarded-For but Express's 'trust proxy' is off, so every " +
          'client behind the proxy shares the proxy\'s bucket. If the app runs behind a proxy, set ' +
          "app.set('trust proxy', <hops or addresses>).",
      );
    }
  }
  const socketAddress = req.socket ? req.socket.remoteAddress : undefined;
  if (req.ip === undefined) return ipKey(socketAddress, subnet);
  const key = ipKey(req.ip, subnet) ?? ipKey(withoutPort(req.ip), subnet);
  if (key !== undefined) return key;
  warnOnce(
    'HIRECACHE_RATELIMIT_NOT_AN_IP',
    'rateLimitByIp: req.ip is not an IP address (nor one with a port), so the request is keyed by the address of its ' +
      'connection instead (or, without one, answered as a missing key). Express takes req.ip from ' +
      "X-Forwarded-For when 'trust proxy' trusts the sender; trust only your own proxies (a hop " +
      'count or their addresses), not true.',
  );
  return ipKey(socketAddress, subnet);
}

const HEADER_MODES = ['draft', 'legacy', 'both', false];
const MIDDLEWARE_OPTIONS = ['skip', 'handler', 'cost', 'headers', 'onMissingKey', 'ipv6Subnet', 'policyName', 'message'];

function middlewareOptions(name, limiter, options) {
  const where = { where: name };
  if (!limiter || typeof limiter.consume !== 'function') {
    throw invalidParameterError('the first argument', 'a limiter from createLimiter()', limiter, where);
  }
  checkType('options', options, 'object', where);
  checkKnownOptions(options, MIDDLEWARE_OPTIONS, where);
  const { skip, handler, onMissingKey = 'reject', ipv6Subnet = 56, message } = options;
  const cost = options.cost === undefined ? 1 : options.cost;
  const headers = options.headers === undefined ? 'both' : options.headers;
  if (skip !== undefined) checkType('option skip', skip, 'function', where);
  if (handler !== undefined) checkType('option handler', handler, 'function', where);
  if (typeof cost !== 'function') {
    checkInteger('option cost', cost, { ...where, min: 0, max: MAX_POINTS, expected: `an integer from 0 to ${MAX_POINTS} or a function` });
  }
  checkOneOf('option headers', headers, HEADER_MODES, "'draft', 'legacy', 'both' or false", where);
  if (typeof onMissingKey !== 'function') checkOneOf('option onMissingKey', onMissingKey, ['reject', 'skip'], "'reject', 'skip' or a function", where);
  checkInteger('option ipv6Subnet', ipv6Subnet, { ...where, min: 1, max: 128 });
  // A structured-field string may hold printable ASCII except '"' and '\'.
  const policyName = String(options.policyName === undefined ? limiter.keyPrefix || 'default' : options.policyName).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '_');
  // The bucket's capacity: what X-RateLimit-Remaining can reach, so X-RateLimit-Limit.
  const capacity = limiter.burst === undefined ? limiter.points : limiter.burst;
  // RateLimit-Policy states the sustained quota, q points per w seconds. A bucket holding more
  // or less than q adds its capacity as a parameter of its own, prefixed with the vendor's
  // name as the draft asks; a client that does not know a parameter ignores it.
  let policy = `"${policyName}";q=${limiter.points};w=${Math.ceil(limiter.duration)}`;
  if (capacity !== limiter.points) policy += `;hirecache-burst=${capacity}`;
  return { skip, handler, cost, headers, onMissingKey, ipv6Subnet, policyName, message, capacity, policy };
}

function setHeaders(res, limiter, result, o) {
  if (o.headers === false || res.headersSent) return;
  const remaining = Math.max(0, result.remainingPoints);
  const resetSec = result.msBeforeNext < 0 ? limiter.duration : Math.ceil(result.msBeforeNext / 1000);
  if (o.headers === 'draft' || o.headers === 'both') {
    // draft-ietf-httpapi-ratelimit-headers (09 to 11): both fields are lists; a second
    // limiter on the same route adds its own member instead of overwriting the first one's.
    res.append('RateLimit-Policy', o.policy);
    res.append('RateLimit', `"${o.policyName}";r=${remaining};t=${resetSec}`);
  }
  if (o.headers === 'legacy' || o.headers === 'both') {
    // With several limiters on one route the most restrictive one speaks.
    const previous = res.getHeader('X-RateLimit-Remaining');
    if (previous === undefined || Number(previous) >= remaining) {
      res.setHeader('X-RateLimit-Limit', String(o.capacity));
      res.setHeader('X-RateLimit-Remaining', String(remaining));
      res.setHeader('X-RateLimit-Reset', String(Math.ceil((Date.now() + resetSec * 1000) / 1000)));
    }
  }
}

function tooMany(req, res, result, o) {
  const retryAfter = result.msBeforeNext < 0 ? undefined : Math.max(1, Math.ceil(result.msBeforeNext / 1000));
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
  const body = o.message !== undefined ? o.message : { error: 'Too Many Requests', message: 'Too many requests, please try again later.', retryAfter };
  res.status(429);
  if (typeof body === 'string') res.json({ error: 'Too Many Requests', message: body, retryAfter });
  else res.json(body);
}

function missingKey(req, res, next, o) {
  if (o.onMissingKey === 'skip') return next();
  if (typeof o.onMissingKey === 'function') return o.onMissingKey(req, res, next);
  res.status(400).json({ error: 'Bad Request', message: 'The request lacks the value it is rate-limited by.' });
}

/**
 * Calls `then` with `value`: at once when it is a plain value, or once it settles when it is a
 * thenable, as `await` would (a rejection rejects what is returned). A plain value so costs
 * no microtask turn. Returns what `then` returns, or a promise of it.
 */
function afterSettled(value, then) {
  return typeof value?.then === 'function' ? Promise.resolve(value).then(then) : then(value);
}

function makeMiddleware(name, limiter, keyFn, options) {
  const o = middlewareOptions(name, limiter, options);
  const maxKeyLength = limiter.maxKeyLength || DEFAULT_MAX_KEY_LENGTH;

  // The steps of one request. Each returns what the request's last step returns (a promise
  // once a step on the way gave one), so a throw or a rejection anywhere, in a handler's
  // promise too, reaches next(err) as from one async function; yet a skip, keyFn or cost that
  // answers with a plain value is not awaited.
  function begin(req, res, next) {
    if (o.skip === undefined) return limitByKey(req, res, next);
    return afterSettled(o.skip(req, res), (skipped) => (skipped ? next() : limitByKey(req, res, next)));
  }

  function limitByKey(req, res, next) {
    return afterSettled(keyFn(req, res), (key) => {
      if (typeof key === 'number' && Number.isFinite(key)) key = String(key);
      // Never a shared bucket named "undefined": no key is the caller's 400-or-skip choice.
      if (typeof key !== 'string' || key === '' || key.length > maxKeyLength) return missingKey(req, res, next, o);
      if (typeof o.cost !== 'function') return consume(req, res, next, key, o.cost);
      return afterSettled(o.cost(req, res), (cost) => consume(req, res, next, key, cost));
    });
  }

  function consume(req, res, next, key, cost) {
    return Promise.resolve(limiter.consume(key, cost)).then(
      (result) => {
        setHeaders(res, limiter, result, o);
        return next();
      },
      (refusal) => {
        if (!(refusal instanceof RateLimitResult)) throw refusal; // a store failure: an Error
        setHeaders(res, limiter, refusal, o);
        return o.handler !== undefined ? o.handler(req, res, next, refusal) : tooMany(req, res, refusal, o);
      },
    );
  }

  return function rateLimit(req, res, next) {
    try {
      const outcome = begin(req, res, next);
      if (typeof outcome?.then === 'function') Promise.resolve(outcome).catch(next);
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Express middleware limiting each client address: req.ip (so Express's 'trust proxy'
 * decides which address that is; one that is not an IP address gives way to the socket's),
 * keyed by ipKey: IPv6 clients by their /56 (options.ipv6Subnet), IPv4 clients seen through
 * IPv6 (mapped, translated, NAT64) as IPv4. Answers 429 with a JSON body and Retry-After.
 * options: skip(req, res), handler(req, res, next, result), cost (number or (req, res) =>
 * number), headers ('draft' | 'legacy' | 'both' (default) | false), policyName,
 * message (string or JSON body of the 429), ipv6Subnet. skip, cost and keyFn may answer with
 * a value or a promise; only a promise is awaited.
 */
function rateLimitByIp(limiter, options = {}) {
  const subnet = options && options.ipv6Subnet !== undefined ? options.ipv6Subnet : 56;
  return makeMiddleware('rateLimitByIp', limiter, (req) => clientKey(req, subnet), options);
}

/**
 * Express middleware limiting by keyFn(req, res) (a string, number or a promise of one),
 * e.g. the e-mail of a login. A missing key (undefined, null, '') or one longer than the
 * limiter's maxKeyLength is answered 400 (options.onMissingKey 'reject', the default), or
 * passed through ('skip'), or handed to onMissingKey(req, res, next). Other options as
 * rateLimitByIp.
 */
function rateLimitByKey(limiter, keyFn, options = {}) {
  checkType('keyFn', keyFn, 'function', { where: 'rateLimitByKey' });
  return makeMiddleware('rateLimitByKey', limiter, keyFn, options);
}

module.exports = { rateLimitByIp, rateLimitByKey, ipKey };
