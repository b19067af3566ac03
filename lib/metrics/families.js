'use strict';
// The metric families hirecache exposes, each built from a snapshot (snapshot.js): one list,
// read by the text exposition (exposition.js) and by the prom-client collectors
// (prom-client.js), so a name, a help text or a label is defined once.
//
// A family is { name (without the prefix), help, type, aggregator, samples(snapshot) }, and
// samples() returns [{ suffix, labels, value }]: suffix '' for counters and gauges,
// '_bucket' / '_sum' / '_count' for a histogram's series. Latencies are in seconds, as
// Prometheus's conventions want; the core counts them in milliseconds.

// The breaker's states as a gauge: 0 closed (Redis used), 1 half-open (a probe decides),
// 2 open (calls fail fast or go to fallbacks).
const BREAKER_GAUGE = { closed: 0, 'half-open': 1, open: 2 };

const OUTCOMES = ['hit', 'miss', 'ok', 'error', 'timeout', 'unknown', 'refused'];

/** Milliseconds as seconds, without the float noise of a plain division (0.1 ms → 0.0001). */
const seconds = (ms) => Number((ms / 1000).toPrecision(12));

const one = (value) => [{ suffix: '', labels: null, value }];
const ifRedis = (s, value) => (s.redis ? one(value) : []);

function commandSamples(s) {
  if (!s.metricsEnabled) return [];
  const out = [];
  for (const [command, counts] of Object.entries(s.commands)) {
    for (const outcome of OUTCOMES) out.push({ suffix: '', labels: { command, outcome }, value: counts[outcome] || 0 });
  }
  return out;
}

/** Cumulative buckets (the core counts each bucket apart), then _sum and _count, per command. */
function latencySamples(s) {
  if (!s.metricsEnabled) return [];
  const bounds = s.latency.bucketsMs.map(seconds);
  const out = [];
  for (const [command, h] of Object.entries(s.latency.byCommand)) {
    let cumulative = 0;
    for (let i = 0; i < bounds.length; i++) {
      cumulative += h.counts[i] || 0;
      out.push({ suffix: '_bucket', labels: { command, le: String(bounds[i]) }, value: cumulative });
    }
    // The last bucket counts everything slower than the last bound: with it, +Inf is the
    // total, which must equal _count.
    cumulative += h.counts[bounds.length] || 0;
    out.push({ suffix: '_bucket', labels: { command, le: '+Inf' }, value: cumulative });
    out.push({ suffix: '_sum', labels: { command }, value: seconds(h.sumMs) });
    out.push({ suffix: '_count', labels: { command }, value: h.count });
  }
  return out;
}

const fallbackValue = (field) => (s) => (s.fallback ? one(s.fallback[field]) : []);
const lostValue = (field) => (s) => (s.lostInvalidations ? one(s.lostInvalidations[field]) : []);

function decisionSamples(s) {
  const out = [];
  for (const [limiter, decisions] of Object.entries(s.limiters)) {
    for (const [decision, value] of Object.entries(decisions)) {
      out.push({ suffix: '', labels: { limiter, decision: snakeCase(decision) }, value });
    }
  }
  return out;
}

