'use strict';
// Every Redis command as a method of the client (`client.hset(key, field, value)`,
// `client.hgetallBuffer(key)`), made once from the command table of @ioredis/commands, with
// the argument and reply conventions ioredis users rely on: arrays flattened one level,
// objects and Maps as field/value pairs for HSET, HMSET, MSET and MSETNX, HGETALL as an
// object, an optional trailing callback. The table also says where a command's keys are, for
// the client's key prefix (prefixKeys).
const table = require('@ioredis/commands');
const { invalidParameterError, describe } = require('../util/validate');

// Names that are a JavaScript identifier as they are: the table's names are lowercase
// already, and the one with a dash (restore-asking, internal to a cluster) is left to call().
const IDENTIFIER = /^[a-z_$][a-z0-9_$]*$/;

/** The commands exposed as methods, lowercase, in the table's order. */
const COMMANDS = Object.freeze(table.list.map((name) => name.toLowerCase()).filter((name) => IDENTIFIER.test(name)));

// Where a command takes an object or a Map of field/value pairs in place of its pairs, as
// ioredis's argument transformers do: the position of that argument, which must be the last.
const PAIRS_AT = new Map([
  ['hset', 1],
  ['hmset', 1],
  ['mset', 0],
  ['msetnx', 0],
]);

const EXPECTED = 'a string, Buffer, number or bigint';

/**
 * Whether `value` goes to Redis as it is: a string, a number or bytes (the native side
 * writes a number in decimal, and takes a Buffer or any Uint8Array as bytes).
 */
function isPlainArg(value) {
  return typeof value === 'string' || typeof value === 'number' || value instanceof Uint8Array;
}

/** `value` as a command argument, or throws a TypeError naming the command and `what`. */
function toArg(name, what, value) {
  if (isPlainArg(value)) return value;
  if (typeof value === 'bigint') return String(value);
  throw invalidParameterError(what, EXPECTED, value, { where: name });
}

/** Appends the field/value pairs of `pairs` (a Map or an object's own enumerable keys). */
function appendPairs(name, position, pairs, out) {
  if (pairs instanceof Map) {
    for (const [field, value] of pairs) {
      out.push(toArg(name, `a key of the Map (argument ${position})`, field));
      out.push(toArg(name, `the value of Map key ${String(field)} (argument ${position})`, value));
    }
    return;
  }
  for (const field of Object.keys(pairs)) {
    out.push(field, toArg(name, `field ${JSON.stringify(field)} of argument ${position}`, pairs[field]));
  }
}

/** normalizeArgs when an argument is not a string or a number: builds a new array. */
function normalizeSlow(name, args) {
  const pairsAt = PAIRS_AT.get(name);
  const out = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const position = i + 1;
    if (Array.isArray(arg)) {
      for (let j = 0; j < arg.length; j++) out.push(toArg(name, `argument ${position} (element ${j})`, arg[j]));
    } else if (
      i === pairsAt &&
      i === args.length - 1 &&
      typeof arg === 'object' &&
      arg !== null &&
      !(arg instanceof Uint8Array)
    ) {
      appendPairs(name, position, arg, out);
    } else {
      out.push(toArg(name, `argument ${position}`, arg));
    }
  }
  return out;
}

/**
 * The arguments of command `name` (lowercase) as the native client takes them: each array
 * argument's elements in its place (one level), for HSET / HMSET (second argument) and MSET /
 * MSETNX (only argument) an object or a Map as its field/value pairs, a bigint in decimal.
 * Strings, numbers and bytes (Buffer, Uint8Array) pass as they are; anything else
 * (undefined, null, a boolean, an object elsewhere) throws a TypeError
 * (ERR_INVALID_ARG_TYPE) naming the command and the argument's position, counted from 1.
 * Returns `args` itself when it needs no change, a new array otherwise; never changes `args`.
 */
function normalizeArgs(name, args) {
  for (let i = 0; i < args.length; i++) {
    const type = typeof args[i];
    if (type !== 'string' && type !== 'number') return normalizeSlow(name, args);
  }
  return args;
}

