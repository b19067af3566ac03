'use strict';
// client.multi() and client.pipeline(): commands gathered by a builder and queued in the
// core as one unit, so nothing another caller issues can come between them, one promise
// settles them all, and the core writes them with everything else of the same turn.
const { refusal, isBlocking, upper } = require('./rules');
const { CommandRefusedError } = require('../errors');
const { installCommands, withCallback, transformOf } = require('./commands');
const { clientConstants } = require('../binding');

const { REPLY_BUFFERS } = clientConstants.commandFlags;
// _queue's transform when the command was named by the caller: the name's own transform.
const BY_NAME = Symbol('by name');

/** A reply asked for as Buffers turned back into strings (for the commands that wanted strings). */
function toStrings(value) {
  if (Buffer.isBuffer(value)) return value.toString();
  if (Array.isArray(value)) return value.map(toStrings);
  return value;
}

function refuse(kind, name, why) {
  throw new CommandRefusedError(`${name} cannot be queued in ${kind}: ${why}`, 'ERR_COMMAND_REFUSED');
}

class CommandBatch {
  #client;
  #commands = [];
  #shapes = []; // per command: { buffers, transform }
  #kind;

  constructor(client, kind, commands) {
    this.#client = client;
    this.#kind = kind;
    if (commands !== undefined) {
      if (!Array.isArray(commands)) throw new TypeError(`${kind}(commands): commands must be an array of [name, ...args] arrays`);
      for (const c of commands) {
        if (!Array.isArray(c) || c.length === 0) throw new TypeError(`${kind}(commands): each command must be a [name, ...args] array`);
        this.call(...c);
      }
    }
  }

  /** Queues any command; returns the builder. */
  call(command, ...args) {
    return this._queue(false, command, args, BY_NAME);
  }

  /** Queues any command whose bulk replies come back as Buffers. */
  callBuffer(command, ...args) {
    return this._queue(true, command, args, BY_NAME);
  }

  /** Internal: queues one command (name as given, args already normalized). */
  _queue(buffers, command, args, transform) {
    if (typeof command !== 'string' && !Buffer.isBuffer(command)) {
      throw new TypeError(`${this.#kind}: a command name must be a string, got ${typeof command}`);
    }
    const name = upper(command);
    const lower = name.toLowerCase();
    if (transform === BY_NAME) transform = typeof command === 'string' ? transformOf(lower) : undefined;
    const why = refusal(name, args);
    if (why !== null) refuse(`${this.#kind}()`, name, why);
    if (this.#kind === 'pipeline' && isBlocking(name, args)) {
      refuse('pipeline()', name, 'a blocking command would hold every command behind it on the shared connection; call it on the client (it runs on a connection of its own) or in multi(), where it does not block');
    }
    this.#commands.push([command, ...this.#client._keyArgs(lower, args)]);
    this.#shapes.push(buffers || transform ? { buffers, transform } : null);
    return this;
  }

  /** How many commands are queued. */
  get length() {
    return this.#commands.length;
  }

  /** Internal: drops what was queued. */
  _clear() {
    this.#commands = [];
    this.#shapes = [];
  }

  /** Internal: sends the unit; resolves with the raw replies (errors as Error elements). */
  _send(wrap) {
    const commands = wrap ? [['MULTI'], ...this.#commands, ['EXEC']] : this.#commands;
    this.#commands = [];
    const shapes = this.#shapes;
    this.#shapes = [];
    const buffers = shapes.some((s) => s !== null && s.buffers);
    return { shapes, buffers, replies: this.#client._unit(buffers, commands) };
  }
}

/** Shapes one reply as its command asked (strings or Buffers, hgetall → object…). */
function shape(value, s, buffers) {
  if (value instanceof Error) return value;
  let v = value;
  if (buffers && (s === null || !s.buffers)) v = toStrings(v);
  if (s !== null && s.transform !== undefined) v = s.transform(v);
  return v;
}

/**
 * client.multi(): exec() sends MULTI, the queued commands and EXEC as one unit. Resolves an
 * array of the commands' results (an error reply as an Error element), or null when a
 * WATCHed key changed (on an isolated connection). A command Redis refused to queue aborts
 * the whole transaction: exec() rejects with EXECABORT, its `previousErrors` saying why.
 * If the connection is lost after the unit was written, exec() rejects with
 * ERR_OUTCOME_UNKNOWN: the transaction may or may not have run, and it is never resent.
 */
class Multi extends CommandBatch {
  constructor(client, commands) {
    super(client, 'multi', commands);
  }

  exec(callback) {
    if (this.length === 0) return withCallback(Promise.resolve([]), callback);
    const { shapes, buffers, replies } = this._send(true);
    const done = replies.then((all) => {
      if (all[0] instanceof Error) {
        // Redis refused MULTI itself (an ACL, say): it then ran the commands one by one.
        all[0].message += '; MULTI was refused, so the queued commands ran outside a transaction';
        all[0].results = all.slice(1, -1);
        throw all[0];
      }
      const result = all[all.length - 1];
      if (result instanceof Error) {
        if (result.code === 'EXECABORT') result.previousErrors = all.slice(1, -1).filter((r) => r instanceof Error);
        throw result;
      }
      if (result === null) return null;
      return result.map((v, i) => shape(v, shapes[i], buffers));
    });
    return withCallback(done, callback);
  }

  /** Drops the queued commands; nothing was sent. Resolves 'OK' as DISCARD would. */
  discard() {
    this._clear();
    return Promise.resolve('OK');
  }
}

/**
 * client.pipeline(): exec() queues the commands as one unit (they still share the
 * connection's automatic pipelining) and resolves ioredis's shape: one [error, result]
 * pair per command. If the connection is lost after they were written, the commands already
 * answered keep their results and each other pair carries that error (ERR_OUTCOME_UNKNOWN):
 * none of them is resent.
 */
class Pipeline extends CommandBatch {
  constructor(client, commands) {
    super(client, 'pipeline', commands);
  }

  exec(callback) {
    if (this.length === 0) return withCallback(Promise.resolve([]), callback);
    const n = this.length;
    const { shapes, buffers, replies } = this._send(false);
    const pair = (v, i) => (v instanceof Error ? [v, undefined] : [null, shape(v, shapes[i], buffers)]);
    const done = replies.then(
      (all) => all.map(pair),
      // The connection died (or the unit was refused): the commands that were answered keep
      // their results (err.replies), the others carry the error.
      (err) => {
        const answered = Array.isArray(err.replies) ? err.replies : [];
        return Array.from({ length: n }, (_, i) => (i < answered.length ? pair(answered[i], i) : [err, undefined]));
      },
    );
    return withCallback(done, callback);
  }
}

// Every command of the table as a builder method: multi().set('a', '1').hgetall('h').
installCommands(CommandBatch.prototype, function queue(flags, name, args, transform) {
  return this._queue(flags !== 0, name, args, transform);
}, REPLY_BUFFERS, { chain: true });

module.exports = { Multi, Pipeline, CommandBatch, toStrings };
