'use strict';
// Express middleware on a limiter: rateLimitByIp and rateLimitByKey. They take
// express-rate-limit's option names (honoured with its meaning, or refused by name with what
// to do instead) and write its header formats byte for byte: draft-6, draft-7 and draft-8 of
// the IETF RateLimit fields and the legacy X-RateLimit-* ones. docs/ratelimit.md has the
// table of its options and of how a token bucket's numbers fill its fields.
const net = require('net');
const { createHash } = require('crypto');
const { STATUS_CODES } = require('http');
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
 * `warn` says which of the two deployment warnings this middleware may emit:
 * { xForwardedFor, notAnIp } (the validate option turns them off).
 */
function clientKey(req, subnet, warn) {
  if (warn.xForwardedFor && !warned.has('HIRECACHE_RATELIMIT_TRUST_PROXY') && req.headers && req.headers['x-forwarded-for'] !== undefined) {
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
  if (!warn.notAnIp) return ipKey(socketAddress, subnet);
  warnOnce(
    'HIRECACHE_RATELIMIT_NOT_AN_IP',
    'rateLimitByIp: req.ip is not an IP address (nor one with a port), so the request is keyed by the address of its ' +
      'connection instead (or, without one, answered as a missing key). Express takes req.ip from ' +
      "X-Forwarded-For when 'trust proxy' trusts the sender; trust only your own proxies (a hop " +
      'count or their addresses), not true.',
  );
  return ipKey(socketAddress, subnet);
}

// ---- Options ------------------------------------------------------------------------------

// express-rate-limit's default 429 message, which hirecache's JSON body carries too.
const DEFAULT_MESSAGE = 'Too many requests, please try again later.';
// hirecache's headers option; true is express-rate-limit's old name for legacyHeaders: true.
const HEADER_MODES = ['draft', 'legacy', 'both', false, true];
const STANDARD_HEADERS = [false, true, 'draft-6', 'draft-7', 'draft-8'];

// The options both middlewares take: hirecache's own, then express-rate-limit's.
const MIDDLEWARE_OPTIONS = [
  'skip', 'handler', 'cost', 'headers', 'onMissingKey', 'policyName', 'message',
  'windowMs', 'limit', 'max', 'standardHeaders', 'legacyHeaders', 'identifier', 'statusCode', 'retryAfter',
  'requestPropertyName', 'skipFailedRequests', 'skipSuccessfulRequests', 'requestWasSuccessful',
  'passOnStoreError', 'validate', 'logger',
];
// How rateLimitByIp keys; rateLimitByKey takes its key function as its second argument.
const BY_IP_OPTIONS = ['ipv6Subnet', 'keyGenerator'];

// express-rate-limit's options that neither middleware takes, each with what to do instead.
const REFUSED = {
  store:
    "absent: the limiter (the first argument) is the store, chosen by createLimiter's store option; " +
    "to keep express-rate-limit's own middleware, give it HirecacheStore from hirecache/ratelimit as its store",
  onLimitReached: 'absent (express-rate-limit v7 removed it): handler is called for every refused request',
  draft_polli_ratelimit_headers: "absent (express-rate-limit v7 removed it): use standardHeaders: 'draft-6'",
};
const BY_KEY_REFUSED = {
  ...REFUSED,
  keyGenerator: "absent: rateLimitByKey's key function is its second argument",
  ipv6Subnet: "absent: rateLimitByKey keys by its key function; there, return ipKey(req.ip, subnet) to key by a subnet",
};

// The names of express-rate-limit's validations, which its validate option turns on or off.
// Two have a counterpart here, the warnings clientKey emits (ip: req.ip is no IP address;
// xForwardedForHeader: X-Forwarded-For without 'trust proxy'). The misconfigurations the
// others look for are refused when the middleware is made, or cannot happen here.
const VALIDATIONS = [
  'default', 'ip', 'trustProxy', 'xForwardedForHeader', 'forwardedHeader', 'positiveHits', 'unsharedStore',
  'singleCount', 'limit', 'draftPolliHeaders', 'onLimitReached', 'headersDraftVersion', 'headersResetTime',
  'knownOptions', 'validationsConfig', 'creationStack', 'ipv6Subnet', 'ipv6SubnetOrKeyGenerator',
  'keyGeneratorIpFallback', 'windowMs',
];

/** Throws unless `value` is undefined or `expected` (compared with ===); `wording` says what to do. */
function checkAgrees(name, value, expected, wording, where) {
  if (value !== undefined) checkOneOf(`option ${name}`, value, [expected], wording, where);
}

/**
 * The two header families from the options: express-rate-limit's standardHeaders and
 * legacyHeaders (each defaulting as there once either is given: false and true), or
 * hirecache's headers, which names a pair of them: 'both' (the default) is 'draft-8' with the
 * legacy fields, 'draft' is 'draft-8' alone, 'legacy' and true (express-rate-limit's older
 * name for legacyHeaders) are the legacy fields alone, false is none. Giving headers with
 * either of the others would say one thing twice, perhaps differently: refused.
 */
function headerFamilies(options, where) {
  const { headers, standardHeaders, legacyHeaders } = options;
  if (standardHeaders === undefined && legacyHeaders === undefined) {
    const mode = checkOneOf('option headers', headers === undefined ? 'both' : headers, HEADER_MODES, "'draft', 'legacy', 'both', true or false", where);
    return {
      standard: mode === 'draft' || mode === 'both' ? 'draft-8' : false,
      legacy: mode === 'legacy' || mode === 'both' || mode === true,
    };
  }
  if (headers !== undefined) {
    throw invalidParameterError(
      'option headers',
      "absent when standardHeaders or legacyHeaders is given; say it with those two ('both' is standardHeaders: 'draft-8' " +
        "with legacyHeaders: true, 'draft' is standardHeaders: 'draft-8' with legacyHeaders: false, 'legacy' and true are " +
        'standardHeaders: false with legacyHeaders: true, false is both false)',
      headers,
      { ...where, kind: 'value' },
    );
  }
  const standard = checkOneOf(
    'option standardHeaders',
    standardHeaders === undefined ? false : standardHeaders,
    STANDARD_HEADERS,
    "'draft-6', 'draft-7', 'draft-8', true ('draft-6') or false",
    where,
  );
  return {
    standard: standard === true ? 'draft-6' : standard,
    legacy: checkType('option legacyHeaders', legacyHeaders === undefined ? true : legacyHeaders, 'boolean', where),
  };
}

/**
 * Which of clientKey's warnings the validate option leaves on: true or absent (all), false
 * (none), or an object of express-rate-limit's validation names, each true or false, with
 * `default` for those not named. An unknown name is refused, as there.
 */
function warningsFrom(validate, where) {
  if (validate === undefined || validate === true) return { notAnIp: true, xForwardedFor: true };
  if (validate === false) return { notAnIp: false, xForwardedFor: false };
  if (typeof validate !== 'object' || validate === null) {
    throw invalidParameterError('option validate', "a boolean or an object of express-rate-limit's validation names", validate, where);
  }
  checkKnownOptions(validate, VALIDATIONS, { ...where, path: 'validate.' });
  for (const [name, on] of Object.entries(validate)) checkType(`option validate.${name}`, on, 'boolean', where);
  const fallback = validate.default === undefined ? true : validate.default;
  return {
    notAnIp: validate.ip === undefined ? fallback : validate.ip,
    xForwardedFor: validate.xForwardedForHeader === undefined ? fallback : validate.xForwardedForHeader,
  };
}

/** A prefix length from ipv6Subnet: false (express-rate-limit's "the whole address") is 128. */
function subnetBits(value, name, where) {
  if (value === false) return 128;
  return checkInteger(name, value, { ...where, min: 1, max: 128, expected: 'an integer from 1 to 128 or false' });
}

/**
 * A policy name as a structured-field string holds it: printable ASCII except '"' and '\',
 * each other character replaced by '_'.
 */
function fieldString(name) {
  return String(name).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '_');
}

