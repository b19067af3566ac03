'use strict';
// Redis Cluster on the JS side: the `cluster` option and REDIS_CLUSTER_NODES read into the
// seed nodes and settings the native router takes, and the multi-key commands (MGET, DEL,
// UNLINK, EXISTS, TOUCH) split by hash slot and merged back in the caller's order. The
// routing itself (slots, MOVED/ASK, the slot map) is native: src/cluster/cluster_router.cc.
const binding = require('../binding');
const { ConfigError } = require('../errors');
const { parseHostPort } = require('./endpoints');
const { invalidParameterError, checkInteger, checkType, checkKnownOptions } = require('../util/validate');

const OPTION = { code: 'ERR_INVALID_CONFIG' };
const ENV = { code: 'ERR_INVALID_CONFIG', ErrorClass: ConfigError };
const NODE_FORM = 'host:port, [ipv6]:port, a redis:// or rediss:// URL, { host, port } or { url }';

const CLUSTER_KEYS = [
  'nodes', 'rootNodes', 'maxRedirections', 'refreshInterval', 'slotsRefreshInterval', 'readFromReplicas',
  'useReplicas', 'scaleReads',
];
// Cluster options of ioredis and node-redis that users bring along, and what to do instead.
const FOREIGN_CLUSTER_OPTIONS = {
  redisOptions: "put the connection options (password, tls, commandTimeout…) at the top level: every node's connection takes them",
  defaults: "put the connection options (password, tls, commandTimeout…) at the top level: every node's connection takes them",
  natMap: 'not supported: the nodes must be reachable at the addresses the cluster announces (cluster-announce-ip)',
  dnsLookup: 'not supported: host names are resolved asynchronously by the client',
  clusterRetryStrategy: 'the router re-reads the slot map from any reachable node, backing off up to reconnectMaxDelay',
  retryDelayOnFailover: 'commands for a node that fails fail fast; the slot map is re-read at once and the slots move with it',
  retryDelayOnClusterDown: 'CLUSTERDOWN is retried after 10, 20, 40… ms (at most 200) within the command\'s deadline',
  retryDelayOnTryAgain: 'TRYAGAIN is retried after 10, 20, 40… ms (at most 200) within the command\'s deadline',
  retryDelayOnMoved: 'MOVED is followed at once, to the node it names',
  slotsRefreshTimeout: 'the slot map read has the command deadline (commandTimeout)',
  enableOfflineQueue: 'commands wait for the first slot map within commandTimeout (bounded by maxQueue)',
  minimizeConnections: 'one connection per node, opened when a command first needs it',
};

function configError(message) {
  return new ConfigError(message, 'ERR_INVALID_CONFIG');
}

/** One seed node from `entry` (see NODE_FORM); `name` says where it came from, for errors. */
function parseNode(name, entry, parseRedisUrl) {
  if (entry !== null && typeof entry === 'object' && !Array.isArray(entry) && entry.url !== undefined) {
    // node-redis's rootNodes form: { url }.
    checkKnownOptions(entry, ['url'], { path: `${name}.`, code: 'ERR_INVALID_CONFIG' });
    return parseNode(name, checkType(`${name}.url`, entry.url, 'string', OPTION), parseRedisUrl);
  }
  if (entry !== null && typeof entry === 'object' && !Array.isArray(entry) && entry.socket !== undefined) {
    // node-redis's other form: { socket: { host, port } }.
    checkKnownOptions(entry, ['socket'], { path: `${name}.`, code: 'ERR_INVALID_CONFIG' });
    return parseNode(`${name}.socket`, entry.socket, parseRedisUrl);
  }
  if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
    checkKnownOptions(entry, ['host', 'port'], { path: `${name}.`, code: 'ERR_INVALID_CONFIG' });
    const host = checkType(`${name}.host`, entry.host, 'string', OPTION);
    if (host === '') throw configError(`${name}.host is empty`);
    const port = entry.port === undefined ? 6379 : checkInteger(`${name}.port`, entry.port, { min: 1, max: 65535, ...OPTION });
    return { host, port };
  }
  if (typeof entry !== 'string') throw invalidParameterError(name, NODE_FORM, entry, OPTION);
  const text = entry.trim();
  if (/^rediss?:\/\//i.test(text)) {
    const u = parseRedisUrl(name, text);
    return { host: u.host, port: u.port || 6379, url: u };
  }
  const node = parseHostPort(text, 6379);
  if (node === null) {
    // "user:secret@host" without a scheme: the value is not shown, it may hold a password.
    if (text.includes('@')) throw configError(`${name} must be ${NODE_FORM} (credentials go in a redis:// URL; the value is not shown, as it may hold a password)`);
    throw invalidParameterError(name, NODE_FORM, text, OPTION);
  }
  return node;
}

