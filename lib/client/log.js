'use strict';
// What a client tells its logger: one line when Redis becomes unusable (unreachable, stalled,
// or refusing the password), one when it is back, and nothing in between, however many
// reconnect attempts fail. A stall shorter than a second (a busy host) is only counted; past
// a few outage lines a minute, outages are summed up rather than listed, and one still going
// on when the budget allows is reported then.
const { invalidParameterError } = require('../util/validate');

// At most this many outage lines per window; outages past it wait for room.
const OUTAGE_LINES_PER_WINDOW = 2;
const OUTAGE_WINDOW_MS = 60000;
// A stall is reported once it has lasted this long: a shorter one is a blip, only counted.
const STALL_LINE_AFTER_MS = 1000;
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
  const lineTimes = []; // when the last outage lines were written (at most OUTAGE_LINES_PER_WINDOW)
  let unreported = 0; // outages that ended before they were reported
  let timer = null; // reports the current outage when its grace or the line budget allows

  const write = (level, message) => {
    try {
      logger[level](`hirecache: ${message}`);
    } catch {
      // A logger that throws must not take the client down with it.
    }
  };

  // When the next outage line may be written: the budget allows a few per window.
  const budgetAt = (now) => {
    while (lineTimes.length > 0 && lineTimes[0] + OUTAGE_WINDOW_MS <= now) lineTimes.shift();
    return lineTimes.length < OUTAGE_LINES_PER_WINDOW ? now : lineTimes[0] + OUTAGE_WINDOW_MS;
  };

  const report = (current) => {
    const now = Date.now();
    const lasting = now - current.since >= 1000 ? ` (unusable for ${now - current.since} ms so far)` : '';
    const more = unreported > 0 ? ` (${unreported} brief outage${unreported === 1 ? '' : 's'} since the last report)` : '';
    unreported = 0;
    lineTimes.push(now);
    current.logged = true;
    write(current.level, current.message + lasting + more);
  };

  // Reports the current outage now, or arms the timer for when it may be: after `graceMs`
  // from its start (a stall that ends within it is a blip, only counted), and within the
  // line budget (a flapping server must not flood the log). An outage still going on then is
  // reported, never left silent.
  const schedule = (graceMs) => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    const current = outage;
    const now = Date.now();
    const at = Math.max(current.since + graceMs, budgetAt(now));
    if (at <= now) {
      report(current);
      return;
    }
    timer = setTimeout(() => {
      timer = null;
      if (outage === current && !current.logged) schedule(graceMs);
    }, at - now);
    timer.unref();
  };

  const begin = (level, message, graceMs) => {
    outage = { since: Date.now(), logged: false, attempts: 0, level, message };
    schedule(graceMs);
  };

  const end = () => {
    if (outage === null) return;
    const { since, logged, attempts } = outage;
    outage = null;
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (!logged) {
      unreported += 1;
      return;
    }
    const tries = attempts > 0 ? ` after ${attempts} failed connection attempt${attempts === 1 ? '' : 's'}` : '';
    write('info', `Redis at ${endpoint} is usable again (unusable for ${Date.now() - since} ms${tries})`);
  };

  const event = (type, detail) => {
    switch (type) {
      case 'error': {
        const err = detail.error;
        const refused = AUTH_CODES.has(err.code);
        const level = refused ? 'error' : 'warn';
        const message = refused
          ? `Redis at ${endpoint} refused the credentials (${err.code}); check REDIS_URL / REDIS_PASSWORD. Calls fail fast or use fallbacks; retrying in the background`
          : `Redis at ${endpoint} is unreachable (${err.code}: ${err.message}). Calls fail fast or use fallbacks; retrying in the background`;
        if (outage === null) {
          begin(level, message, 0);
        } else if (!outage.logged) {
          // A stall waiting for its grace turned into an error: this is the outage's news.
          outage.level = level;
          outage.message = message;
          schedule(0);
        }
        outage.attempts += 1;
        return;
      }
      case 'breaker':
        if (detail.state === 'closed') end();
        else if (outage === null && detail.state === 'open') {
          const why = detail.reason === 'stalled' ? 'stopped answering' : 'is failing commands';
          const grace = detail.reason === 'stalled' ? STALL_LINE_AFTER_MS : 0;
          begin('warn', `Redis at ${endpoint} ${why}: circuit breaker open (${detail.reason}). Calls fail fast or use fallbacks until it answers again`, grace);
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

module.exports = { createLogSink, AUTH_CODES };