/**
 * The key function of rateLimitByIp: options.keyGenerator when given (express-rate-limit's
 * name for rateLimitByKey's key function), else the client's address keyed by ipKey with
 * options.ipv6Subnet (a prefix length, false, or a function of the request answering one).
 */
function ipKeyFunction(options, warn, where) {
  const { keyGenerator, ipv6Subnet } = options;
  if (keyGenerator !== undefined) {
    checkType('option keyGenerator', keyGenerator, 'function', where);
    if (ipv6Subnet !== undefined) {
      throw invalidParameterError(
        'option ipv6Subnet',
        'absent when keyGenerator is given (it shapes the address key that keyGenerator replaces); in keyGenerator, return ipKey(req.ip, subnet)',
        ipv6Subnet,
        { ...where, kind: 'value' },
      );
    }
    return keyGenerator;
  }
  if (typeof ipv6Subnet === 'function') {
    return (req, res) => afterSettled(ipv6Subnet(req, res), (bits) => clientKey(req, subnetBits(bits, 'the result of option ipv6Subnet', where), warn));
  }
  const bits = subnetBits(ipv6Subnet === undefined ? 56 : ipv6Subnet, 'option ipv6Subnet', where);
  return (req) => clientKey(req, bits, warn);
}

/**
 * Checks a middleware's options and resolves them into what each request needs.
 *   name     'rateLimitByIp' or 'rateLimitByKey', put first in every refusal
 *   keyFn    rateLimitByKey's key function, or null for rateLimitByIp
 * Throws a TypeError / RangeError naming the option for anything it cannot honour.
 */
