'use strict';
// WATCH … MULTI … EXEC needs a connection of its own until EXEC: client.isolated(fn) lends
// one. When another client changes a watched key, exec() resolves null and nothing of the
// transaction ran; without a conflict it resolves the results. The lent connection is
// closed once fn settles, whether it resolved or threw.
const { CommandRefusedError } = require('../../../lib/errors');
const { clientSuite } = require('../../helpers/client-suite');
const { rawCommand } = require('../../helpers/raw-redis');
const { waitFor } = require('../../helpers/async');
const { refusalOf, connectionsNamed } = require('../../helpers/surface');

const suite = clientSuite({ defaults: { logger: false } });
const open = (options) => suite.open({ url: suite.db.url, ...options });

test('a watched key changed by another client: exec() resolves null, nothing ran, and the connection is closed afterwards', async () => {
  const name = 'surface-watch-conflict';
  const client = open({ name });
  const other = open();
  await rawCommand(suite.db.raw, 'SET', 'balance', '10');
  let lent;
  const result = await client.isolated(async (conn) => {
    lent = conn;
    await conn.watch('balance');
    const balance = Number(await conn.call('GET', 'balance'));
    // Another client writes between WATCH and EXEC.
    await other.call('SET', 'balance', '99');
    return conn.multi().call('SET', 'balance', String(balance - 1)).call('INCR', 'spent').exec();
  });
  expect(result).toBeNull();
  expect(await rawCommand(suite.db.raw, 'GET', 'balance')).toBe('99');
  expect(await rawCommand(suite.db.raw, 'EXISTS', 'spent')).toBe(0);
  await waitFor(() => lent.status().state === 'closed', { what: 'the isolated connection to close' });
  await waitFor(async () => (await connectionsNamed(suite.db.raw, name)).length === 0, {
    what: 'the isolated connection to leave CLIENT LIST',
  });
});

test('without a conflict, exec() resolves the results; the key holds the transaction\'s value', async () => {
  const name = 'surface-watch-clean';
  const client = open({ name });
  await rawCommand(suite.db.raw, 'SET', 'balance', '10');
  const seen = [];
  const result = await client.isolated(async (conn) => {
    await conn.watch(['balance', 'other-key']);
    const balance = Number(await conn.call('GET', 'balance'));
    seen.push((await connectionsNamed(suite.db.raw, name)).length);
    return conn.multi().call('SET', 'balance', String(balance - 1)).call('INCR', 'spent').exec();
  });
  expect(result).toEqual(['OK', 1]);
  expect(await rawCommand(suite.db.raw, 'GET', 'balance')).toBe('9');
  // While fn ran, the lent connection was the client's only one (the shared one was never
  // used); afterwards there is none.
  expect(seen).toEqual([1]);
  await waitFor(async () => (await connectionsNamed(suite.db.raw, name)).length === 0, {
    what: 'the isolated connection to leave CLIENT LIST',
  });
});

test('unwatch() lets the transaction run although the key changed', async () => {
  const client = open();
  const other = open();
  const result = await client.isolated(async (conn) => {
    await conn.watch('k');
    await other.call('SET', 'k', 'theirs');
    await conn.unwatch();
    return conn.multi().call('SET', 'k', 'mine').exec();
  });
  expect(result).toEqual(['OK']);
  expect(await rawCommand(suite.db.raw, 'GET', 'k')).toBe('mine');
});

test('isolated() rejects with what fn threw, and still closes the connection', async () => {
  const name = 'surface-watch-throw';
  const client = open({ name });
  let lent;
  const boom = new Error('application failure');
  await expect(client.isolated(async (conn) => {
    lent = conn;
    await conn.watch('k');
    throw boom;
  })).rejects.toBe(boom);
  await waitFor(() => lent.status().state === 'closed', { what: 'the isolated connection to close' });
  await waitFor(async () => (await connectionsNamed(suite.db.raw, name)).length === 0, {
    what: 'the isolated connection to leave CLIENT LIST',
  });
  await expect(client.isolated('not a function')).rejects.toThrow(TypeError);
});

test('watch() on the shared client is refused, naming client.isolated()', async () => {
  const client = open();
  for (const call of [() => client.watch('k'), () => client.unwatch()]) {
    const err = await refusalOf(call);
    expect(err).toBeInstanceOf(CommandRefusedError);
    expect(err.code).toBe('ERR_COMMAND_REFUSED');
    expect(err.message).toMatch(/client\.isolated\(/);
  }
});
