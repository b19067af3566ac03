'use strict';
// Drop-in for an API's lib/redis.js: one lazily connected client for the whole process,
// configured from REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD,
// REDIS_DB). Requiring this module opens no socket.
const { RedisClient } = require('./client/client');
const { clusterClientOptions } = require('./client/cluster');
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

/**
 * A cluster client as node-redis makes one: createCluster({ rootNodes, defaults, useReplicas,
 * maxCommandRedirections, … }). The same as createClient({ ...defaults, cluster: … }).
 */
function createCluster(options = {}) {
  if (options === null || typeof options !== 'object') return createClient(options);
  const { rootNodes, ...rest } = options;
  if (rootNodes === undefined) {
    throw new TypeError('createCluster: option rootNodes (the seed nodes) is missing');
  }
  return new RedisClient(clusterClientOptions(rootNodes, rest), process.env);
}

/**
 * ioredis's `new Cluster(startupNodes, options)`: a RedisClient on a cluster, with the
 * cluster's settings (scaleReads, slotsRefreshInterval, maxRedirections…) and redisOptions
 * (every node's connection) where ioredis puts them.
 */
class Cluster extends RedisClient {
  constructor(startupNodes, options = {}) {
    super(clusterClientOptions(startupNodes, options), process.env);
  }
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
  createCluster,
  Cluster,
  quitRedisClient,
  RedisClient,
  CLIENT_STATES,
  ...errors,
};