function middlewareOptions(name, limiter, keyFn, options) {
  const where = { where: name };
  // A limiter, not a union or a store: the middleware needs its numbers for the headers.
  if (!limiter || typeof limiter.consume !== 'function' || typeof limiter.points !== 'number' || typeof limiter.reward !== 'function') {
    throw invalidParameterError('the first argument', 'a limiter from createLimiter()', limiter, where);
  }
  checkType('options', options, 'object', where);
  const refused = keyFn === null ? REFUSED : BY_KEY_REFUSED;
  for (const option of Object.keys(refused)) {
    if (options[option] !== undefined) throw invalidParameterError(`option ${option}`, refused[option], options[option], { ...where, kind: 'value' });
  }
  // A refused option left undefined is absent, as express-rate-limit reads it; nor is it listed
  // among the known ones.
  const rest = Object.fromEntries(Object.entries(options).filter(([option]) => !Object.hasOwn(refused, option)));
  checkKnownOptions(rest, keyFn === null ? [...MIDDLEWARE_OPTIONS, ...BY_IP_OPTIONS] : MIDDLEWARE_OPTIONS, where);

  // The limiter decides the numbers; express-rate-limit's options for them may only agree.
  const { points, duration } = limiter;
  const windowMs = Math.round(duration * 1e6) / 1e3; // whole microseconds, as createLimiter keeps them
  checkAgrees('windowMs', options.windowMs, windowMs, `${windowMs} (the limiter's duration, in ms) or absent: the limiter sets the window (createLimiter's duration)`, where);
  for (const option of ['limit', 'max']) {
    const wording = `${points} (the limiter's points) or absent: the limiter sets the limit (createLimiter's points); for a limit that depends on the request, give a cost or one limiter per limit`;
    checkAgrees(option, options[option], points, wording, where);
  }

  const { standard, legacy } = headerFamilies(options, where);
  const { skip, handler, onMissingKey = 'reject', message, retryAfter, requestWasSuccessful, logger } = options;
  const cost = options.cost === undefined ? 1 : options.cost;
  if (skip !== undefined) checkType('option skip', skip, 'function', where);
  if (handler !== undefined) checkType('option handler', handler, 'function', where);
  if (typeof cost !== 'function') {
    checkInteger('option cost', cost, { ...where, min: 0, max: MAX_POINTS, expected: `an integer from 0 to ${MAX_POINTS} or a function` });
  }
  if (typeof onMissingKey !== 'function') checkOneOf('option onMissingKey', onMissingKey, ['reject', 'skip'], "'reject', 'skip' or a function", where);
  const statusCode = checkInteger('option statusCode', options.statusCode === undefined ? 429 : options.statusCode, { ...where, min: 100, max: 599 });
  if (retryAfter !== undefined && typeof retryAfter !== 'function') {
    checkInteger('option retryAfter', retryAfter, { ...where, min: 0, max: 2 ** 31 - 1, expected: 'an integer number of seconds >= 0 or a function' });
  }
  const requestPropertyName = options.requestPropertyName === undefined ? 'rateLimit' : options.requestPropertyName;
  if (typeof requestPropertyName !== 'string' || requestPropertyName === '') {
    throw invalidParameterError('option requestPropertyName', 'a non-empty string', requestPropertyName, where);
  }
  const skipFailedRequests = checkType('option skipFailedRequests', options.skipFailedRequests === undefined ? false : options.skipFailedRequests, 'boolean', where);
  const skipSuccessfulRequests = checkType('option skipSuccessfulRequests', options.skipSuccessfulRequests === undefined ? false : options.skipSuccessfulRequests, 'boolean', where);
  if (requestWasSuccessful !== undefined) {
    checkType('option requestWasSuccessful', requestWasSuccessful, 'function', where);
    if (!skipFailedRequests && !skipSuccessfulRequests) {
      throw invalidParameterError('option requestWasSuccessful', 'absent unless skipFailedRequests or skipSuccessfulRequests is true (nothing else asks it)', requestWasSuccessful, { ...where, kind: 'value' });
    }
  }
  const passOnStoreError = checkType('option passOnStoreError', options.passOnStoreError === undefined ? false : options.passOnStoreError, 'boolean', where);
  if (logger !== undefined && logger !== false && (typeof logger !== 'object' || logger === null || typeof logger.error !== 'function' || typeof logger.warn !== 'function')) {
    throw invalidParameterError('option logger', 'an object with error and warn methods (such as a pino logger), or false', logger, where);
  }
  const warn = warningsFrom(options.validate, where);

  // The policy name of the draft-8 fields: identifier (express-rate-limit's name) or
  // policyName, a string or a function of the request; by default the limiter's keyPrefix.
  if (options.identifier !== undefined && options.policyName !== undefined) {
    throw invalidParameterError('option policyName', "absent when identifier is given (identifier is express-rate-limit's name for it)", options.policyName, { ...where, kind: 'value' });
  }
  const nameOption = options.identifier !== undefined ? 'identifier' : 'policyName';
  let policyName = options[nameOption] === undefined ? limiter.keyPrefix || 'default' : options[nameOption];
  if (typeof policyName !== 'function') {
    if (typeof policyName !== 'string') throw invalidParameterError(`option ${nameOption}`, 'a string or a function', policyName, where);
    policyName = fieldString(policyName);
  }

  // The bucket's capacity: what remaining can reach, so the limit the fields show.
  const capacity = limiter.burst === undefined ? points : limiter.burst;
  // A bucket holding more or less than its quota adds its capacity to RateLimit-Policy as a
  // parameter of its own, named with the vendor's prefix as the drafts ask; a client that does
  // not know a parameter ignores it. Each draft's spacing, as express-rate-limit writes it.
  const burst = capacity === points ? null : `hirecache-burst=${capacity}`;
  return {
    keyFn: keyFn === null ? ipKeyFunction(options, warn, where) : keyFn,
    skip,
    handler,
    cost,
    onMissingKey,
    statusCode,
    message,
    retryAfter,
    requestPropertyName,
    standard,
    legacy,
    policyName,
    points,
    capacity,
    windowSec: Math.ceil(windowMs / 1000),
    burstParam: burst === null ? '' : `;${burst}`,
    burstParam8: burst === null ? '' : `; ${burst}`,
    skipFailedRequests,
    skipSuccessfulRequests,
    requestWasSuccessful: requestWasSuccessful || ((req, res) => res.statusCode < 400),
    passOnStoreError,
    logger,
    // What a handler written for express-rate-limit reads from its fourth argument (its
    // options), given beside the refusal's numbers.
    optionsUsed: {
      windowMs,
      limit: points,
      statusCode,
      message: message === undefined ? DEFAULT_MESSAGE : message,
      standardHeaders: standard,
      legacyHeaders: legacy,
      requestPropertyName,
      identifier: policyName,
    },
  };
}

