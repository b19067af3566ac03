'use strict';
// prometheusText against a real redis-server: the text passes a strict reader of the
// exposition format (test/metrics/exposition-parser.js, which is itself shown to refuse
// broken texts), says what the snapshot says (counters, cumulative buckets consistent with
// _count, latency in seconds), reports the breaker and in-flight gauges while Redis stalls,
// escapes label values, and takes a prefix.
const { prometheusText, metricsSnapshot, PROMETHEUS_CONTENT_TYPE } = require('../../lib/metrics');
const { clientSuite } = require('../helpers/client-suite');
const { waitFor, outcome } = require('../helpers/async');
const { parseExposition, sampleValue } = require('./exposition-parser');

// The breaker is off unless a test is about it: on a busy machine a starved redis-server
// could open it and turn a counted hit into a refusal.
const suite = clientSuite({ proxy: true, defaults: { logger: false, breaker: false } });
const open = suite.open;
let db;
let proxy;
beforeAll(() => {
  ({ db, proxy } = suite);
});

test('the text parses strictly and says what the snapshot says', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 150, breaker: false });
  await client.set('a', '1');
  for (let i = 0; i < 20; i++) await client.get(i % 4 === 0 ? 'nope' : 'a');
  await client.mget(['a', 'nope']);
  await client.call('HSET', 'h', 'f', 'v');
  await outcome(client.get('h'));
  proxy.hold('toClient');
  expect((await outcome(client.get('a'))).error.code).toBe('ETIMEDOUT');
  proxy.release();
  await client.call('PING');

  const text = prometheusText(client);
  const snapshot = metricsSnapshot(client);
  const families = parseExposition(text);

  expect(families.get('hirecache_commands_total').type).toBe('counter');
  expect(families.get('hirecache_command_duration_seconds').type).toBe('histogram');
  expect(families.get('hirecache_in_flight').type).toBe('gauge');
  for (const f of families.values()) expect(f.help).toMatch(/\S/);
  for (const [outcomeName, value] of Object.entries(snapshot.commands.get)) {
    expect(sampleValue(families, 'hirecache_commands_total', { command: 'get', outcome: outcomeName })).toBe(value);
  }
  expect(sampleValue(families, 'hirecache_commands_total', { command: 'get', outcome: 'hit' })).toBe(15);
  expect(sampleValue(families, 'hirecache_commands_total', { command: 'get', outcome: 'miss' })).toBe(5);
  expect(sampleValue(families, 'hirecache_commands_total', { command: 'get', outcome: 'timeout' })).toBe(1);
  expect(sampleValue(families, 'hirecache_commands_total', { command: 'mget', outcome: 'hit' })).toBe(1);

  // Buckets: the core's per-bucket counts, summed up to each bound; +Inf and _count are the
  // replies counted; _sum is in seconds.
  for (const [command, h] of Object.entries(snapshot.latency.byCommand)) {
    let cumulative = 0;
    snapshot.latency.bucketsMs.forEach((ms, i) => {
      cumulative += h.counts[i];
      const le = String(Number((ms / 1000).toPrecision(12)));
      expect(sampleValue(families, 'hirecache_command_duration_seconds_bucket', { command, le })).toBe(cumulative);
    });
    expect(sampleValue(families, 'hirecache_command_duration_seconds_bucket', { command, le: '+Inf' })).toBe(h.count);
    expect(sampleValue(families, 'hirecache_command_duration_seconds_count', { command })).toBe(h.count);
    expect(sampleValue(families, 'hirecache_command_duration_seconds_sum', { command })).toBeCloseTo(h.sumMs / 1000, 9);
  }
  expect(sampleValue(families, 'hirecache_command_duration_seconds_count', { command: 'get' })).toBe(21);
  expect(sampleValue(families, 'hirecache_command_duration_seconds_bucket', { command: 'get', le: '0.0001' })).toBeDefined();
  expect(sampleValue(families, 'hirecache_command_duration_seconds_bucket', { command: 'get', le: '1' })).toBeDefined();
  expect(sampleValue(families, 'hirecache_connections_opened_total')).toBe(1);
  expect(sampleValue(families, 'hirecache_breaker_state')).toBe(0);
  expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
});

// A small valid text, and what each rule of the format looks like broken.
const VALID = [
  '# HELP x_total A counter.',
  '# TYPE x_total counter',
  'x_total{a="1"} 3',
  '# HELP h A histogram.',
  '# TYPE h histogram',
  'h_bucket{le="0.1"} 1',
  'h_bucket{le="+Inf"} 2',
  'h_sum 0.3',
  'h_count 2',
  '',
].join('\n');
const BROKEN = {
  'no final newline': VALID.slice(0, -1),
  'buckets not cumulative': VALID.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 0').replace('h_count 2', 'h_count 0'),
  'a +Inf bucket that differs from _count': VALID.replace('h_count 2', 'h_count 3'),
  'no +Inf bucket': VALID.replace('h_bucket{le="+Inf"} 2\n', ''),
  'an unknown escape in a label value': VALID.replace('a="1"', 'a="\\t"'),
  'a series twice': VALID.replace('x_total{a="1"} 3', 'x_total{a="1"} 3\nx_total{a="1"} 4'),
  'a TYPE after its samples': VALID.replace('x_total{a="1"} 3', 'x_total{a="1"} 3\n# TYPE x_total counter'),
  'a family split in two': `${VALID}x_total{a="2"} 1\n`,
  'a value that is not a number': VALID.replace('x_total{a="1"} 3', 'x_total{a="1"} three'),
  'a negative counter': VALID.replace('x_total{a="1"} 3', 'x_total{a="1"} -3'),
  'a bad label name': VALID.replace('a="1"', '1a="1"'),
  'an unquoted label value': VALID.replace('a="1"', 'a=1'),
  'an unknown type': VALID.replace('# TYPE x_total counter', '# TYPE x_total countr'),
};

