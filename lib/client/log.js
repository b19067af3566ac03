'use strict';
// What a client tells its logger: one line when Redis becomes unusable (unreachable, stalled,
// or refusing the password), one when it is back, and nothing in between, however many
// reconnect attempts fail. Outages that follow each other quickly are summed up, not listed.
const { invalidParameterError } = require('../util/validate');

// Two outage lines at least this far apart; the ones in between are counted.
const OUTAGE_LINE_INTERVAL_MS = 30000;
// A line written through _log(level, message, key) with a key: at most once per interval.
const KEYED_LINE_INTERVAL_MS = 60000;
// Handshake refusals that mean the credentials are wrong, not that Redis is away.
const AUTH_CODES = new Set(['WRONGPASS', 'NOAUTH', 'NOPERM']);
const LEVELS = ['error', 'warn', 'info'];

const SILENT = { error() {}, warn() {}, info() {} };

/**
 * The logger to use: `logger` when given (an object with error/warn/info methods; false or
 * null for none), otherwise the console, except under a test runner (NODE_ENV=test).
 */
function chooseLogger(logger, env) {
  if (logger === false || logger === null) return SILENT;
  if (logger === undefined) return env.NODE_ENV === 'test' ? SILENT : console;
  if (typeof logger !== 'object' || LEVELS.some((l) => typeof logger[l] !== 'function')) {
    throw invalidParameterError('option logger', 'an object with error, warn and info methods (such as console, or a pino/winston logger), or false', logger, { code: 'ERR_INVALID_CONFIG' });
  }
  return logger;
}

function createLogSink(loggerOption, env, endpoint, breakerClosed) {
  const logger = chooseLogger(loggerOption, env);
  let outage = null; // { since, logged, attempts, level, message }
  let lastOutageLine = -Infinity;
  let suppressed = 0;
  const keyed = new Map();

  const write = (level, message, key) => {
    if (key !== undefined) {
      const now = Date.now();
      if (now - (keyed.get(key) ?? -Infinity) < KEYED_LINE_INTERVAL_MS) return;
      keyed.set(key, now);
    }
    try {
      logger[level](`hirecache: ${message}`);
    } catch {
      // A logger that throws must not take the client down with it.
    }
  };

  let deferred = null; // the timer that reports a held-back outage still going on

  const report = (current) => {
    const now = Date.now();
    const more = suppressed > 0 ? ` (${suppressed} shorter outage${suppressed === 1 ? '' : 's'} since the last report)` : '';
    const lasting = current.since < now ? ` (unusable since ${now - current.since} ms ago)` : '';
    suppressed = 0;
    lastOutageLine = now;
    current.logged = true;
    write(current.level, current.message + lasting + more);
  };

  // An outage that starts soon after the last one reported is held back (a flapping server
  // must not flood the log); if it is still going on when the interval has passed, it is
  // reported then, so a real outage after a blip is never silent.
  const begin = (level, message) => {
    const now = Date.now();
    const current = { since: now, logged: false, attempts: 0, level, message };
    outage = current;
    const wait = lastOutageLine + OUTAGE_LINE_INTERVAL_MS - now;
    if (wait <= 0) {
      report(current);
      return;
    }
    suppressed += 1;
    if (deferred === null) {
      deferred = setTimeout(() => {
        deferred = null;
        if (outage !== null && !outage.logged) {
          suppressed -= 1; // this one is reported itself
          report(outage);
        }
      }, wait);
      deferred.unref();
    }
  };

  const end = () => {
    if (outage === null) return;
    const { since, logged, attempts } = outage;
    outage = null;
    if (!logged) return;
    const tries = attempts > 0 ? ` after ${attempts} failed connection attempt${attempts === 1 ? '' : 's'}` : '';
    write('info', `Redis at ${endpoint} is usable again (unusable for ${Date.now() - since} ms${tries})`);
  };

  const event = (type, detail) => {
    switch (type) {
      case 'error': {
        const err = detail.error;
        if (outage !== null) {
          outage.attempts += 1;
          return;
        }
        if (AUTH_CODES.has(err.code)) {
          begin('error', `Redis at ${endpoint} refused the credentials (${err.code}); check REDIS_URL / REDIS_PASSWORD. Calls fail fast or use fallbacks; retrying in the background`);
        } else {
          begin('warn', `Redis at ${endpoint} is unreachable (${err.code}: ${err.message}). Calls fail fast or use fallbacks; retrying in the background`);
        }
        outage.attempts = 1;
        return;
      }
      case 'breaker':
        if (detail.state === 'closed') end();
        else if (outage === null && detail.state === 'open') {
          const why = detail.reason === 'stalled' ? 'stopped answering' : 'is failing commands';
          begin('warn', `Redis at ${endpoint} ${why}: circuit breaker open (${detail.reason}). Calls fail fast or use fallbacks until it answers again`);
        }
        return;
      case 'ready':
        // Recovered, unless the breaker stays open (one opened by failed commands waits
        // for its probe, and its closing ends the outage).
        if (breakerClosed()) end();
        return;
      default:
    }
  };

  return { event, write };
}

module.exports = { createLogSink, chooseLogger };