// ---- The fields of one decision -----------------------------------------------------------

/**
 * req.rateLimit (options.requestPropertyName), shaped as express-rate-limit's: limit (the
 * bucket's capacity), used (points in use; when refused, plus the refused request's, so
 * limit + 1 at the first refusal, as there), remaining, resetTime (a Date; undefined for a
 * block without end) and key. `current`, its older name for used, is not enumerable there
 * either.
 */
class RateLimitInfo {
  constructor(limit, used, remaining, resetTime, key) {
    this.limit = limit;
    this.used = used;
    this.remaining = remaining;
    this.resetTime = resetTime;
    this.key = key;
  }

  get current() {
    return this.used;
  }
}

/**
 * express-rate-limit's partition key of the draft-8 policy: the first 12 hex digits of the
 * key's SHA-256, those 12 characters written in base64.
 */
function partitionKey(key) {
  const hex = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return Buffer.from(hex).toString('base64');
}

/** Whether a limiter with `remaining` left speaks over the one that set `previous`, if any: the most restrictive one does. */
function restricts(previous, remaining) {
  return previous === undefined || !(Number(previous) < remaining);
}

/** Adds a member to a list field (Express's res.append, on a bare Node response too). */
function appendHeader(res, name, value) {
  if (typeof res.append === 'function') {
    res.append(name, value);
    return;
  }
  const previous = res.getHeader(name);
  res.setHeader(name, previous === undefined ? value : [].concat(previous, value));
}

