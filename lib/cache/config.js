'use strict';
// The cache's settings: the options of createCache() and, for the process-wide cache, the
// environment variables
//
//   HIRECACHE_MEMORY_MAX_ENTRIES, HIRECACHE_MEMORY_MAX_BYTES   the embedded store (REDIS_URL=disabled)
//   HIRECACHE_FALLBACK                                         on (default) | off
//   HIRECACHE_FALLBACK_MAX_ENTRIES, HIRECACHE_FALLBACK_MAX_BYTES  the fallback store
//
// A bad option is a TypeError / RangeError naming it; a bad variable is a ConfigError
// (ERR_INVALID_CONFIG) naming the variable, raised at the cache's first use.
const { ConfigError } = require('../errors');
const { MAX_ENTRIES, MIN_BYTES } = require('../store/memory-store');
const { invalidParameterError, checkInteger, checkKnownOptions } = require('../util/validate');

/**
 * The fallback store's defaults: it holds only what was written during an outage, so it is
 * smaller than the embedded store's 100 000 entries / 64 MiB.
 */
const FALLBACK_DEFAULTS = Object.freeze({ maxEntries: 10000, maxBytes: 16 * 1024 * 1024 });

const FALLBACK_OPTIONS = ['maxEntries', 'maxBytes'];

// What a variable read from the environment is refused with.
const ENV = { code: 'ERR_INVALID_CONFIG', ErrorClass: ConfigError };

const SWITCH = new Map([
  ['on', true], ['true', true], ['1', true], ['yes', true],
  ['off', false], ['false', false], ['0', false], ['no', false],
]);

/**
 * The checked fallback settings of createCache({ fallback }): null when `fallback` is false
 * (no fallback), else { maxEntries, maxBytes } with the defaults filled in. Throws a
 * TypeError / RangeError naming the option; the store itself is created only when an outage
 * needs it, so every check happens here, at the call.
 */
function fallbackOptions(fallback) {
  if (fallback === false) return null;
  if (fallback === undefined || fallback === true) return { ...FALLBACK_DEFAULTS };
  if (fallback === null || typeof fallback !== 'object') {
    throw invalidParameterError('option fallback', 'false or an object { maxEntries, maxBytes }', fallback, { where: 'createCache' });
  }
  checkKnownOptions(fallback, FALLBACK_OPTIONS, { where: 'createCache', path: 'fallback.' });
  const read = (name, min, max) => {
    const value = fallback[name] === undefined ? FALLBACK_DEFAULTS[name] : fallback[name];
    return checkInteger(`option fallback.${name}`, value, { where: 'createCache', min, max });
  };
  return { maxEntries: read('maxEntries', 1, MAX_ENTRIES), maxBytes: read('maxBytes', MIN_BYTES, Number.MAX_SAFE_INTEGER) };
}

/** The integer in variable `name`, undefined when it is unset or empty. */
function envInteger(env, name, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const text = raw.trim();
  const expected = max >= Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  if (!/^\d+$/.test(text)) throw invalidParameterError(name, expected, raw, ENV);
  const value = Number(text);
  if (value < min || value > max) throw invalidParameterError(name, expected, raw, ENV);
  return value;
}

/** { maxEntries?, maxBytes? } of the embedded store, from HIRECACHE_MEMORY_*. */
function memoryOptionsFromEnv(env = process.env) {
  const options = {};
  const maxEntries = envInteger(env, 'HIRECACHE_MEMORY_MAX_ENTRIES', 1, MAX_ENTRIES);
  const maxBytes = envInteger(env, 'HIRECACHE_MEMORY_MAX_BYTES', MIN_BYTES, Number.MAX_SAFE_INTEGER);
  if (maxEntries !== undefined) options.maxEntries = maxEntries;
  if (maxBytes !== undefined) options.maxBytes = maxBytes;
  return options;
}

/**
 * The `fallback` option of the process-wide cache, from HIRECACHE_FALLBACK (on | off, also
 * true/false, 1/0, yes/no; default on) and HIRECACHE_FALLBACK_MAX_ENTRIES / _MAX_BYTES.
 * The sizes are checked even when the fallback is off, so a typo never waits for the day it
 * is turned on.
 */
function fallbackOptionsFromEnv(env = process.env) {
  const raw = env.HIRECACHE_FALLBACK;
  let enabled = true;
  if (raw !== undefined && raw !== '') {
    enabled = SWITCH.get(raw.trim().toLowerCase());
    if (enabled === undefined) throw invalidParameterError('HIRECACHE_FALLBACK', 'on or off', raw, ENV);
  }
  const maxEntries = envInteger(env, 'HIRECACHE_FALLBACK_MAX_ENTRIES', 1, MAX_ENTRIES);
  const maxBytes = envInteger(env, 'HIRECACHE_FALLBACK_MAX_BYTES', MIN_BYTES, Number.MAX_SAFE_INTEGER);
  if (!enabled) return false;
  return {
    maxEntries: maxEntries === undefined ? FALLBACK_DEFAULTS.maxEntries : maxEntries,
    maxBytes: maxBytes === undefined ? FALLBACK_DEFAULTS.maxBytes : maxBytes,
  };
}

module.exports = { FALLBACK_DEFAULTS, fallbackOptions, memoryOptionsFromEnv, fallbackOptionsFromEnv };
