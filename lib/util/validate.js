'use strict';
// One vocabulary for refusing an argument or an option, shared by every module, so that all
// of hirecache's refusals read alike and can be told apart by code:
//
//   <where>: <name> must be <expected>, got <the value, described>
//
// The class follows one rule, Node's own: a value of the wrong type is a TypeError (code
// ERR_INVALID_ARG_TYPE), a value of the right type that is not one of the allowed choices a
// TypeError too (ERR_INVALID_ARG_VALUE), and a number outside the allowed range, NaN and
// fractions included, a RangeError (ERR_OUT_OF_RANGE). A caller with a code of its own (the
// client's configuration answers ERR_INVALID_CONFIG) passes it instead.
const { inspect } = require('util');

// A refused string is shown up to this many characters: enough to recognize it, without
// copying a whole document into a message.
const MAX_SHOWN_CHARS = 64;

const CODES = {
  type: 'ERR_INVALID_ARG_TYPE',
  value: 'ERR_INVALID_ARG_VALUE',
  range: 'ERR_OUT_OF_RANGE',
};

/**
 * How a message shows a value it refused: its type, then the value when that is a
 * primitive ("number 1.5", "string '10'", "boolean true", "object null", "undefined").
 * An object is named by its class only ("an instance of Map", "object" for a plain one),
 * never printed, since it may hold anything, credentials included. With `secret`, the type
 * alone is shown, for values such as a password that must never reach a message.
 */
function describe(value, { secret = false } = {}) {
  if (value === undefined) return 'undefined';
  if (value === null) return 'object null';
  const type = typeof value;
  if (secret) return `${type} (not shown)`;
  switch (type) {
    case 'string': {
      const shown = value.length > MAX_SHOWN_CHARS ? `${value.slice(0, MAX_SHOWN_CHARS)}…` : value;
      return `string ${inspect(shown)}`;
    }
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'symbol':
      return `${type} ${inspect(value)}`;
    case 'function':
      return value.name ? `function ${value.name}` : 'function';
    default: {
      const proto = Object.getPrototypeOf(value);
      const name = proto && proto.constructor && proto.constructor.name;
      return name && name !== 'Object' ? `an instance of ${name}` : 'object';
    }
  }
}

/**
 * The error for `name` not being what it must be: "<where>: <name> must be <expected>, got
 * <describe(actual)>".
 *   name      what was refused, as the caller knows it ('option points', 'key', 'REDIS_PORT')
 *   expected  what would have been accepted, as a noun phrase ('an integer from 1 to 10')
 *   actual    the refused value
 *   options   kind: 'type' (default), 'value' or 'range' (see the top of this file);
 *             where: the function or class that refuses, put first ('createLimiter');
 *             code: a code of the caller's instead of the kind's;
 *             secret: show the value's type only;
 *             ErrorClass: a class of the caller's instead of TypeError / RangeError.
 * Returns the error; the caller throws it (or rejects with it).
 */
function invalidParameterError(name, expected, actual, options = {}) {
  const { kind = 'type', where, code, secret = false, ErrorClass } = options;
  const Class = ErrorClass || (kind === 'range' ? RangeError : TypeError);
  const prefix = where ? `${where}: ` : '';
  const err = new Class(`${prefix}${name} must be ${expected}, got ${describe(actual, { secret })}`);
  err.code = code || CODES[kind];
  return err;
}

/** "an integer from 1 to 10", "an integer >= 0", for the bounds a validator was given. */
function integerRange(min, max) {
  if (max >= Number.MAX_SAFE_INTEGER) return `an integer >= ${min}`;
  return `an integer from ${min} to ${max}`;
}

/**
 * The error for `value` unless it is an integer from `min` to `max` (default: any safe
 * integer >= min), else null: a TypeError ("must be a number") when it is not a number at
 * all, a RangeError ("must be an integer from min to max") for NaN, a fraction or a value out
 * of range. `expected` replaces the range's wording; the other options go to
 * invalidParameterError. For an API that rejects a promise rather than throwing.
 */
function integerError(name, value, { min = 0, max = Number.MAX_SAFE_INTEGER, expected, ...errorOptions } = {}) {
  if (typeof value !== 'number') return invalidParameterError(name, 'a number', value, errorOptions);
  if (!Number.isInteger(value) || value < min || value > max) {
    return invalidParameterError(name, expected || integerRange(min, max), value, { ...errorOptions, kind: 'range' });
  }
  return null;
}

/** Returns `value` when integerError finds nothing wrong with it; throws its error otherwise. */
function checkInteger(name, value, options) {
  const err = integerError(name, value, options);
  if (err !== null) throw err;
  return value;
}

/**
 * The error for `value` unless it is a finite number from `min` to `max` (both included),
 * else null; classes and options as integerError's (NaN and Infinity are out of range).
 */
function numberError(name, value, { min = -Infinity, max = Infinity, expected, ...errorOptions } = {}) {
  if (typeof value !== 'number') return invalidParameterError(name, 'a number', value, errorOptions);
  if (!Number.isFinite(value) || value < min || value > max) {
    return invalidParameterError(name, expected || `a finite number from ${min} to ${max}`, value, { ...errorOptions, kind: 'range' });
  }
  return null;
}

/** Returns `value` when numberError finds nothing wrong with it; throws its error otherwise. */
function checkNumber(name, value, options) {
  const err = numberError(name, value, options);
  if (err !== null) throw err;
  return value;
}

const ARTICLES = { string: 'a string', boolean: 'a boolean', function: 'a function', object: 'an object' };

/**
 * Returns `value` when `typeof value` is `type` ('string', 'boolean', 'function' or
 * 'object', which excludes null); otherwise throws a TypeError.
 */
function checkType(name, value, type, errorOptions = {}) {
  if (typeof value === type && value !== null) return value;
  throw invalidParameterError(name, ARTICLES[type], value, errorOptions);
}

/**
 * Returns `value` when it is one of `choices` (compared with ===); otherwise throws a
 * TypeError: ERR_INVALID_ARG_VALUE when it has the type of a choice, ERR_INVALID_ARG_TYPE
 * when not. `expected` names the choices for the message.
 */
function checkOneOf(name, value, choices, expected, errorOptions = {}) {
  if (choices.includes(value)) return value;
  const sameType = choices.some((choice) => typeof choice === typeof value);
  throw invalidParameterError(name, expected, value, { ...errorOptions, kind: sameType ? 'value' : 'type' });
}

/**
 * Throws a TypeError (ERR_INVALID_ARG_VALUE) naming the first own property of `options` that
 * is not in `known`, so that a misspelt option is never silently ignored. `path` prefixes
 * the option's name ('fallback.').
 */
function checkKnownOptions(options, known, { where, path = '', code } = {}) {
  const allowed = known instanceof Set ? known : new Set(known);
  for (const name of Object.keys(options)) {
    if (!allowed.has(name)) {
      const prefix = where ? `${where}: ` : '';
      const err = new TypeError(`${prefix}unknown option ${path}${name} (known: ${[...allowed].join(', ')})`);
      err.code = code || CODES.value;
      throw err;
    }
  }
}

module.exports = {
  describe,
  invalidParameterError,
  integerError,
  checkInteger,
  numberError,
  checkNumber,
  checkType,
  checkOneOf,
  checkKnownOptions,
};