/**
 * HGETALL's flat [field, value, …] reply as an object (values stay strings, or Buffers from
 * hgetallBuffer; fields are always string keys). A field that is also a property every
 * object inherits (`__proto__`, `constructor`) becomes an own property, never a change of
 * prototype.
 */
function pairsToObject(reply) {
  if (!Array.isArray(reply)) return reply;
  const obj = {};
  for (let i = 0; i < reply.length; i += 2) {
    const field = String(reply[i]);
    const value = reply[i + 1];
    if (field in obj) {
      Object.defineProperty(obj, field, { value, writable: true, enumerable: true, configurable: true });
    } else {
      obj[field] = value;
    }
  }
  return obj;
}

/**
 * The replies a method reshapes, by command. ioredis's other reply transformers (XREAD,
 * XREADGROUP, ZRANGE … WITHSCORES, HRANDFIELD, VSIM) only turn RESP3 replies back into
 * RESP2's shape; the client speaks RESP2, so they would change nothing.
 */
const replyTransforms = Object.freeze({
  hgetall: pairsToObject,
});
const TRANSFORMS = new Map(Object.entries(replyTransforms));

/**
 * The reply transform of a command by its lower-case name (call('HGETALL') resolves an
 * object, as client.hgetall() does), or undefined.
 */
function transformOf(lower) {
  return TRANSFORMS.get(lower);
}

/**
 * `key` with `prefix` (a string or a Buffer) before it: a string when both are text (a number
 * key as its decimal), otherwise a Buffer of the prefix's bytes and the key's.
 */
function prefixKey(prefix, key) {
  const type = typeof key;
  if (type !== 'string' && type !== 'number' && type !== 'bigint' && !(key instanceof Uint8Array)) {
    // As the addon refuses it without a prefix: never a key named "app:undefined".
    throw new TypeError(`a key must be a string, a Buffer or a number, got ${describe(key)}`);
  }
  if (typeof prefix === 'string' && !(key instanceof Uint8Array)) return prefix + key;
  const head = typeof prefix === 'string' ? Buffer.from(prefix) : prefix;
  return Buffer.concat([head, key instanceof Uint8Array ? key : Buffer.from(String(key))]);
}

/**
 * A new array of command `name`'s arguments (normalized, see normalizeArgs) with `prefix` (a
 * string or a Buffer) put before every key, wherever the command table says keys are
 * (EVAL's and EVALSHA's numkeys, XREAD's STREAMS, MSET's every other argument, SORT's BY and
 * GET patterns…). A Buffer key, or any key under a Buffer prefix, becomes a Buffer; a string
 * or number key under a string prefix becomes a string. A command the table does not know
 * (a module's) is returned unprefixed, as ioredis does. Never changes `args`.
 */
function prefixKeys(name, args, prefix) {
  if (typeof prefix !== 'string' && !(prefix instanceof Uint8Array)) {
    throw invalidParameterError('prefix', 'a string or a Buffer', prefix, { where: 'prefixKeys' });
  }
  return prefixKeysOf(String(name).toLowerCase(), args, prefix);
}

/** prefixKeys for a name already in lower case and a prefix already checked (the client's). */
function prefixKeysOf(lower, args, prefix) {
  const out = args.slice();
  if (!table.exists(lower)) return out;
  for (const i of table.getKeyIndexes(lower, out)) {
    // A numkeys larger than the keys given points past the end: Redis refuses the command.
    if (i < out.length) out[i] = prefixKey(prefix, out[i]);
  }
  return out;
}

/**
 * Calls `callback(null, result)` or `callback(err)` when `promise` settles. The promise then
 * counts as handled, so a callback user sees no unhandled rejection; an exception thrown by the
 * callback is thrown again on its own turn, as an uncaught exception, not swallowed.
 */
function notify(promise, callback) {
  promise.then(
    (result) => runCallback(callback, null, result),
    (err) => runCallback(callback, err),
  );
}

function runCallback(callback, err, result) {
  try {
    if (err === null) callback(null, result);
    else callback(err);
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown;
    });
  }
}

/** `promise` with the command's reply transform applied and its callback, if any, notified. */
function settle(promise, transform, callback) {
  const settled = transform === undefined ? promise : promise.then(transform);
  if (callback !== undefined) notify(settled, callback);
  return settled;
}

