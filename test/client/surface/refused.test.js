'use strict';
// Every command that would change the shared connection's state is refused by call() and
// callBuffer() whatever the case of its name, given as a string or as a Buffer, with
// CommandRefusedError (ERR_COMMAND_REFUSED) and a message that names the command and what to
// use instead; nothing reaches Redis, and the connection serves the next caller as before.
// On a connection of the caller's own (client.isolated()) the transaction commands and WAIT
// are allowed; what would break the pairing of replies with commands is still refused.
const { CommandRefusedError } = require('../../../lib/errors');
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { turns } = require('../../helpers/async');
const { refusalOf, mixedCase } = require('../../helpers/surface');

const suite = clientSuite({ proxy: true, defaults: { logger: false } });
const open = (options) => suite.open({ url: `${suite.proxy.url}/${suite.db.db}`, ...options });

// [command, arguments, what the message must name]
const REFUSED = [
  ['MULTI', [], /client\.multi\(\)/],
  ['EXEC', [], /client\.multi\(\)/],
  ['DISCARD', [], /client\.multi\(\)/],
  ['WATCH', ['k'], /client\.isolated\(/],
  ['UNWATCH', [], /client\.isolated\(/],
  ['SUBSCRIBE', ['ch'], /client\.subscribe\(/],
  ['PSUBSCRIBE', ['ch*'], /client\.psubscribe\(/],
  ['UNSUBSCRIBE', ['ch'], /unsubscribe\(/],
  ['PUNSUBSCRIBE', ['ch*'], /punsubscribe\(/],
  // Shard channels are a namespace of their own (SPUBLISH reaches only SSUBSCRIBE): the way
  // to them is client.ssubscribe() / sunsubscribe(), not subscribe().
  ['SSUBSCRIBE', ['ch'], /ssubscribe\(|sunsubscribe\(/],
  ['SUNSUBSCRIBE', ['ch'], /ssubscribe\(|sunsubscribe\(/],
  ['MONITOR', [], /redis-cli monitor/],
  ['SELECT', ['1'], /db option|duplicate\(\{ db \}\)/],
  ['HELLO', ['3'], /RESP2/],
  ['RESET', [], /client\.duplicate\(\)/],
  ['QUIT', [], /client\.quit\(\)/],
  ['AUTH', ['secret'], /password option/],
  ['WAIT', ['1', '0'], /client\.isolated\(/],
  ['WAITAOF', ['1', '0', '0'], /client\.isolated\(/],
  ['SYNC', [], /replication/],
  ['PSYNC', ['?', '-1'], /replication/],
  ['READONLY', [], /Cluster is not supported/],
  ['READWRITE', [], /Cluster is not supported/],
  ['CLIENT', ['REPLY', 'OFF'], /CLIENT REPLY/],
  ['CLIENT', ['TRACKING', 'ON'], /CLIENT TRACKING/],
  ['CLIENT', ['SETNAME', 'someone'], /name option/],
  ['CLIENT', ['CACHING', 'yes'], /not supported/],
  ['CLIENT', ['NO-EVICT', 'on'], /client\.duplicate\(\)/],
  ['CLIENT', ['NO-TOUCH', 'on'], /client\.duplicate\(\)/],
];

// Every spelling of a name a caller may use: three cases, each as a string and as a Buffer.
function spellings(name) {
  const texts = [name.toUpperCase(), name.toLowerCase(), mixedCase(name.toLowerCase())];
  return [...texts, ...texts.map((t) => Buffer.from(t))];
}

function describeName(name) {
  return Buffer.isBuffer(name) ? `Buffer(${name.toString()})` : name;
}

/** The arguments in each spelling of the subcommand (CLIENT reply / Reply …), or as they are. */
function argumentSpellings(command, args) {
  if (command !== 'CLIENT') return [args];
  return spellings(args[0]).map((sub) => [sub, ...args.slice(1)]);
}

describe('refused on the shared connection', () => {
  test.each(REFUSED.map(([name, args, hint]) => [[name, ...args].join(' '), name, args, hint]))(
    '%s: refused via call() and callBuffer() in every case, as string and Buffer, naming what to use',
    async (_label, name, args, hint) => {
      const client = open();
      await client.call('PING');
      const before = suite.proxy.stats.toServer.bytes;
      let tried = 0;
      for (const spelled of spellings(name)) {
        for (const spelledArgs of argumentSpellings(name, args)) {
          for (const method of ['call', 'callBuffer']) {
            const err = await refusalOf(() => client[method](spelled, ...spelledArgs));
            const where = `${method}(${describeName(spelled)}, ${spelledArgs.map(describeName).join(', ')})`;
            if (!(err instanceof CommandRefusedError)) throw new Error(`${where} failed with ${err && err.stack}`);
            expect(err.code).toBe('ERR_COMMAND_REFUSED');
            expect(err.message).toContain(name);
            if (!hint.test(err.message)) throw new Error(`${where}: the message does not name what to use (${hint}): ${err.message}`);
            tried += 1;
          }
        }
      }
      expect(tried).toBeGreaterThanOrEqual(12);
      await turns();
      // Nothing of the refused commands reached Redis, and the connection works as before.
      expect(suite.proxy.stats.toServer.bytes).toBe(before);
      await expect(client.call('SET', 'after', 'refusals')).resolves.toBe('OK');
      expect(await rawCommand(suite.db.raw, 'GET', 'after')).toBe('refusals');
    },
  );

  test('the builders refuse them too, at the call that queues them', async () => {
    const client = open();
    for (const [name, args] of [['MULTI', []], ['SUBSCRIBE', ['ch']], ['select', ['2']], [Buffer.from('Watch'), ['k']], ['client', ['reply', 'off']]]) {
      for (const builder of [client.multi(), client.pipeline()]) {
        const err = await refusalOf(() => builder.call(name, ...args));
        expect(err).toBeInstanceOf(CommandRefusedError);
        expect(err.code).toBe('ERR_COMMAND_REFUSED');
      }
    }
  });

  test('commands that only read connection state are not refused', async () => {
    const client = open({ name: 'surface-refused-reader' });
    await expect(client.call('CLIENT', 'GETNAME')).resolves.toBe('surface-refused-reader');
    await expect(client.call('client', 'id')).resolves.toEqual(expect.any(Number));
    await expect(client.call('CLIENT', 'TRACKINGINFO')).resolves.toEqual(expect.any(Array));
    await expect(client.call('PUBLISH', `surface-refused:${suite.db.db}`, 'x')).resolves.toBe(0);
    await expect(client.call('XREAD', 'COUNT', '1', 'STREAMS', 'no-stream', '0')).resolves.toBeNull();
  });
});

describe('on client.isolated(conn)', () => {
  test('WATCH, UNWATCH, MULTI, EXEC, DISCARD and WAIT are allowed', async () => {
    const client = open();
    const result = await client.isolated(async (conn) => {
      expect(await conn.call('WATCH', 'iso')).toBe('OK');
      expect(await conn.call('unwatch')).toBe('OK');
      expect(await conn.call('MULTI')).toBe('OK');
      expect(await conn.call('SET', 'iso', 'by-hand')).toBe('QUEUED');
      expect(await conn.call('DISCARD')).toBe('OK');
      expect(await conn.call(Buffer.from('multi'))).toBe('OK');
      expect(await conn.call('INCR', 'iso-count')).toBe('QUEUED');
      const exec = await conn.call('Exec');
      // No replica is attached: WAIT 0 replicas, 0 ms answers at once with 0.
      const wait = await conn.call('WAIT', '0', '0');
      return { exec, wait };
    });
    expect(result).toEqual({ exec: [1], wait: 0 });
    expect(await rawCommand(suite.db.raw, 'GET', 'iso')).toBeNull();
    expect(await rawCommand(suite.db.raw, 'GET', 'iso-count')).toBe('1');
  });

  test.each([
    ['SUBSCRIBE', ['ch']],
    ['PSUBSCRIBE', ['ch*']],
    ['SSUBSCRIBE', ['ch']],
    ['UNSUBSCRIBE', []],
    ['MONITOR', []],
    ['HELLO', ['3']],
    ['QUIT', []],
    ['CLIENT', ['REPLY', 'OFF']],
    ['CLIENT', ['reply', 'skip']],
  ])('%s %j is refused, and the connection still answers', async (name, args) => {
    const client = open();
    const outcome = await client.isolated(async (conn) => {
      const errs = [];
      for (const spelled of spellings(name)) {
        errs.push(await refusalOf(() => conn.call(spelled, ...args)));
        errs.push(await refusalOf(() => conn.callBuffer(spelled, ...args)));
      }
      return { errs, ping: await conn.call('PING') };
    });
    for (const err of outcome.errs) {
      expect(err).toBeInstanceOf(CommandRefusedError);
      expect(err.code).toBe('ERR_COMMAND_REFUSED');
      expect(err.message).toContain(name);
    }
    expect(outcome.ping).toBe('PONG');
  });
});