test('the strict reader accepts a valid text', () => {
  expect(sampleValue(parseExposition(VALID), 'h_count')).toBe(2);
});

test.each(Object.entries(BROKEN))('the strict reader refuses %s', (what, text) => {
  expect(() => parseExposition(text)).toThrow();
});

test('while Redis stalls: breaker_state 2 and the written command in flight; then 0 and 0', async () => {
  const client = open({ url: `${proxy.url}/${db.db}`, commandTimeout: 5000, breaker: { stallMs: 30 } });
  await client.set('k', 'v');
  // Counted from here: on a busy machine a starved server may have opened it once already.
  const base = metricsSnapshot(client);
  proxy.hold('toClient');
  const waiting = client.get('k');
  await waitFor(() => client.breakerState === 'open', { what: 'the breaker to open' });
  let f = parseExposition(prometheusText(client));
  expect(sampleValue(f, 'hirecache_breaker_state')).toBe(2);
  expect(sampleValue(f, 'hirecache_in_flight')).toBe(1);
  expect(sampleValue(f, 'hirecache_breaker_opened_total')).toBe(base.breakerOpened + 1);
  proxy.release();
  await waiting;
  await waitFor(() => client.breakerState === 'closed', { what: 'the breaker to close' });
  f = parseExposition(prometheusText(client));
  expect(sampleValue(f, 'hirecache_breaker_state')).toBe(0);
  expect(sampleValue(f, 'hirecache_in_flight')).toBe(0);
  expect(sampleValue(f, 'hirecache_breaker_closed_total')).toBe(base.breakerClosed + 1);
});

test('label values are escaped and read back unchanged; components get their families', () => {
  const name = 'rl:"quoted"\\back\nline';
  const limiter = { status: () => ({ decisions: { allowed: 4, refused: 1, unknownCharged: 2 } }) };
  const cache = {
    cacheStats: () => ({
      fallback: { active: true, entries: 3, bytes: 300, reads: 5, hits: 2, writes: 3, activations: 1 },
      lostInvalidations: { count: 1, pending: 1, unrecorded: 0, reissued: 0 },
    }),
  };
  const text = prometheusText(null, { limiters: { [name]: limiter }, cache });
  const f = parseExposition(text);
  expect(sampleValue(f, 'hirecache_ratelimit_decisions_total', { limiter: name, decision: 'allowed' })).toBe(4);
  expect(sampleValue(f, 'hirecache_ratelimit_decisions_total', { limiter: name, decision: 'unknown_charged' })).toBe(2);
  expect(sampleValue(f, 'hirecache_fallback_active')).toBe(1);
  expect(sampleValue(f, 'hirecache_fallback_entries')).toBe(3);
  expect(sampleValue(f, 'hirecache_fallback_bytes')).toBe(300);
  expect(sampleValue(f, 'hirecache_fallback_hits_total')).toBe(2);
  expect(sampleValue(f, 'hirecache_lost_invalidations_total')).toBe(1);
  // No client: no client families at all, rather than zeros that would read as "idle".
  expect(f.has('hirecache_commands_total')).toBe(false);
  expect(f.has('hirecache_breaker_state')).toBe(false);
});

test('a prefix renames every family; metrics: false leaves the per-command families out; options are checked', async () => {
  const client = open({ url: db.url, metrics: false });
  await client.get('x');
  const f = parseExposition(prometheusText(client, { prefix: 'api_redis_' }));
  const names = [...f.keys()];
  expect(names.length).toBeGreaterThan(5);
  expect(names.every((n) => n.startsWith('api_redis_'))).toBe(true);
  expect(f.has('api_redis_commands_total')).toBe(false);
  expect(f.has('api_redis_command_duration_seconds')).toBe(false);
  expect(sampleValue(f, 'api_redis_connections_opened_total')).toBe(1);
  expect(() => prometheusText(client, { prefix: '9lives_' })).toThrow(/option prefix must be a metric name prefix/);
  expect(() => prometheusText(client, { prefix: 7 })).toThrow(TypeError);
  expect(() => prometheusText(client, { prefx: 'a_' })).toThrow(/unknown option prefx/);
  expect(parseExposition(prometheusText(client, { prefix: '' })).has('connections_opened_total')).toBe(true);
});