/** unknownCharged → unknown_charged: label values in the style of the rest. */
const snakeCase = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const FAMILIES = [
  {
    name: 'commands_total',
    help: 'Redis commands by command and outcome (hit, miss, ok, error, timeout, unknown, refused), counted in the client core.',
    type: 'counter',
    aggregator: 'sum',
    samples: commandSamples,
  },
  {
    name: 'command_duration_seconds',
    help: 'Time from a command being issued to its reply, by command.',
    type: 'histogram',
    aggregator: 'sum',
    samples: latencySamples,
  },
  {
    name: 'in_flight',
    help: 'Commands written to Redis and not yet answered.',
    type: 'gauge',
    aggregator: 'sum',
    samples: (s) => ifRedis(s, s.inFlight),
  },
  {
    name: 'queued',
    help: 'Commands waiting to be written (no connection yet, or a bound reached).',
    type: 'gauge',
    aggregator: 'sum',
    samples: (s) => ifRedis(s, s.queued),
  },
  {
    name: 'connections_opened_total',
    help: 'TCP connections to Redis the client opened.',
    type: 'counter',
    aggregator: 'sum',
    samples: (s) => ifRedis(s, s.connectionsOpened),
  },
  {
    name: 'reconnect_attempts',
    help: 'Failed connection attempts since the last successful one (0 while connected).',
    type: 'gauge',
    aggregator: 'max',
    samples: (s) => ifRedis(s, s.reconnectAttempts),
  },
  {
    name: 'breaker_state',
    help: 'The circuit breaker: 0 closed (Redis used), 1 half-open (a probe decides), 2 open (calls fail fast or use fallbacks).',
    type: 'gauge',
    aggregator: 'max',
    samples: (s) => ifRedis(s, BREAKER_GAUGE[s.breakerState] ?? 0),
  },
  {
    name: 'breaker_opened_total',
    help: 'Times the circuit breaker opened.',
    type: 'counter',
    aggregator: 'sum',
    samples: (s) => ifRedis(s, s.breakerOpened),
  },
  {
    name: 'breaker_closed_total',
    help: 'Times the circuit breaker closed again.',
    type: 'counter',
    aggregator: 'sum',
    samples: (s) => ifRedis(s, s.breakerClosed),
  },
  {
    name: 'node_up',
    help: 'Each Redis node the client talks to (a cluster\'s nodes, or the primary Sentinel named): 1 when its connection is ready and its breaker closed, 0 otherwise.',
    type: 'gauge',
    aggregator: 'min',
    samples: (s) => s.nodes.map((n) => ({ suffix: '', labels: { node: n.node, role: n.role }, value: n.state === 'ready' && n.breakerState === 'closed' ? 1 : 0 })),
  },
  {
    name: 'node_breaker_state',
    help: 'Each node\'s circuit breaker: 0 closed, 1 half-open, 2 open.',
    type: 'gauge',
    aggregator: 'max',
    samples: (s) => s.nodes.map((n) => ({ suffix: '', labels: { node: n.node, role: n.role }, value: BREAKER_GAUGE[n.breakerState] ?? 0 })),
  },
  {
    name: 'node_in_flight',
    help: 'Commands written to each node and not yet answered.',
    type: 'gauge',
    aggregator: 'sum',
    samples: (s) => s.nodes.map((n) => ({ suffix: '', labels: { node: n.node, role: n.role }, value: n.inFlight })),
  },
  {
    name: 'fallback_active',
    help: 'Whether the cache serves from its in-memory fallback store (1) or from Redis (0).',
    type: 'gauge',
    aggregator: 'max',
    samples: (s) => (s.fallback ? one(s.fallback.active ? 1 : 0) : []),
  },
  {
    name: 'fallback_entries',
    help: 'Entries in the cache fallback store.',
    type: 'gauge',
    aggregator: 'sum',
    samples: fallbackValue('entries'),
  },
  {
    name: 'fallback_bytes',
    help: 'Bytes of memory held by the cache fallback store.',
    type: 'gauge',
    aggregator: 'sum',
    samples: fallbackValue('bytes'),
  },
  {
    name: 'fallback_reads_total',
    help: 'Cache reads served by the fallback store.',
    type: 'counter',
    aggregator: 'sum',
    samples: fallbackValue('reads'),
  },
  {
    name: 'fallback_hits_total',
    help: 'Cache reads served by the fallback store that found a value.',
    type: 'counter',
    aggregator: 'sum',
    samples: fallbackValue('hits'),
  },
  {
    name: 'fallback_writes_total',
    help: 'Values written to the fallback store (never written back to Redis).',
    type: 'counter',
    aggregator: 'sum',
    samples: fallbackValue('writes'),
  },
  {
    name: 'fallback_activations_total',
    help: 'Outages the cache fallback store served.',
    type: 'counter',
    aggregator: 'sum',
    samples: fallbackValue('activations'),
  },
  {
    name: 'lost_invalidations_total',
    help: 'Cache deletions Redis did not see (made while it was unavailable).',
    type: 'counter',
    aggregator: 'sum',
    samples: lostValue('count'),
  },
  {
    name: 'lost_invalidations_pending',
    help: 'Cache deletions waiting to be re-issued to Redis.',
    type: 'gauge',
    aggregator: 'sum',
    samples: lostValue('pending'),
  },
  {
    name: 'ratelimit_decisions_total',
    help: 'Rate limiter decisions by limiter, as the limiter counts them: allowed and refused cover every decision; local and fallback count the ones made in this process.',
    type: 'counter',
    aggregator: 'sum',
    samples: decisionSamples,
  },
];

module.exports = { FAMILIES, BREAKER_GAUGE, OUTCOMES };