/** `promise`, with an ioredis-style callback(err, result) notified when one is given. */
function withCallback(promise, callback) {
  return settle(promise, undefined, typeof callback === 'function' ? callback : undefined);
}

/**
 * The method `methodName` for command `name`: a function of its own, made once, with the
 * command's name, flags and reply transform bound, so a call looks nothing up.
 */
function commandMethod(methodName, name, flags, send, transform, chain) {
  if (chain) {
    // A builder's method (multi(), pipeline()): queues the command with its transform and
    // returns what send returns (the builder).
    return {
      [methodName](...args) {
        if (args.length > 0 && typeof args[args.length - 1] === 'function') {
          throw new TypeError(`${methodName}: a command queued on multi() or pipeline() takes no callback; pass one to exec()`);
        }
        return send.call(this, flags, name, normalizeArgs(name, args), transform);
      },
    }[methodName];
  }
  return {
    [methodName](...args) {
      let callback;
      if (args.length > 0 && typeof args[args.length - 1] === 'function') callback = args.pop();
      // normalizeArgs's test, written out here: when every argument is a string or a number,
      // `args` reaches send untouched, and V8 then passes it on without another array. Going
      // through normalizeArgs (which may return another array) made a call 10 % slower.
      for (let i = 0; i < args.length; i++) {
        const type = typeof args[i];
        if (type !== 'string' && type !== 'number') {
          return settle(send.call(this, flags, name, normalizeSlow(name, args)), transform, callback);
        }
      }
      return settle(send.call(this, flags, name, args), transform, callback);
    },
  }[methodName];
}

// The methods installCommands made, so that a name can be told written by hand or generated.
const generated = new WeakSet();

/** Whether `name` is a method or property on `proto` (or inherited) that we did not generate. */
function handWritten(proto, name) {
  for (let o = proto; o !== null; o = Object.getPrototypeOf(o)) {
    const d = Object.getOwnPropertyDescriptor(o, name);
    if (d !== undefined) return !generated.has(d.value);
  }
  return false;
}

/**
 * The methods installCommands gives `proto`: for each name of COMMANDS not written by hand on
 * `proto` (its own or inherited), the name and `${name}Buffer`. A name written by hand (get,
 * set, quit…) keeps both to its hand-written side, which decides whether it has a Buffer
 * variant. Returns [{ method, command, buffers }] in the table's order.
 */
function commandMethods(proto) {
  const out = [];
  for (const command of COMMANDS) {
    if (handWritten(proto, command)) continue;
    out.push({ method: command, command, buffers: false });
    const variant = `${command}Buffer`;
    if (!handWritten(proto, variant)) out.push({ method: variant, command, buffers: true });
  }
  return out;
}

/**
 * Defines on `proto` the methods commandMethods(proto) lists. Each takes the command's
 * arguments and an optional trailing callback, normalizes the arguments (normalizeArgs, which
 * throws at the call), calls `send.call(this, flags, name, args)` with `name` lowercase and
 * `flags` 0, or `replyBuffersFlag` for a Buffer variant (bulk replies as Buffers), applies
 * the command's reply transform, and returns the promise (also when given a callback).
 * Methods are non-enumerable, as a class's are; installing again replaces only our own.
 */
function installCommands(proto, send, replyBuffersFlag, { chain = false } = {}) {
  if (typeof send !== 'function') throw invalidParameterError('send', 'a function', send, { where: 'installCommands' });
  if (typeof replyBuffersFlag !== 'number') {
    throw invalidParameterError('replyBuffersFlag', 'a number', replyBuffersFlag, { where: 'installCommands' });
  }
  for (const { method, command, buffers } of commandMethods(proto)) {
    const fn = commandMethod(method, command, buffers ? replyBuffersFlag : 0, send, replyTransforms[command], chain);
    generated.add(fn);
    Object.defineProperty(proto, method, {
      value: fn,
      writable: true,
      enumerable: false,
      configurable: true,
    });
  }
}

module.exports = {
  COMMANDS, normalizeArgs, replyTransforms, transformOf, prefixKey, prefixKeys, prefixKeysOf, installCommands,
  commandMethods, handWritten, withCallback,
};