/**
 * The cluster settings from option `cluster` (true, an array of nodes, or an object) or, when
 * it is not given, REDIS_CLUSTER_NODES; null for a single Redis. `base` is the resolved
 * single-node configuration: its host and port are the seed for `cluster: true`. URL nodes may
 * carry credentials and TLS for every node; they must agree. Returns { nodes, settings from
 * the URLs, maxRedirections, refreshInterval, readFromReplicas } or null.
 */
function resolveCluster(option, env, base, parseRedisUrl) {
  let raw = option;
  let source = 'option cluster';
  if (raw === undefined) {
    const text = env.REDIS_CLUSTER_NODES;
    if (text === undefined || String(text).trim() === '') return null;
    raw = String(text).split(',').map((s) => s.trim()).filter((s) => s !== '');
    source = 'REDIS_CLUSTER_NODES';
    if (raw.length === 0) throw configError('REDIS_CLUSTER_NODES names no node');
  }
  if (raw === false || raw === null) return null;
  let settings = {};
  let nodes;
  if (raw === true) {
    nodes = [{ host: base.host, port: base.port }];
  } else if (Array.isArray(raw)) {
    nodes = raw;
  } else if (typeof raw === 'object') {
    for (const key of Object.keys(raw)) {
      if (Object.prototype.hasOwnProperty.call(FOREIGN_CLUSTER_OPTIONS, key)) {
        const err = new TypeError(`unknown option cluster.${key} (${FOREIGN_CLUSTER_OPTIONS[key]})`);
        err.code = 'ERR_INVALID_CONFIG';
        throw err;
      }
    }
    checkKnownOptions(raw, CLUSTER_KEYS, { path: 'cluster.', code: 'ERR_INVALID_CONFIG' });
    settings = raw;
    if (raw.nodes !== undefined && raw.rootNodes !== undefined) {
      throw configError('option cluster has both nodes and rootNodes (the same list under two names): give one');
    }
    nodes = raw.nodes !== undefined ? raw.nodes : raw.rootNodes !== undefined ? raw.rootNodes : [{ host: base.host, port: base.port }];
    if (!Array.isArray(nodes)) throw invalidParameterError('option cluster.nodes', `an array of ${NODE_FORM}`, nodes, OPTION);
  } else {
    throw invalidParameterError('option cluster', 'true, an array of nodes, or { nodes, … }', raw, OPTION);
  }
  if (nodes.length === 0) throw configError(`${source} names no node`);
  const errorOptions = source === 'REDIS_CLUSTER_NODES' ? ENV : OPTION;
  const parsed = nodes.map((entry, i) => {
    try {
      return parseNode(source === 'REDIS_CLUSTER_NODES' ? source : `option cluster.nodes[${i}]`, entry, parseRedisUrl);
    } catch (err) {
      if (errorOptions === ENV && !(err instanceof ConfigError)) throw configError(err.message);
      throw err;
    }
  });
  // What the URLs say for every node: the same credentials and scheme, or a refusal.
  const fromUrls = {};
  for (const node of parsed) {
    if (node.url === undefined) continue;
    for (const key of ['username', 'password', 'tls', 'db']) {
      const value = node.url[key] === undefined ? (key === 'tls' ? false : undefined) : node.url[key];
      if (value === undefined) continue;
      if (fromUrls[key] !== undefined && fromUrls[key] !== value) {
        throw configError(`${source}: the node URLs disagree on ${key === 'tls' ? 'the scheme (redis:// and rediss://)' : key}; every node of a cluster takes the same`);
      }
      fromUrls[key] = value;
    }
  }
  const seen = new Set();
  const seeds = [];
  for (const { host, port } of parsed) {
    const key = `${host}:${port}`;
    if (!seen.has(key)) {
      seen.add(key);
      seeds.push({ host, port });
    }
  }
  let readFromReplicas = false;
  for (const key of ['readFromReplicas', 'useReplicas']) {
    if (settings[key] !== undefined) readFromReplicas = checkType(`option cluster.${key}`, settings[key], 'boolean', OPTION) || readFromReplicas;
  }
  if (settings.scaleReads !== undefined) {
    if (settings.scaleReads === 'slave' || settings.scaleReads === 'replica') readFromReplicas = true;
    else if (settings.scaleReads !== 'master') {
      throw invalidParameterError('option cluster.scaleReads', "'master' or 'slave' ('all' and functions are not supported)", settings.scaleReads, OPTION);
    }
  }
  const refresh = settings.refreshInterval !== undefined ? ['refreshInterval', settings.refreshInterval]
    : settings.slotsRefreshInterval !== undefined ? ['slotsRefreshInterval', settings.slotsRefreshInterval] : null;
  return {
    nodes: seeds,
    fromUrls,
    maxRedirections: settings.maxRedirections === undefined ? 16
      : checkInteger('option cluster.maxRedirections', settings.maxRedirections, { min: 0, max: 1000, ...OPTION }),
    refreshInterval: refresh === null ? 5000 : checkInteger(`option cluster.${refresh[0]}`, refresh[1], { min: 0, max: 2 ** 31 - 1, ...OPTION }),
    readFromReplicas,
  };
}

