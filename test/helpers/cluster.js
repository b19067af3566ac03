'use strict';
// Redis Cluster and Redis Sentinel deployments for the suites that test hirecache's cluster
// routing and sentinel discovery: real redis-server processes on loopback ports, each in a
// temporary folder of its own (started with startRedis from ./redis-server), and the moves a
// test needs to make while a client under test keeps working: migrate a slot (whole or half-way,
// to see MOVED and ASK), kill a primary and wait for its replica to take over, restart a crashed
// node, fail a sentinel-monitored primary over.
//
//   const cluster = await startCluster();          // 3 primaries with 1 replica each
//   cluster.seeds                                   // '127.0.0.1:p1,127.0.0.1:p2,…' for the client
//   const from = await cluster.slotOwner(0);
//   await cluster.migrateSlot(0, otherPrimaryPort); // the client now gets MOVED for slot 0
//   const { newPrimaryPort, ms } = await cluster.failover(from);
//   await cluster.restart(from);                    // comes back as a replica (nodes.conf kept)
//   await cluster.stop();
//
//   const s = await startSentinels();              // 1 primary, 1 replica, 3 sentinels
//   s.sentinelAddrs, s.masterName                   // what the client is configured with
//   const { newPrimaryPort } = await s.failover();
//   await s.stop();
//
// Every wait polls every 50 ms and fails with an error that names the node and what it was
// waiting for. A deployment that fails to start stops what it had started before rethrowing,
// and any server still running when the test process exits is killed then.
const { execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { promisify } = require('util');
const { startRedis, freePort } = require('./redis-server');
const { rawPipeline } = require('./raw-redis');

const execFileP = promisify(execFile);
const REDIS_CLI = fs.existsSync('/usr/bin/redis-cli') ? '/usr/bin/redis-cli' : 'redis-cli';
const HOST = '127.0.0.1';
const SLOTS = 16384;
const POLL_MS = 50;
const DEFAULT_WAIT_MS = 20000;
// One probe of one node: long enough for a busy 2-core machine, short enough that a node that
// stopped answering does not stall a wait.
const PROBE_TIMEOUT_MS = 2000;
// A replica's first sync starts at once instead of after the default 5 s pause that lets more
// replicas join one diskless transfer: that pause would be most of the time a new cluster or a
// restarted node takes to settle. A node's own args come after these and can put it back.
const FAST_SYNC_ARGS = ['--repl-diskless-sync-delay', '0'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const addr = (port) => `${HOST}:${port}`;

// ---------------------------------------------------------------------------------------------
// Servers and folders made here, so that none outlives the test process when it exits without
// stopping them (process.exit() in a script that failed half-way): the servers are killed and the
// folders removed then. stop() and kill() take servers off the list; removeDir takes folders off.
const running = new Set();
const folders = new Set();
let exitHookSet = false;

function cleanUpAtExit() {
  for (const server of running) {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true });
}

function setExitHook() {
  if (exitHookSet) return;
  process.once('exit', cleanUpAtExit);
  exitHookSet = true;
}

/** Whether a server started here is still running: not stopped or killed, and its process there. */
function isRunning(server) {
  if (!running.has(server)) return false;
  try {
    process.kill(server.pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** startRedis, remembered in `running` until it is stopped or killed. */
async function launch(options) {
  setExitHook();
  const server = await startRedis(options);
  running.add(server);
  const { stop, kill } = server;
  server.stop = async (...a) => { await stop.apply(server, a); running.delete(server); };
  server.kill = async (...a) => { await kill.apply(server, a); running.delete(server); };
  return server;
}

/** A new temporary folder for one node. */
function makeDir(kind) {
  setExitHook();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hirecache-${kind}-`));
  folders.add(dir);
  return dir;
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  folders.delete(dir);
}

/** The last lines of a node's log, to quote in an error. */
function logTail(dir, lines = 15) {
  try {
    const log = fs.readFileSync(path.join(dir, 'redis.log'), 'utf8').trimEnd();
    if (log) return log.split('\n').slice(-lines).join('\n');
  } catch {
    // No log file.
  }
  return '(no log: redis-server reports a bad argument on its standard error, before it opens its log)';
}

/** A free port that is not in `used` (ports picked for other nodes of the same deployment). */
async function distinctFreePort(used) {
  for (;;) {
    const port = await freePort();
    if (!used.has(port)) {
      used.add(port);
      return port;
    }
  }
}

/** The value after --requirepass in a node's arguments, if any. */
function passwordFromArgs(args) {
  const i = args.indexOf('--requirepass');
  return i >= 0 ? String(args[i + 1]) : undefined;
}

/** Adds --masterauth so that replicas of a password-protected primary can sync. */
function withMasterAuth(args, password) {
  if (password === undefined || args.includes('--masterauth')) return args;
  return [...args, '--masterauth', password];
}

/**
 * Polls check() every 50 ms until it returns true. Any other value (a string saying what is
 * still missing) or a thrown error means "not yet"; the last one is quoted if time runs out.
 * Resolves with the milliseconds it took.
 */
async function waitFor(what, check, timeoutMs = DEFAULT_WAIT_MS) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const result = await check();
      if (result === true) return Date.now() - start;
      last = typeof result === 'string' ? result : 'condition still false';
    } catch (err) {
      last = err.message;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${last}`);
    }
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Talking to one node: RESP through ./raw-redis (binary-safe, so slot keys go through MIGRATE as
// they are) and the redis-cli binary for `--cluster create` and for tests that want its output.

function text(value) {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map(text);
  return value;
}

/**
 * Sends commands (arrays of arguments) to one node in one write; resolves with the raw replies
 * (bulk strings as Buffers). An error reply rejects, naming the node and the command.
 */
async function send(port, password, commands, timeoutMs = PROBE_TIMEOUT_MS) {
  let replies;
  try {
    replies = await rawPipeline({ port, host: HOST, password, timeoutMs }, commands);
  } catch (err) {
    throw new Error(`${addr(port)}: ${err.code || err.message}`, { cause: err });
  }
  replies.forEach((reply, i) => {
    if (reply && reply.error) {
      const name = commands[i].slice(0, 2).map(text).join(' ');
      const err = new Error(`${addr(port)} ${name}: ${reply.error}`);
      err.code = reply.error.split(' ')[0];
      throw err;
    }
  });
  return replies;
}

/** One command; resolves with its reply, bulk strings decoded as UTF-8. */
async function command(port, password, args, timeoutMs) {
  const [reply] = await send(port, password, [args], timeoutMs);
  return text(reply);
}

/** Runs redis-cli against one node; resolves with its trimmed standard output. */
async function cli(port, password, args) {
  const auth = password === undefined ? [] : ['-a', password, '--no-auth-warning'];
  const argv = ['-h', HOST, '-p', String(port), ...auth, ...args.map(String)];
  try {
    const { stdout } = await execFileP(REDIS_CLI, argv, { timeout: 60000, killSignal: 'SIGKILL' });
    return stdout.trim();
  } catch (err) {
    const output = err.stderr || err.stdout;
    throw new Error(`redis-cli ${argv.join(' ')} failed (${err.code || err.signal}): ${output}`, { cause: err });
  }
}

/** Parses INFO or CLUSTER INFO text into { field: value }. */
function parseInfo(body) {
  const out = {};
  for (const line of String(body).split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/**
 * Parses CLUSTER NODES: one row per node with { id, host, port, flags, masterId, slots,
 * myself, primary, replica, failed, suspected, handshake, noaddr }. slots is [[first, last], …];
 * the [slot->-id] and [slot-<-id] markers of a slot being migrated are left out.
 */
function parseClusterNodes(body) {
  return String(body).split('\n').filter((l) => l.trim()).map((line) => {
    const [id, address, flagField, master, , , , linkState, ...slotFields] = line.trim().split(' ');
    const hostPort = address.split(',')[0].split('@')[0];
    const colon = hostPort.lastIndexOf(':');
    const flags = flagField.split(',');
    const slots = [];
    for (const field of slotFields) {
      if (field.startsWith('[')) continue;
      const [first, last] = field.split('-').map(Number);
      slots.push([first, last === undefined ? first : last]);
    }
    return {
      id,
      host: hostPort.slice(0, colon),
      port: Number(hostPort.slice(colon + 1)),
      flags,
      masterId: master === '-' ? null : master,
      linkState,
      slots,
      myself: flags.includes('myself'),
      primary: flags.includes('master'),
      replica: flags.includes('slave'),
      failed: flags.includes('fail'),
      suspected: flags.includes('fail?'),
      handshake: flags.includes('handshake'),
      noaddr: flags.includes('noaddr'),
    };
  });
}

const slotCount = (ranges) => ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
const rangesText = (ranges) => ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
const ownsSlot = (ranges, slot) => ranges.some(([a, b]) => slot >= a && slot <= b);

// ---------------------------------------------------------------------------------------------
// Redis Cluster.

/**
 * Starts a Redis Cluster of primaries × (1 + replicasPerPrimary) nodes on loopback, slots spread
 * by `redis-cli --cluster create`, and resolves once every node reports cluster_state:ok with all
 * 16384 slots assigned and all nodes agree on which primaries serve them.
 * args: extra arguments for every node (with --requirepass, the helper authenticates and adds
 * --masterauth). timeoutMs: how long each wait may take (start, failover, restart, migration).
 */
async function startCluster({
  primaries = 3, replicasPerPrimary = 1, nodeTimeoutMs = 1000, args = [], timeoutMs = DEFAULT_WAIT_MS,
} = {}) {
  if (primaries < 3) throw new Error('startCluster: redis-cli --cluster create needs at least 3 primaries');
  const password = passwordFromArgs(args);
  const extraArgs = withMasterAuth(args.map(String), password);
  const clusterArgs = [
    '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-replica-validity-factor', '0',
    ...FAST_SYNC_ARGS,
  ];
  const total = primaries * (1 + replicasPerPrimary);
  const used = new Set();
  const nodes = [];

  // One node: a port and a cluster bus port picked here (the default bus port, port + 10000, may
  // be out of range or taken for an ephemeral port), tried again with other ports if the server
  // exits at start (a port taken in the meantime).
  async function startNode() {
    for (let attempt = 1; ; attempt++) {
      const port = await distinctFreePort(used);
      const busPort = await distinctFreePort(used);
      const dir = makeDir('cluster');
      const nodeArgs = [...clusterArgs, '--cluster-port', String(busPort), ...extraArgs];
      try {
        const server = await launch({ port, dir, args: nodeArgs });
        const node = { port, host: HOST, url: `redis://${HOST}:${port}`, server, dir, args: nodeArgs, id: null };
        nodes.push(node);
        return node;
      } catch (err) {
        const log = logTail(dir);
        removeDir(dir);
        if (attempt >= 3) {
          const message = `cluster node on ${addr(port)} did not start (arguments ${nodeArgs.join(' ')}): ` +
            `${err.message}\n${log}`;
          throw new Error(message, { cause: err });
        }
      }
    }
  }

  const byPort = (port) => {
    const node = nodes.find((n) => n.port === Number(port));
    if (!node) throw new Error(`no node of this cluster listens on ${addr(port)}`);
    return node;
  };
  const isLive = (node) => isRunning(node.server);
  const liveNodes = () => nodes.filter(isLive);
  const portOfId = (id, fallback) => (nodes.find((n) => n.id === id) || { port: fallback }).port;
  const run = (port, ...a) => command(Number(port), password, a);

  /** CLUSTER INFO, CLUSTER NODES and INFO replication of one node. */
  async function snapshot(port) {
    const [info, view, replication] = await send(port, password, [
      ['CLUSTER', 'INFO'], ['CLUSTER', 'NODES'], ['INFO', 'replication'],
    ]);
    return {
      port,
      info: parseInfo(text(info)),
      view: parseClusterNodes(text(view)),
      replication: parseInfo(text(replication)),
    };
  }

  /** The CLUSTER NODES rows of the first live node that answers. */
  async function anyView() {
    const errors = [];
    for (const node of liveNodes()) {
      try {
        return parseClusterNodes(await run(node.port, 'CLUSTER', 'NODES'));
      } catch (err) {
        errors.push(err.message);
      }
    }
    throw new Error(`no live cluster node answered CLUSTER NODES (${errors.join('; ') || 'none is running'})`);
  }

  /**
   * Whether the cluster is settled: every live node answers, reports cluster_state:ok with 16384
   * slots assigned and knows every node; none of them sees a live node as failed, suspected, in
   * handshake or without address; all of them agree on which primaries serve which slots (and,
   * with expectPrimaries, on how many there are); every live replica has its link to its primary
   * up. Resolves with true or with a sentence saying what is not so yet.
   */
  async function settled({ expectPrimaries, predicate } = {}) {
    const live = liveNodes();
    if (!live.length) return 'no node of the cluster is running';
    const snaps = await Promise.all(live.map((n) => snapshot(n.port)));
    const liveIds = new Set(live.map((n) => n.id));
    let reference = null;
    for (const s of snaps) {
      const who = addr(s.port);
      if (s.info.cluster_state !== 'ok') return `${who} reports cluster_state:${s.info.cluster_state}`;
      if (Number(s.info.cluster_slots_assigned) !== SLOTS) {
        return `${who} reports cluster_slots_assigned:${s.info.cluster_slots_assigned}`;
      }
      if (Number(s.info.cluster_known_nodes) !== nodes.length) {
        return `${who} knows ${s.info.cluster_known_nodes} nodes, not ${nodes.length}`;
      }
      for (const row of s.view) {
        if (liveIds.has(row.id) && (row.failed || row.suspected || row.handshake || row.noaddr)) {
          return `${who} sees ${addr(portOfId(row.id, row.port))} as ${row.flags.join(',')}`;
        }
      }
      const serving = s.view.filter((r) => r.primary && !r.failed && r.slots.length);
      const covered = serving.reduce((n, r) => n + slotCount(r.slots), 0);
      if (covered !== SLOTS) return `${who} sees ${covered} slots served by healthy primaries`;
      if (expectPrimaries !== undefined && serving.length !== expectPrimaries) {
        return `${who} sees ${serving.length} primaries serving slots, not ${expectPrimaries}`;
      }
      const signature = serving.map((r) => `${r.id}:${rangesText(r.slots)}`).sort().join(' ');
      if (!reference) reference = { signature, who };
      else if (signature !== reference.signature) return `${who} and ${reference.who} disagree on slot owners`;
      const me = s.view.find((r) => r.myself);
      if (me && me.replica && s.replication.master_link_status !== 'up') {
        return `${who} (replica of ${addr(portOfId(me.masterId))}) has master_link_status:` +
          `${s.replication.master_link_status}`;
      }
    }
    if (predicate) {
      const result = await predicate(snaps);
      if (result !== true) return typeof result === 'string' ? result : 'the predicate is still false';
    }
    return true;
  }

  async function waitForState(predicate, what = 'cluster_state:ok on all live nodes') {
    return waitFor(`${what} (cluster of ${liveNodes().map((n) => n.port).join(',')})`,
      () => settled({ predicate }), timeoutMs);
  }

  async function stop() {
    await Promise.all(nodes.map(async (node) => {
      await node.server.stop();
      removeDir(node.dir);
    }));
  }

  try {
    const results = await Promise.allSettled(Array.from({ length: total }, startNode));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    // In the order of their ports: `--cluster create` makes the first `primaries` of them primaries.
    nodes.sort((a, b) => a.port - b.port);
    for (const node of nodes) node.id = await run(node.port, 'CLUSTER', 'MYID');
    const createArgs = ['--cluster', 'create', ...nodes.map((n) => addr(n.port)),
      '--cluster-replicas', String(replicasPerPrimary), '--cluster-yes'];
    try {
      await cli(nodes[0].port, password, createArgs);
    } catch (err) {
      throw new Error(`redis-cli --cluster create failed: ${err.message}`, { cause: err });
    }
    await waitFor(`a settled cluster of ${total} nodes with ${primaries} primaries`,
      () => settled({ expectPrimaries: primaries }), timeoutMs);
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  const cluster = {
    nodes,
    seeds: nodes.map((n) => addr(n.port)).join(','),
    password,

    /** Runs redis-cli against a node; resolves with its trimmed output. */
    cli: (port, ...a) => cli(Number(port), password, a),
    /** Sends one command to a node over RESP; resolves with the reply (bulk strings as text). */
    command: run,
    /** The node object listening on port. */
    node: byPort,
    /** The nodes whose process is running. */
    liveNodes,

    /** The primaries serving slots, as one live node sees them: [{ port, id, slots, failed }]. */
    async primaries() {
      const view = await anyView();
      return view.filter((r) => r.primary && r.slots.length)
        .map((r) => ({ port: portOfId(r.id, r.port), id: r.id, slots: r.slots, failed: r.failed }))
        .sort((a, b) => a.port - b.port);
    },

    /** The ports of the replicas of a primary that are not flagged as failed. */
    async replicasOf(primaryPort) {
      const view = await anyView();
      const { id } = byPort(primaryPort);
      return view.filter((r) => r.replica && r.masterId === id && !r.failed)
        .map((r) => portOfId(r.id, r.port)).sort((a, b) => a - b);
    },

    /** The port of the primary serving slot, as one live node sees it. */
    async slotOwner(slot) {
      const view = await anyView();
      const row = view.find((r) => r.primary && !r.failed && ownsSlot(r.slots, Number(slot)));
      if (!row) throw new Error(`no healthy primary serves slot ${slot}`);
      return portOfId(row.id, row.port);
    },

    /** The slot of a key, as CLUSTER KEYSLOT computes it. */
    async keySlot(key) {
      return Number(await run(liveNodes()[0].port, 'CLUSTER', 'KEYSLOT', key));
    },

    /**
     * First half of a slot move: IMPORTING on the target, then MIGRATING on the source (its
     * current owner). Keys of the slot stay on the source until moveKeys moves them.
     */
    async setSlotMigrating(slot, toPort) {
      const srcPort = await cluster.slotOwner(slot);
      const dstPort = Number(toPort);
      if (srcPort === dstPort) throw new Error(`slot ${slot} is already served by ${addr(dstPort)}`);
      const srcId = byPort(srcPort).id;
      const dstId = byPort(dstPort).id;
      await run(dstPort, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId);
      await run(srcPort, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId);
      return { srcPort, dstPort, srcId, dstId };
    },

    /**
     * Moves up to `count` keys of slot from source to target with CLUSTER GETKEYSINSLOT and
     * MIGRATE … KEYS, keysPerBatch at a time (keys travel as bytes). With replace, a key already
     * on the target is overwritten instead of failing with BUSYKEY. Resolves with the number moved.
     */
    async moveKeys(slot, srcPort, dstPort, count = Infinity, { keysPerBatch = 100, replace = false } = {}) {
      let moved = 0;
      while (moved < count) {
        const n = Math.min(keysPerBatch, count - moved);
        const [keys] = await send(Number(srcPort), password, [['CLUSTER', 'GETKEYSINSLOT', slot, n]]);
        if (!keys.length) break;
        const migrate = ['MIGRATE', HOST, dstPort, '', 0, 5000, ...(replace ? ['REPLACE'] : []), 'KEYS', ...keys];
        await send(Number(srcPort), password, [migrate], 15000);
        moved += keys.length;
      }
      return moved;
    },

    /**
     * Last step of a slot move: CLUSTER SETSLOT slot NODE <target> on the target, then on the
     * source, then on every other live primary; resolves once every live node sees the target
     * as the slot's owner.
     */
    async finishSlot(slot, dstPort) {
      const target = byPort(dstPort);
      const before = parseClusterNodes(await run(target.port, 'CLUSTER', 'NODES'));
      const srcRow = before.find((r) => r.primary && ownsSlot(r.slots, Number(slot)));
      const srcPort = srcRow ? portOfId(srcRow.id, srcRow.port) : null;
      await run(target.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      if (srcPort && srcPort !== target.port) await run(srcPort, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      const others = (await cluster.primaries())
        .filter((p) => !p.failed && p.port !== target.port && p.port !== srcPort);
      for (const p of others) await run(p.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      await waitFor(`slot ${slot} served by ${addr(target.port)} in every live node's view`, async () => {
        for (const node of liveNodes()) {
          const view = parseClusterNodes(await run(node.port, 'CLUSTER', 'NODES'));
          const owner = view.find((r) => r.primary && ownsSlot(r.slots, Number(slot)));
          if (!owner || owner.id !== target.id) {
            const at = owner ? addr(portOfId(owner.id, owner.port)) : 'no node';
            return `${addr(node.port)} sees slot ${slot} at ${at}`;
          }
        }
        return true;
      }, timeoutMs);
    },

    /**
     * Moves one slot, with its keys, to the primary on toPort: setSlotMigrating, moveKeys until
     * the slot is empty, `await beforeFinish()` if given (the slot is then half-moved: the client
     * gets ASK for keys already moved), finishSlot. Resolves with { srcPort, dstPort, moved }.
     */
    async migrateSlot(slot, toPort, { keysPerBatch = 100, beforeFinish, replace = false } = {}) {
      const srcPort = await cluster.slotOwner(slot);
      if (srcPort === Number(toPort)) return { srcPort, dstPort: srcPort, moved: 0 };
      const { dstPort } = await cluster.setSlotMigrating(slot, toPort);
      const moved = await cluster.moveKeys(slot, srcPort, dstPort, Infinity, { keysPerBatch, replace });
      if (beforeFinish) await beforeFinish();
      await cluster.finishSlot(slot, dstPort);
      return { srcPort, dstPort, moved };
    },

    /** Kills a node (SIGKILL, as a crash would) without waiting for the cluster to react. */
    async kill(port) {
      await byPort(port).server.kill();
    },

    /**
     * Kills a primary and waits until one of its replicas serves its slots with cluster_state:ok,
     * then until every live node has settled. Resolves with { newPrimaryPort, ms, settledMs }:
     * ms from the kill to the promoted replica reporting itself primary of those slots with
     * cluster_state:ok, settledMs from the kill to every live node agreeing.
     */
    async failover(primaryPort) {
      const node = byPort(primaryPort);
      const view = await anyView();
      const row = view.find((r) => r.id === node.id);
      if (!row || !row.primary || !row.slots.length) {
        throw new Error(`${addr(node.port)} is not a primary serving slots`);
      }
      const candidates = nodes.filter((n) => isLive(n) && view.some((r) => r.id === n.id && r.masterId === node.id));
      if (!candidates.length) throw new Error(`${addr(node.port)} has no live replica to take over`);
      const slots = row.slots;
      const start = Date.now();
      await node.server.kill();
      let newPrimaryPort = null;
      const what = `a replica of ${addr(node.port)} (${candidates.map((n) => n.port).join(',')}) to serve slots ` +
        `${rangesText(slots)} with cluster_state:ok`;
      await waitFor(what, async () => {
        for (const candidate of candidates) {
          const s = await snapshot(candidate.port).catch(() => null);
          const me = s && s.view.find((r) => r.myself);
          const servesAll = me && slots.every(([a, b]) => ownsSlot(me.slots, a) && ownsSlot(me.slots, b));
          if (servesAll && me.primary && s.info.cluster_state === 'ok') {
            newPrimaryPort = candidate.port;
            return true;
          }
        }
        return 'no replica has taken over yet';
      }, timeoutMs);
      const ms = Date.now() - start;
      await waitForState(undefined, `every live node to settle after ${addr(newPrimaryPort)} took over`);
      return { newPrimaryPort, ms, settledMs: Date.now() - start };
    },

    /**
     * Starts a killed node again on its port, in its folder, with its arguments: it reads its
     * nodes.conf and rejoins (a former primary whose slots moved comes back as a replica).
     * Resolves once the cluster has settled with it.
     */
    async restart(port) {
      const node = byPort(port);
      if (isLive(node)) throw new Error(`${addr(node.port)} is still running: kill it first`);
      try {
        node.server = await launch({ port: node.port, dir: node.dir, args: node.args });
      } catch (err) {
        throw new Error(`${addr(node.port)} did not restart: ${err.message}\n${logTail(node.dir)}`, { cause: err });
      }
      await waitForState(undefined, `${addr(node.port)} to rejoin and the cluster to settle`);
    },

    /**
     * Waits for cluster_state:ok on every live node (and the rest of the settled state above);
     * predicate(snapshots), if given, must also resolve with true. Each snapshot is
     * { port, info, view, replication }. Resolves with the milliseconds it took.
     */
    waitForState,

    /** FLUSHALL on every live primary, then WAIT for its replicas to apply it. */
    async flushAll() {
      const primaryPorts = (await cluster.primaries()).filter((p) => !p.failed).map((p) => p.port);
      await Promise.all(primaryPorts.map(async (port) => {
        const replicas = await cluster.replicasOf(port);
        await send(port, password, [['FLUSHALL'], ['WAIT', replicas.length, 5000]], 10000);
      }));
    },

    /** Stops every node (SIGTERM) and removes their folders. */
    stop,
  };
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// Redis Sentinel.

/** SENTINEL REPLICAS / SENTINELS replies (flat field lists) as objects. */
function fieldLists(reply) {
  return (reply || []).map((fields) => {
    const out = {};
    for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]] = fields[i + 1];
    return out;
  });
}

/**
 * Starts a primary, `replicas` replicas of it and `sentinels` sentinels monitoring it as
 * masterName, and resolves once every replica's link is up and every sentinel reports the
 * primary, lists every replica and has discovered every other sentinel. quorum defaults to a
 * majority of the sentinels. args: extra arguments for the data nodes (with --requirepass the
 * helper adds --masterauth and `sentinel auth-pass`).
 */
async function startSentinels({
  replicas = 1, sentinels = 3, masterName = 'mymaster', downAfterMs = 1000, failoverTimeoutMs = 3000,
  quorum = Math.floor(sentinels / 2) + 1, args = [], timeoutMs = DEFAULT_WAIT_MS,
} = {}) {
  const password = passwordFromArgs(args);
  const dataArgs = [...FAST_SYNC_ARGS, ...withMasterAuth(args.map(String), password)];
  const nodes = [];
  const sentinelNodes = [];
  const state = { primary: null };
  const run = (port, ...a) => command(Number(port), password, a);
  const runSentinel = (port, ...a) => command(Number(port), undefined, a);
  const isLive = (node) => isRunning(node.server);
  const byPort = (port) => {
    const node = nodes.find((n) => n.port === Number(port));
    if (!node) throw new Error(`no data node of this deployment listens on ${addr(port)}`);
    return node;
  };
  const replicaArgs = (primaryPort) => ['--replicaof', HOST, String(primaryPort), ...dataArgs];

  async function startDataNode(port, nodeArgs) {
    const dir = makeDir('sentinel-data');
    try {
      const server = await launch({ port, dir, args: nodeArgs });
      const node = { port: server.port, host: HOST, url: server.url, server, dir };
      nodes.push(node);
      return node;
    } catch (err) {
      const log = logTail(dir);
      removeDir(dir);
      const message = `data node did not start (arguments ${nodeArgs.join(' ')}): ${err.message}\n${log}`;
      throw new Error(message, { cause: err });
    }
  }

  /** Whether the node on port replicates primaryPort with its link up. */
  async function replicating(port, primaryPort) {
    const info = parseInfo(await run(port, 'INFO', 'replication'));
    if (info.role !== 'slave' || Number(info.master_port) !== primaryPort) {
      return `${addr(port)} has role:${info.role} master_port:${info.master_port}`;
    }
    if (info.master_link_status !== 'up') return `${addr(port)} has master_link_status:${info.master_link_status}`;
    return true;
  }

  /** Whether one sentinel knows the primary, every live replica and every other live sentinel. */
  async function sentinelReady(sentinel, primaryPort, replicaPorts) {
    const who = `sentinel ${addr(sentinel.port)}`;
    const master = await runSentinel(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName);
    if (!master || Number(master[1]) !== primaryPort) return `${who} reports master ${master && master.join(':')}`;
    const known = fieldLists(await runSentinel(sentinel.port, 'SENTINEL', 'REPLICAS', masterName));
    for (const port of replicaPorts) {
      const r = known.find((k) => Number(k.port) === port);
      if (!r) return `${who} does not list replica ${addr(port)} yet`;
      if (/s_down|disconnected/.test(r.flags)) return `${who} sees replica ${addr(port)} as ${r.flags}`;
    }
    const peers = fieldLists(await runSentinel(sentinel.port, 'SENTINEL', 'SENTINELS', masterName));
    const others = sentinelNodes.filter((s) => s !== sentinel && isLive(s));
    for (const other of others) {
      const peer = peers.find((p) => Number(p.port) === other.port);
      if (!peer) return `${who} has not discovered sentinel ${addr(other.port)} yet`;
      if (/s_down|disconnected/.test(peer.flags)) return `${who} sees sentinel ${addr(other.port)} as ${peer.flags}`;
    }
    return true;
  }

  async function allSentinelsReady() {
    const primaryPort = state.primary.port;
    const replicaPorts = nodes.filter((n) => n !== state.primary && isLive(n)).map((n) => n.port);
    for (const sentinel of sentinelNodes.filter(isLive)) {
      const r = await sentinelReady(sentinel, primaryPort, replicaPorts);
      if (r !== true) return r;
    }
    return true;
  }

  async function stop() {
    await Promise.all(sentinelNodes.map((s) => s.server.stop()));
    await Promise.all(nodes.map((n) => n.server.stop()));
    for (const n of [...sentinelNodes, ...nodes]) removeDir(n.dir);
  }

  try {
    state.primary = await startDataNode(undefined, dataArgs);
    const primaryPort = state.primary.port;
    await Promise.all(Array.from({ length: replicas }, () => startDataNode(undefined, replicaArgs(primaryPort))));
    await waitFor(`every replica's link to ${addr(primaryPort)} to come up`, async () => {
      for (const n of nodes.filter((x) => x !== state.primary)) {
        const r = await replicating(n.port, primaryPort);
        if (r !== true) return r;
      }
      return true;
    }, timeoutMs);

    const used = new Set(nodes.map((n) => n.port));
    await Promise.all(Array.from({ length: sentinels }, async () => {
      const port = await distinctFreePort(used);
      const dir = makeDir('sentinel');
      const conf = path.join(dir, 'sentinel.conf');
      fs.writeFileSync(conf, [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        `sentinel monitor ${masterName} ${HOST} ${primaryPort} ${quorum}`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${masterName} 1`,
        ...(password === undefined ? [] : [`sentinel auth-pass ${masterName} ${password}`]),
        '',
      ].join('\n'));
      try {
        // The config file must come first on redis-server's command line; startRedis appends
        // --bind, --dir, --logfile and the rest after it, which a sentinel accepts too.
        const server = await launch({ port, dir, listenArgs: [conf, '--sentinel', '--port', String(port)] });
        sentinelNodes.push({ port, host: HOST, url: `redis://${HOST}:${port}`, server, dir });
      } catch (err) {
        const log = logTail(dir);
        removeDir(dir);
        throw new Error(`sentinel on ${addr(port)} did not start: ${err.message}\n${log}`, { cause: err });
      }
    }));
    sentinelNodes.sort((a, b) => a.port - b.port);
    await waitFor(`every sentinel to report ${masterName} at ${addr(primaryPort)} with its replicas and peers`,
      allSentinelsReady, timeoutMs);
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  /** Asks the live sentinels in turn for the master's port. */
  async function masterPort() {
    const errors = [];
    for (const s of sentinelNodes.filter(isLive)) {
      try {
        const reply = await runSentinel(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName);
        if (reply) return Number(reply[1]);
        errors.push(`${addr(s.port)} knows no ${masterName}`);
      } catch (err) {
        errors.push(err.message);
      }
    }
    throw new Error(`no sentinel reported ${masterName}: ${errors.join('; ')}`);
  }

  /** Whether every live data node other than the primary replicates it with its link up. */
  async function replicasFollow() {
    for (const n of nodes.filter((x) => x !== state.primary && isLive(x))) {
      const r = await replicating(n.port, state.primary.port);
      if (r !== true) return r;
    }
    return true;
  }

  const deployment = {
    /** The current primary's node (updated by failover). */
    get primary() { return state.primary; },
    /** The other data nodes, live or not. */
    get replicas() { return nodes.filter((n) => n !== state.primary); },
    /** Every data node: { port, host, url, server, dir }. */
    nodes,
    sentinels: sentinelNodes,
    masterName,
    sentinelAddrs: sentinelNodes.map((s) => addr(s.port)).join(','),
    password,

    /** Sends one command to a data node (with its password) or a sentinel, over RESP. */
    command: (port, ...a) => {
      const isSentinel = sentinelNodes.some((s) => s.port === Number(port));
      return isSentinel ? runSentinel(port, ...a) : run(port, ...a);
    },
    /** Runs redis-cli against a data node; resolves with its trimmed output. */
    cli: (port, ...a) => cli(Number(port), password, a),
    masterPort,

    /**
     * Kills the primary (kill: true, SIGKILL) or asks a sentinel for SENTINEL FAILOVER (kill:
     * false), then waits until a sentinel reports another master whose ROLE is master, and until
     * every live sentinel agrees. With waitReplicas, it also waits until the other live data nodes
     * (the old primary among them, after kill: false) replicate the new one. Resolves with
     * { newPrimaryPort, oldPrimaryPort, ms, settledMs }: ms from the kill (or the request) to the
     * first sentinel reporting a new master that says it is one, settledMs to the end of the wait.
     */
    async failover({ kill = true, waitReplicas = false } = {}) {
      const old = state.primary;
      const start = Date.now();
      if (kill) await old.server.kill();
      else await runSentinel(sentinelNodes.find(isLive).port, 'SENTINEL', 'FAILOVER', masterName);
      let newPrimaryPort = null;
      await waitFor(`a sentinel to report a master other than ${addr(old.port)} that says it is master`, async () => {
        const port = await masterPort();
        if (port === old.port) return `sentinels still report ${addr(old.port)}`;
        const [role] = await run(port, 'ROLE');
        if (role !== 'master') return `sentinels report ${addr(port)}, whose ROLE is still ${role}`;
        newPrimaryPort = port;
        return true;
      }, timeoutMs);
      const ms = Date.now() - start;
      state.primary = byPort(newPrimaryPort);
      await waitFor(`every sentinel to report ${masterName} at ${addr(newPrimaryPort)}`, async () => {
        for (const s of sentinelNodes.filter(isLive)) {
          const reply = await runSentinel(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName);
          if (!reply || Number(reply[1]) !== newPrimaryPort) {
            return `${addr(s.port)} reports ${reply && reply.join(':')}`;
          }
        }
        return true;
      }, timeoutMs);
      if (waitReplicas) await waitFor(`the replicas to follow ${addr(newPrimaryPort)}`, replicasFollow, timeoutMs);
      return { newPrimaryPort, oldPrimaryPort: old.port, ms, settledMs: Date.now() - start };
    },

    /**
     * Starts a killed data node again on its port, as a replica of the current primary, and
     * resolves once its link is up and every sentinel lists it as a healthy replica.
     */
    async restart(port) {
      const node = byPort(port);
      if (isLive(node)) throw new Error(`${addr(node.port)} is still running: kill it first`);
      const primaryPort = state.primary.port;
      try {
        node.server = await launch({ port: node.port, dir: node.dir, args: replicaArgs(primaryPort) });
      } catch (err) {
        throw new Error(`${addr(node.port)} did not restart: ${err.message}\n${logTail(node.dir)}`, { cause: err });
      }
      await waitFor(`${addr(node.port)} to replicate ${addr(primaryPort)}`, () => replicating(node.port, primaryPort),
        timeoutMs);
      await waitFor(`every sentinel to list ${addr(node.port)} as a healthy replica`, allSentinelsReady, timeoutMs);
    },

    /** Kills a data node or a sentinel (SIGKILL) without waiting for anything. */
    async kill(port) {
      const node = [...nodes, ...sentinelNodes].find((n) => n.port === Number(port));
      if (!node) throw new Error(`nothing of this deployment listens on ${addr(port)}`);
      await node.server.kill();
    },

    /** Waits until every live replica follows the current primary with its link up. */
    waitForReplicas: () => waitFor(`the replicas to follow ${addr(state.primary.port)}`, replicasFollow, timeoutMs),

    /** Stops the sentinels, then the data nodes (SIGTERM), and removes their folders. */
    stop,
  };
  return deployment;
}

module.exports = { startCluster, startSentinels, parseClusterNodes, parseInfo };
