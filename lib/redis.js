'use strict';
// Drop-in for an API's lib/redis.js: one lazily connected client for the whole process,
// configured from REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD,
// REDIS_DB). Requiring this module opens no socket.
const { RedisClient } = require('./client/client');
const { resolveConfig } = require('./client/config');
const { nativeError, ...errors } = require('./errors');
const { clientConstants } = require('./binding');

/** Every state status().state can report, in order (the native client's own list). */
const CLIENT_STATES = clientConstants.states;

let singleton;
let singletonError;

/** Whether REDIS_URL (or the other variables) turn Redis on. Throws on a malformed setting. */
function isRedisEnabled() {
  return resolveConfig(process.env).enabled;
}

/**
 * The process-wide client, created on first call; null when REDIS_URL=disabled. A malformed
 * configuration throws a ConfigError naming the variable, on this and every later call.
 */
function getRedisClient() {
  if (singleton !== undefined) return singleton;
  if (singletonError) throw singletonError;
  try {
    singleton = resolveConfig(process.env).enabled ? new RedisClient({}, process.env) : null;
  } catch (err) {
    singletonError = err;
    throw err;
  }
  return singleton;
}

/** A new client of its own (options override the environment). */
function createClient(options = {}) {
  return new RedisClient(options, process.env);
}

/** Closes the process-wide client gracefully, if it was created. */
async function quitRedisClient() {
  const client = singleton;
  singleton = undefined;
  if (client) await client.quit();
}

void nativeError; // Internal: the native client's error factory, not part of the API.

module.exports = {
  getRedisClient,
  isRedisEnabled,
  createClient,
  quitRedisClient,
  RedisClient,
  CLIENT_STATES,
  ...errors,
};