// Multi-key commands split by slot: how their per-slot answers merge.
const SPLIT = new Map([
  ['mget', 'values'],
  ['del', 'sum'],
  ['unlink', 'sum'],
  ['exists', 'sum'],
  ['touch', 'sum'],
]);

/** The slot of each key, and the keys grouped by slot with their places; null if one slot. */
function groupBySlot(keys) {
  const first = binding.keySlot(typeof keys[0] === 'number' ? String(keys[0]) : keys[0]);
  let groups = null;
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i];
    const slot = binding.keySlot(typeof k === 'number' ? String(k) : k);
    if (groups === null) {
      if (slot === first) continue;
      groups = new Map([[first, { keys: keys.slice(0, i), at: Array.from({ length: i }, (_, j) => j) }]]);
    }
    let g = groups.get(slot);
    if (g === undefined) {
      g = { keys: [], at: [] };
      groups.set(slot, g);
    }
    g.keys.push(k);
    g.at.push(i);
  }
  return groups;
}

/**
 * Sends multi-key command `verb` (its lower-case name in `lower`) over `keys` as one command
 * per hash slot through `send(keys)`, and merges the answers: MGET's values in the order of
 * `keys`, the counts of the others summed. With a soft-failing send (it resolves null on
 * failure) a failed group gives null values (MGET) or makes the whole answer null (counts).
 * Keys of one slot go as one command, exactly as without a cluster.
 */
function splitBySlot(lower, keys, send) {
  if (keys.length < 2) return send(keys);
  const groups = groupBySlot(keys);
  if (groups === null) return send(keys);
  const parts = [...groups.values()];
  return Promise.all(parts.map((g) => send(g.keys))).then((answers) => {
    if (SPLIT.get(lower) === 'values') {
      const out = new Array(keys.length).fill(null);
      answers.forEach((values, n) => {
        if (values === null) return;
        const at = parts[n].at;
        for (let i = 0; i < at.length; i++) out[at[i]] = values[i];
      });
      return out;
    }
    let sum = 0;
    for (const n of answers) {
      if (n === null) return null;
      sum += n;
    }
    return sum;
  });
}

/**
 * The createClient options for a cluster described as ioredis's `new Cluster(startupNodes,
 * options)` or node-redis's `createCluster({ rootNodes, defaults, … })` describe it: the
 * cluster's own settings go under `cluster`, the per-connection ones (ioredis's
 * redisOptions, node-redis's defaults) at the top level, where every node's connection takes
 * them. Anything else stays where it is, to be honoured or refused by name.
 */
function clusterClientOptions(nodes, options) {
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options, OPTION);
  const { redisOptions, defaults, maxCommandRedirections, ...rest } = options;
  const cluster = { nodes };
  for (const key of CLUSTER_KEYS) {
    if (rest[key] !== undefined && key !== 'nodes' && key !== 'rootNodes') {
      cluster[key] = rest[key];
      delete rest[key];
    }
  }
  // ioredis's other cluster options go with the cluster's, to be refused there with a hint.
  for (const key of Object.keys(FOREIGN_CLUSTER_OPTIONS)) {
    if (rest[key] !== undefined && key !== 'enableOfflineQueue') {
      cluster[key] = rest[key];
      delete rest[key];
    }
  }
  if (maxCommandRedirections !== undefined) cluster.maxRedirections = maxCommandRedirections;
  for (const [name, value] of [['redisOptions', redisOptions], ['defaults', defaults]]) {
    if (value !== undefined && (value === null || typeof value !== 'object')) {
      throw invalidParameterError(`option ${name}`, 'an object of connection options', value, OPTION);
    }
  }
  return { ...redisOptions, ...defaults, ...rest, cluster };
}

module.exports = { resolveCluster, splitBySlot, groupBySlot, clusterClientOptions, SPLIT };
