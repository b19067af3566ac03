'use strict';
// Which commands may run on the shared, pipelined connection. Commands that change the
// connection's state would leak into every other caller's commands (a MULTI makes the next
// caller's GET answer "QUEUED"; a SUBSCRIBE turns every later reply into a message), so
// call() refuses them and names the API that does the job safely. Blocking commands would
// hold every command queued behind them, so they run on connections of their own.

const MULTI = 'use client.multi(): its exec() sends MULTI … EXEC as one unit nothing else can come between';
const WATCH = 'use client.isolated(async (conn) => { await conn.watch(key); …; return conn.multi()….exec(); }): ' +
  'a WATCH needs a connection of its own until EXEC';
const pubsub = (sub, what, unsub) => `use client.${sub}(${what}, listener) / ${unsub}(${what}): pub/sub runs on a connection ` +
  'of its own and resubscribes after a reconnect';
const PUBSUB = pubsub('subscribe', 'channel', 'unsubscribe');
const PPUBSUB = pubsub('psubscribe', 'pattern', 'punsubscribe');
const SPUBSUB = pubsub('ssubscribe', 'shardChannel', 'sunsubscribe');

// Upper-case command name → why it is refused and what to use instead, and whether a
// connection of the caller's own (client.isolated()) refuses it too: there only what would
// break the pairing of replies with commands, or silently undo what the options set up.
const refuse = (why, onOwn = false) => ({ why, onOwn });
const STATEFUL = new Map([
  ['MULTI', refuse(MULTI)],
  ['EXEC', refuse(MULTI)],
  ['DISCARD', refuse(`${MULTI}; a builder that is never exec()ed sends nothing`)],
  ['WATCH', refuse(WATCH)],
  ['UNWATCH', refuse(WATCH)],
  ['SUBSCRIBE', refuse(PUBSUB, true)],
  ['PSUBSCRIBE', refuse(PPUBSUB, true)],
  ['SSUBSCRIBE', refuse(SPUBSUB, true)],
  ['UNSUBSCRIBE', refuse(PUBSUB, true)],
  ['PUNSUBSCRIBE', refuse(PPUBSUB, true)],
  ['SUNSUBSCRIBE', refuse(SPUBSUB, true)],
  ['MONITOR', refuse('MONITOR turns its connection into a stream of every command the server runs; use redis-cli monitor', true)],
  ['SELECT', refuse('set the db option (or /db in the URL): every connection, and every reconnect, selects it; for another database use client.duplicate({ db })')],
  ['HELLO', refuse('hirecache speaks RESP2 on every connection; HELLO would change the protocol under every other caller', true)],
  ['RESET', refuse('RESET clears the connection state the options set up (database, name, credentials); use client.duplicate() for a fresh connection', true)],
  ['QUIT', refuse('use client.quit(): it answers every accepted command first', true)],
  ['AUTH', refuse('set the username and password options (or the URL): every connection, and every reconnect, authenticates with them', true)],
  ['WAIT', refuse('WAIT counts the writes of its own connection and blocks it: run your writes and WAIT on client.isolated(async (conn) => …)')],
  ['WAITAOF', refuse('WAITAOF counts the writes of its own connection and blocks it: run your writes and WAITAOF on client.isolated(async (conn) => …)')],
  ['SYNC', refuse('replication streams are not commands a client can share', true)],
  ['PSYNC', refuse('replication streams are not commands a client can share', true)],
  ['READONLY', refuse('READONLY and READWRITE are for cluster replica connections; Redis Cluster is not supported yet')],
  ['READWRITE', refuse('READONLY and READWRITE are for cluster replica connections; Redis Cluster is not supported yet')],
]);

// CLIENT subcommands that change the connection's state.
const CLIENT_STATEFUL = new Map([
  ['REPLY', refuse('CLIENT REPLY OFF/SKIP would make the replies of other callers go missing', true)],
  ['TRACKING', refuse('client-side caching (CLIENT TRACKING) is not supported; its invalidation messages would reach other callers', true)],
  ['SETNAME', refuse('set the name option (connectionName): every connection, and every reconnect, sets it')],
  ['CACHING', refuse('client-side caching (CLIENT TRACKING) is not supported', true)],
  ['NO-EVICT', refuse('connection flags are not shared safely; use client.duplicate() for a connection of your own')],
  ['NO-TOUCH', refuse('connection flags are not shared safely; use client.duplicate() for a connection of your own')],
]);

// Commands that always block until data arrives or their timeout passes.
const BLOCKING = new Set([
  'BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP',
]);

/** A command name or argument in upper case, from the bytes that would be sent ('' if none). */
function upper(value) {
  if (typeof value === 'string') return value.toUpperCase();
  // Any view of bytes (a Buffer, a Uint8Array, a DataView): the binding sends its bytes.
  if (ArrayBuffer.isView(value) && value.byteLength <= 32) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1').toUpperCase();
  }
  return '';
}

/**
 * Why `name` (upper case) with `args` may not run on a shared connection (or, `dedicated`,
 * on a connection of the caller's own), or null.
 */
function refusal(name, args, dedicated = false) {
  let rule = STATEFUL.get(name);
  if (rule === undefined && name === 'CLIENT' && args.length > 0) rule = CLIENT_STATEFUL.get(upper(args[0]));
  if (rule === undefined || (dedicated && !rule.onOwn)) return null;
  return rule.why;
}

/**
 * Whether `name` (upper case) with `args` blocks its connection (BLPOP…, XREAD … BLOCK; and
 * WAIT, WAITAOF, which only a connection of the caller's own may send).
 */
function isBlocking(name, args) {
  if (BLOCKING.has(name) || name === 'WAIT' || name === 'WAITAOF') return true;
  if (name === 'XREAD' || name === 'XREADGROUP') {
    for (const a of args) {
      const u = upper(a);
      if (u === 'BLOCK') return true;
      if (u === 'STREAMS') return false;
    }
  }
  return false;
}

/**
 * How long a blocking command may wait for data, in ms (its own timeout argument), or 0 for
 * forever / unknown. BLPOP key… timeout (seconds, last), BLMOVE … timeout, BLMPOP timeout …,
 * XREAD … BLOCK ms …, WAIT numreplicas ms, WAITAOF numlocal numreplicas ms.
 */
function blockingTimeoutMs(name, args) {
  let seconds;
  if (name === 'XREAD' || name === 'XREADGROUP') {
    for (let i = 0; i < args.length - 1; i++) {
      if (upper(args[i]) === 'BLOCK') return Math.max(0, Number(args[i + 1]) || 0);
    }
    return 0;
  }
  if (name === 'WAIT' || name === 'WAITAOF') {
    const ms = Number(args[name === 'WAIT' ? 1 : 2]);
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }
  if (name === 'BLMPOP' || name === 'BZMPOP') seconds = Number(args[0]);
  else seconds = Number(args[args.length - 1]);
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds * 1000) : 0;
}

// Lower-case names that need a look before they are sent: refused, routed or checked.
const SPECIAL = new Set([...STATEFUL.keys(), ...BLOCKING, 'CLIENT', 'XREAD', 'XREADGROUP'].map((n) => n.toLowerCase()));

module.exports = { refusal, isBlocking, blockingTimeoutMs, upper, SPECIAL };
