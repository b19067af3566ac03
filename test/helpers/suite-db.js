'use strict';
// Gives each suite file a database of its own on the shared redis-server: a counter in
// database 0 hands out 1, 2, 3, ... so suites running in parallel workers never share
// keys, and flush() empties only this suite's database.
const { rawCommand, rawOptionsFromUrl } = require('./raw-redis');

const COUNTER_KEY = 'hirecache:test:next-db';

/** The shared server's URL, set by the global setup. */
function sharedRedisUrl() {
  const url = process.env.HIRECACHE_TEST_REDIS_URL;
  if (!url) throw new Error('HIRECACHE_TEST_REDIS_URL is not set: run the suites with `npx jest` (global setup)');
  return url;
}

/**
 * Allocates a fresh database. Resolves with { db, url, raw, flush() } where url is
 * redis://host:port/db and raw the options for raw-redis.js (SELECTs db).
 */
async function suiteDatabase() {
  const base = rawOptionsFromUrl(sharedRedisUrl());
  const db = await rawCommand(base, 'INCR', COUNTER_KEY);
  const databases = Number((await rawCommand(base, 'CONFIG', 'GET', 'databases'))[1]);
  if (db >= databases) throw new Error(`suite-db: ran out of databases (${databases})`);
  const raw = { ...base, db };
  return {
    db,
    host: base.host,
    port: base.port,
    url: `redis://${base.host}:${base.port}/${db}`,
    raw,
    flush: () => rawCommand(raw, 'FLUSHDB'),
  };
}

module.exports = { suiteDatabase, sharedRedisUrl };