/**
 * Writes the fields of `info` in the chosen families, with express-rate-limit's names, order
 * and formats. `resetSec` is the reset the standard fields state (seconds); `name` the draft-8
 * policy's. The draft-8 fields are lists: a second limiter on the route adds its own member.
 * The others hold one limiter's numbers: the most restrictive one (least remaining) speaks.
 */
function setHeaders(res, info, resetSec, name, o) {
  if (res.headersSent) return;
  if (o.legacy && restricts(res.getHeader('X-RateLimit-Remaining'), info.remaining)) {
    res.setHeader('X-RateLimit-Limit', String(info.limit));
    res.setHeader('X-RateLimit-Remaining', String(info.remaining));
    if (info.resetTime !== undefined) {
      // X-RateLimit-Reset is read against the response's Date, so both are of one instant.
      res.setHeader('Date', new Date().toUTCString());
      res.setHeader('X-RateLimit-Reset', String(Math.ceil(info.resetTime.getTime() / 1000)));
    }
  }
  switch (o.standard) {
    case 'draft-6':
      if (restricts(res.getHeader('RateLimit-Remaining'), info.remaining)) {
        res.setHeader('RateLimit-Policy', `${o.points};w=${o.windowSec}${o.burstParam}`);
        res.setHeader('RateLimit-Limit', String(info.limit));
        res.setHeader('RateLimit-Remaining', String(info.remaining));
        res.setHeader('RateLimit-Reset', String(resetSec));
      }
      break;
    case 'draft-7': {
      const previous = /\bremaining=(\d+)/.exec(String(res.getHeader('RateLimit')));
      if (restricts(previous === null ? undefined : previous[1], info.remaining)) {
        res.setHeader('RateLimit-Policy', `${o.points};w=${o.windowSec}${o.burstParam}`);
        res.setHeader('RateLimit', `limit=${info.limit}, remaining=${info.remaining}, reset=${resetSec}`);
      }
      break;
    }
    case 'draft-8':
      appendHeader(res, 'RateLimit', `"${name}"; r=${info.remaining}; t=${resetSec}`);
      appendHeader(res, 'RateLimit-Policy', `"${name}"; q=${o.points}; w=${o.windowSec}; pk=:${partitionKey(info.key)}:${o.burstParam8}`);
      break;
  }
}

/**
 * Reports a failure nobody awaits (a reward after the response, a store failure let through):
 * to options.logger as express-rate-limit does, logger.error(err, message); without one, as a
 * process warning, once per process for each `code`; with logger: false, nowhere.
 */
