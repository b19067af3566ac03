'use strict';
// Express middleware on a limiter: rateLimitByIp and rateLimitByKey.
const net = require('net');
const { DEFAULT_MAX_KEY_LENGTH, MAX_POINTS, RateLimitResult, describe } = require('./shared');
let warnedForwardedFor = false;

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
 * The bucket key for a client address: an IPv4 address as is (IPv4-mapped IPv6 addresses
 * included), an IPv6 address as its /`subnet` network, since one IPv6 user or host
 * typically holds a whole /64 or /56 of addresses.
 */
function ipKey(address, subnet = 56) {
  if (typeof address !== 'string' || address === '') return undefined;
  if (net.isIPv4(address)) return address;
  const g = ipv6Groups(address);
  if (g === null || g.length !== 8) return address;
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.${g[7] & 0xff}`;
  }
  const out = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, subnet - i * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    out.push((g[i] & mask).toString(16));
  }
  // Trailing zero groups collapse, so one network always gives one key.
  let end = 8;
  while (end > 1 && out[end - 1] === '0') end--;
  return `${out.slice(0, end).join(':')}${end < 8 ? '::' : ''}/${subnet}`;
}

function clientAddress(req) {
  if (!warnedForwardedFor && req.headers && req.headers['x-forwarded-for'] !== undefined) {
    const trust = req.app && typeof req.app.get === 'function' ? req.app.get('trust proxy') : undefined;
    if (!trust) {
      warnedForwardedFor = true;
      process.emitWarning(
        "rateLimitByIp: a request carries X-Forwarded-For but Express's 'trust proxy' is off, so every " +
          'client behind the proxy shares the proxy\'s bucket. If the app runs behind a proxy, set ' +
          "app.set('trust proxy', <hops or addresses>).",
        { code: 'HIRECACHE_RATELIMIT_TRUST_PROXY' },
      );
    }
  }
  return req.ip !== undefined ? req.ip : req.socket && req.socket.remoteAddress;
}

const HEADER_MODES = new Set(['draft', 'legacy', 'both', false]);

function middlewareOptions(name, limiter, options) {
  if (!limiter || typeof limiter.consume !== 'function') {
    throw new TypeError(`${name}: the first argument must be a limiter from createLimiter()`);
  }
  if (options === null || typeof options !== 'object') throw new TypeError(`${name}: options must be an object, got ${describe(options)}`);
  const known = ['skip', 'handler', 'cost', 'headers', 'onMissingKey', 'ipv6Subnet', 'policyName', 'message'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new TypeError(`${name}: unknown option ${k} (known: ${known.join(', ')})`);
  }
  const { skip, handler, onMissingKey = 'reject', ipv6Subnet = 56, message } = options;
  const cost = options.cost === undefined ? 1 : options.cost;
  const headers = options.headers === undefined ? 'both' : options.headers;
  if (skip !== undefined && typeof skip !== 'function') throw new TypeError(`${name}: option skip must be a function, got ${describe(skip)}`);
  if (handler !== undefined && typeof handler !== 'function') throw new TypeError(`${name}: option handler must be a function, got ${describe(handler)}`);
  if (typeof cost !== 'function' && !(Number.isInteger(cost) && cost >= 0 && cost <= MAX_POINTS)) {
    throw new RangeError(`${name}: option cost must be a whole number >= 0 or a function, got ${describe(cost)}`);
  }
  if (!HEADER_MODES.has(headers)) throw new TypeError(`${name}: option headers must be 'draft', 'legacy', 'both' or false, got ${describe(headers)}`);
  if (onMissingKey !== 'reject' && onMissingKey !== 'skip' && typeof onMissingKey !== 'function') {
    throw new TypeError(`${name}: option onMissingKey must be 'reject', 'skip' or a function, got ${describe(onMissingKey)}`);
  }
  if (!Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
    throw new RangeError(`${name}: option ipv6Subnet must be a whole number from 1 to 128, got ${describe(ipv6Subnet)}`);
  }
  // A structured-field string may hold printable ASCII except '"' and '\'.
  const policyName = String(options.policyName === undefined ? limiter.keyPrefix || 'default' : options.policyName).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '_');
  return { skip, handler, cost, headers, onMissingKey, ipv6Subnet, policyName, message };
}

function setHeaders(res, limiter, result, o) {
  if (o.headers === false || res.headersSent) return;
  const remaining = Math.max(0, result.remainingPoints);
  const resetSec = result.msBeforeNext < 0 ? limiter.duration : Math.ceil(result.msBeforeNext / 1000);
  if (o.headers === 'draft' || o.headers === 'both') {
    // draft-ietf-httpapi-ratelimit-headers-09: both fields are lists; a second limiter on
    // the same route adds its own member instead of overwriting the first one's.
    res.append('RateLimit-Policy', `"${o.policyName}";q=${limiter.points};w=${Math.ceil(limiter.duration)}`);
    res.append('RateLimit', `"${o.policyName}";r=${remaining};t=${resetSec}`);
  }
  if (o.headers === 'legacy' || o.headers === 'both') {
    // With several limiters on one route the most restrictive one speaks.
    const previous = res.getHeader('X-RateLimit-Remaining');
    if (previous === undefined || Number(previous) >= remaining) {
      res.setHeader('X-RateLimit-Limit', String(limiter.points));
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

function makeMiddleware(name, limiter, keyFn, options) {
  const o = middlewareOptions(name, limiter, options);
  const maxKeyLength = limiter.maxKeyLength || DEFAULT_MAX_KEY_LENGTH;
  return function rateLimit(req, res, next) {
    const run = async () => {
      if (o.skip !== undefined && (await o.skip(req, res))) return next();
      let key = await keyFn(req, res);
      if (typeof key === 'number' && Number.isFinite(key)) key = String(key);
      // Never a shared bucket named "undefined": no key is the caller's 400-or-skip choice.
      if (typeof key !== 'string' || key === '' || key.length > maxKeyLength) return missingKey(req, res, next, o);
      const cost = typeof o.cost === 'function' ? await o.cost(req, res) : o.cost;
      let result;
      try {
        result = await limiter.consume(key, cost);
      } catch (refusal) {
        if (!(refusal instanceof RateLimitResult)) throw refusal; // a store failure: an Error
        setHeaders(res, limiter, refusal, o);
        if (o.handler !== undefined) return o.handler(req, res, next, refusal);
        return tooMany(req, res, refusal, o);
      }
      setHeaders(res, limiter, result, o);
      return next();
    };
    run().catch(next);
  };
}

/**
 * Express middleware limiting each client address: req.ip (so Express's 'trust proxy'
 * decides which address that is), IPv6 clients by their /56 (options.ipv6Subnet), IPv4-mapped
 * addresses as IPv4. Answers 429 with a JSON body and Retry-After.
 * options: skip(req, res), handler(req, res, next, result), cost (number or (req, res) =>
 * number), headers ('draft' | 'legacy' | 'both' (default) | false), policyName,
 * message (string or JSON body of the 429), ipv6Subnet.
 */
function rateLimitByIp(limiter, options = {}) {
  const subnet = options && options.ipv6Subnet !== undefined ? options.ipv6Subnet : 56;
  return makeMiddleware('rateLimitByIp', limiter, (req) => ipKey(clientAddress(req), subnet), options);
}

/**
 * Express middleware limiting by keyFn(req, res) (a string, number or a promise of one),
 * e.g. the e-mail of a login. A missing key (undefined, null, '') or one longer than the
 * limiter's maxKeyLength is answered 400 (options.onMissingKey 'reject', the default), or
 * passed through ('skip'), or handed to onMissingKey(req, res, next). Other options as
 * rateLimitByIp.
 */
function rateLimitByKey(limiter, keyFn, options = {}) {
  if (typeof keyFn !== 'function') throw new TypeError(`rateLimitByKey: keyFn must be a function, got ${describe(keyFn)}`);
  return makeMiddleware('rateLimitByKey', limiter, keyFn, options);
}

module.exports = { rateLimitByIp, rateLimitByKey, ipKey };