function logFailure(logger, code, err, message) {
  if (logger === false) return;
  if (logger === undefined) {
    warnOnce(code, `${message}: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  try {
    logger.error(err, message);
  } catch {
    // A logger that throws must not take the request down with it.
  }
}

/** The 400 of a request without a key, unless options.onMissingKey says otherwise. */
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

/** Runs `step` (which may throw or return a promise); a failure goes to `onError`, never further. */
function detached(step, onError) {
  try {
    const outcome = step();
    if (typeof outcome?.then === 'function') Promise.resolve(outcome).catch(onError);
  } catch (err) {
    onError(err);
  }
}

function makeMiddleware(name, limiter, keyFn, options) {
  const o = middlewareOptions(name, limiter, keyFn, options);
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
    return afterSettled(o.keyFn(req, res), (key) => {
      if (typeof key === 'number' && Number.isFinite(key)) key = String(key);
      // Never a shared bucket named "undefined": no key is the caller's 400-or-skip choice.
      if (typeof key !== 'string' || key === '' || key.length > maxKeyLength) return missingKey(req, res, next, o);
      if (typeof o.cost !== 'function') return consume(req, res, next, key, o.cost);
      return afterSettled(o.cost(req, res), (cost) => consume(req, res, next, key, cost));
    });
  }

  function consume(req, res, next, key, cost) {
    return Promise.resolve(limiter.consume(key, cost)).then(
      (result) =>
        afterSettled(reportDecision(req, res, key, result), () => {
          if ((o.skipFailedRequests || o.skipSuccessfulRequests) && cost !== 0) giveBackUncounted(req, res, key, cost, result.msBeforeNext);
          return next();
        }),
      (refusal) => {
        if (!(refusal instanceof RateLimitResult)) return storeFailed(refusal, next);
        return afterSettled(reportDecision(req, res, key, refusal), () => refuse(req, res, next, refusal));
      },
    );
  }

  /** Sets req[requestPropertyName] and the header fields for one decision. */
  function reportDecision(req, res, key, result) {
    const ms = result.msBeforeNext;
    const info = new RateLimitInfo(o.capacity, result.consumedPoints, Math.max(0, result.remainingPoints), ms < 0 ? undefined : new Date(Date.now() + ms), key);
    req[o.requestPropertyName] = info;
    if (!o.legacy && o.standard === false) return undefined;
    // A block without end has no reset: the window's length stands in, as express-rate-limit's
    // does for a store that gives no reset time.
    const resetSec = ms < 0 ? o.windowSec : Math.ceil(ms / 1000);
    if (typeof o.policyName !== 'function' || o.standard !== 'draft-8') return setHeaders(res, info, resetSec, o.policyName, o);
    return afterSettled(o.policyName(req, res), (policyName) => setHeaders(res, info, resetSec, fieldString(policyName), o));
  }

  /**
   * A limiter that failed (an Error, not a refusal): next(err), or with passOnStoreError the
   * request goes on uncounted. A TypeError or RangeError is a mistake of the app's (a cost
   * above the burst, a bad cost), not a store failure: it always goes to next(err).
   */
  function storeFailed(err, next) {
    if (!o.passOnStoreError || err instanceof TypeError || err instanceof RangeError) throw err;
    logFailure(o.logger, 'HIRECACHE_RATELIMIT_PASSED_ON_STORE_ERROR', err, `${name}: the limiter failed, so the request was let through uncounted (passOnStoreError)`);
    return next();
  }

  function refuse(req, res, next, refusal) {
    const ms = refusal.msBeforeNext;
    const waited = ms < 0 ? undefined : Math.max(1, Math.ceil(ms / 1000)); // never for a block without end
    const asked = typeof o.retryAfter === 'function' ? o.retryAfter(req, res) : o.retryAfter;
    return afterSettled(asked, (given) => {
      if (given !== undefined && typeof o.retryAfter === 'function') {
        checkInteger('the result of option retryAfter', given, { where: name, min: 0, max: 2 ** 31 - 1 });
      }
      const retryAfter = given === undefined ? waited : given;
      if ((o.legacy || o.standard !== false) && retryAfter !== undefined && !res.headersSent) res.setHeader('Retry-After', String(retryAfter));
      if (o.handler !== undefined) return o.handler(req, res, next, { ...o.optionsUsed, ...refusal });
      return tooMany(req, res, retryAfter);
    });
  }

  /** The default answer to a refusal: statusCode with a JSON body. */
  function tooMany(req, res, retryAfter) {
    res.status(o.statusCode);
    const message = typeof o.message === 'function' ? o.message(req, res) : o.message;
    return afterSettled(message, (body) => {
      if (res.writableEnded) return;
      if (body === undefined || typeof body === 'string') {
        const error = STATUS_CODES[o.statusCode] || 'Too Many Requests';
        res.json({ error, message: body === undefined ? DEFAULT_MESSAGE : body, retryAfter });
      } else {
        res.json(body);
      }
    });
  }

  /**
   * skipFailedRequests / skipSuccessfulRequests: once the response is done, gives the
   * request's points back (limiter.reward) when it is not to count: by requestWasSuccessful
   * (default: status < 400) once it has finished, and, for skipFailedRequests, when the
   * connection closed before it finished or it failed, as express-rate-limit decides. At most
   * once per request. Only admitted requests get here: a refusal took nothing. Not once the
   * bucket has had time to fill again since (`fullInMs`, the admission's msBeforeNext): the
   * points have come back by themselves, and a reward then would give back another request's
   * (express-rate-limit skips a window that has reset, for the same reason).
   */
  function giveBackUncounted(req, res, key, cost, fullInMs) {
    let done = false;
    const fullAt = Date.now() + fullInMs;
    const giveBack = () => {
      if (done) return;
      done = true;
      if (Date.now() >= fullAt) return;
      detached(
        () => limiter.reward(key, cost),
        (err) => logFailure(o.logger, 'HIRECACHE_RATELIMIT_REWARD_FAILED', err, `${name}: giving back the points of a request that does not count failed`),
      );
    };
    res.once('finish', () => {
      detached(
        () =>
          afterSettled(o.requestWasSuccessful(req, res), (ok) => {
            if (ok ? o.skipSuccessfulRequests : o.skipFailedRequests) giveBack();
          }),
        (err) => logFailure(o.logger, 'HIRECACHE_RATELIMIT_REQUEST_WAS_SUCCESSFUL_FAILED', err, `${name}: option requestWasSuccessful failed`),
      );
    });
    if (o.skipFailedRequests) {
      res.once('close', () => {
        if (!res.writableEnded) giveBack();
      });
      res.once('error', giveBack);
    }
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
 * IPv6 (mapped, translated, NAT64) as IPv4; or by options.keyGenerator when given. Answers
 * 429 with a JSON body and Retry-After.
 * options: hirecache's skip(req, res), handler(req, res, next, result), cost (number or
 * (req, res) => number), headers ('draft' | 'legacy' | 'both' (default) | false), policyName,
 * message, onMissingKey, ipv6Subnet; and express-rate-limit's standardHeaders, legacyHeaders,
 * identifier, statusCode, retryAfter, requestPropertyName, skipFailedRequests,
 * skipSuccessfulRequests, requestWasSuccessful, passOnStoreError, validate, logger,
 * keyGenerator, and windowMs / limit / max when they agree with the limiter (see
 * docs/ratelimit.md). skip, cost, keyFn and the other callbacks may answer with a value or a
 * promise; only a promise is awaited.
 */
function rateLimitByIp(limiter, options = {}) {
  return makeMiddleware('rateLimitByIp', limiter, null, options);
}

/**
 * Express middleware limiting by keyFn(req, res) (a string, number or a promise of one),
 * e.g. the e-mail of a login. A missing key (undefined, null, '') or one longer than the
 * limiter's maxKeyLength is answered 400 (options.onMissingKey 'reject', the default), or
 * passed through ('skip'), or handed to onMissingKey(req, res, next). Other options as
 * rateLimitByIp's, except ipv6Subnet and keyGenerator.
 */
function rateLimitByKey(limiter, keyFn, options = {}) {
  checkType('keyFn', keyFn, 'function', { where: 'rateLimitByKey' });
  return makeMiddleware('rateLimitByKey', limiter, keyFn, options);
}

module.exports = { rateLimitByIp, rateLimitByKey, ipKey };
