'use strict';
// registerMetrics with a registry that behaves as prom-client's Registry does (prom-client
// itself is not a dependency): metrics kept by name, a second object under a taken name
// refused, each metric's get() awaited at every scrape and rendered from { name, help,
// type, values: [{ value, labels, metricName }] }, default labels added to every series,
// resetMetrics() calling reset(), and a cluster aggregator combining workers by each
// metric's `aggregator`. What it renders must pass the strict reader and agree with
// prometheusText.
const { createClient } = require('../../lib/redis');
const { registerMetrics, prometheusText } = require('../../lib/metrics');
const { suiteDatabase } = require('../helpers/suite-db');
const { parseExposition, sampleValue } = require('./exposition-parser');

/** The documented interface of prom-client's Registry, and nothing more. */
class FakeRegistry {
  constructor() {
    this.byName = new Map();
    this.defaultLabels = {};
    this.gets = 0;
  }

  registerMetric(metric) {
    const held = this.byName.get(metric.name);
    if (held && held !== metric) throw new Error(`A metric with the name ${metric.name} has already been registered.`);
    this.byName.set(metric.name, metric);
  }

  getSingleMetric(name) {
    return this.byName.get(name);
  }

  removeSingleMetric(name) {
    this.byName.delete(name);
  }

  setDefaultLabels(labels) {
    this.defaultLabels = labels;
  }

  resetMetrics() {
    for (const m of this.byName.values()) m.reset();
  }

  get contentType() {
    return 'text/plain; version=0.0.4; charset=utf-8';
  }

  async getMetricsAsJSON() {
    return Promise.all([...this.byName.values()].map((m) => this.read(m)));
  }

  async read(metric) {
    this.gets += 1;
    const item = await metric.get();
    for (const v of item.values) v.labels = { ...v.labels, ...this.defaultLabels };
    return item;
  }

  async metrics() {
    const escapeLabel = (s) => String(s).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
    const items = await this.getMetricsAsJSON();
    const parts = items.map((item) => {
      let out = `# HELP ${item.name} ${item.help}\n# TYPE ${item.name} ${item.type}\n`;
      for (const v of item.values) {
        const labels = Object.entries(v.labels).map(([k, l]) => `${k}="${escapeLabel(l)}"`);
        const value = v.value === Infinity ? '+Inf' : String(v.value);
        out += `${v.metricName || item.name}${labels.length ? `{${labels.join(',')}}` : ''} ${value}\n`;
      }
      return out.trim();
    });
    return `${parts.join('\n\n')}\n`;
  }
}

/** Combines the JSON of several workers as prom-client's AggregatorRegistry does. */
function aggregate(workers) {
  const byName = new Map();
  for (const items of workers) {
    for (const item of items) {
      if (!byName.has(item.name)) byName.set(item.name, []);
      byName.get(item.name).push(item);
    }
  }
  const combine = { sum: (vs) => vs.reduce((a, b) => a + b, 0), max: (vs) => Math.max(...vs), min: (vs) => Math.min(...vs) };
  const out = new Map();
  for (const [name, items] of byName) {
    const fn = combine[items[0].aggregator];
    if (!fn) throw new Error(`${name}: aggregator ${items[0].aggregator} is not one of prom-client's`);
    const series = new Map();
    for (const item of items) {
      for (const v of item.values) {
        const key = `${v.metricName || name}${JSON.stringify(v.labels)}`;
        if (!series.has(key)) series.set(key, []);
        series.get(key).push(v.value);
      }
    }
    out.set(name, new Map([...series].map(([k, vs]) => [k, fn(vs)])));
  }
  return out;
}

let db;
const clients = [];

// The breaker is off unless a test is about it: on a busy machine a starved redis-server
// could open it and turn a counted hit into a refusal.
function open(options) {
  const client = createClient({ logger: false, breaker: false, ...options });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  db = await suiteDatabase();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

test('the registry renders valid text that agrees with prometheusText, scrape after scrape', async () => {
  const client = open({ url: db.url });
  const registry = new FakeRegistry();
  registerMetrics(registry, client);
  await client.set('a', '1');
  await client.get('a');
  await client.get('nope');

  let text = await registry.metrics();
  let f = parseExposition(text);
  const direct = parseExposition(prometheusText(client));
  // Same families and the same values (the registry renders empty families too).
  for (const [name, family] of direct) {
    expect(f.get(name).type).toBe(family.type);
    for (const s of family.samples) expect(sampleValue(f, s.name, s.labels)).toBe(s.value);
  }
  expect(sampleValue(f, 'hirecache_commands_total', { command: 'get', outcome: 'hit' })).toBe(1);

  // Read at each scrape: the next one sees the new commands.
  await client.get('a');
  text = await registry.metrics();
  f = parseExposition(text);
  expect(sampleValue(f, 'hirecache_commands_total', { command: 'get', outcome: 'hit' })).toBe(2);
  expect(sampleValue(f, 'hirecache_command_duration_seconds_count', { command: 'get' })).toBe(3);
});

test('get() returns the shape prom-client reads: metricName for histogram series, an aggregator prom-client knows', async () => {
  const client = open({ url: db.url });
  const registry = new FakeRegistry();
  registerMetrics(registry, client, { prefix: 'app_' });
  await client.get('x');
  const items = await registry.getMetricsAsJSON();
  for (const item of items) {
    expect(Object.keys(item).sort()).toEqual(['aggregator', 'help', 'name', 'type', 'values']);
    expect(item.name.startsWith('app_')).toBe(true);
    expect(['counter', 'gauge', 'histogram']).toContain(item.type);
    expect(['sum', 'max', 'min']).toContain(item.aggregator);
    for (const v of item.values) {
      expect(typeof v.value).toBe('number');
      if (item.type === 'histogram') expect(v.metricName).toMatch(/^app_command_duration_seconds_(bucket|sum|count)$/);
      else expect(v.metricName).toBeUndefined();
    }
  }
  const hist = items.find((i) => i.name === 'app_command_duration_seconds');
  const inf = hist.values.find((v) => v.labels.command === 'get' && v.labels.le === '+Inf');
  expect(inf.value).toBe(1);

  // Two workers combined as prom-client's cluster registry would: counters summed.
  const merged = aggregate([items, items]);
  expect(merged.get('app_commands_total').get('app_commands_total{"command":"get","outcome":"miss"}')).toBe(2);
  expect(merged.get('app_breaker_state').get('app_breaker_state{}')).toBe(0);
});

test('one snapshot per scrape, default labels, resetMetrics, and unregistering', async () => {
  const client = open({ url: db.url });
  let reads = 0;
  const counting = new Proxy(client, {
    get(target, prop) {
      if (prop === 'metrics') {
        return () => {
          reads += 1;
          return target.metrics();
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const registry = new FakeRegistry();
  registry.setDefaultLabels({ service: 'api' });
  const unregister = registerMetrics(registry, counting);
  const f = parseExposition(await registry.metrics());
  expect(registry.gets).toBeGreaterThan(10);
  expect(reads).toBe(1);
  expect(sampleValue(f, 'hirecache_breaker_state', { service: 'api' })).toBe(0);
  await registry.metrics();
  expect(reads).toBe(2);

  expect(() => registry.resetMetrics()).not.toThrow();
  const names = [...registry.byName.keys()];
  expect(names.length).toBeGreaterThan(10);
  unregister();
  expect(registry.byName.size).toBe(0);
  unregister(); // twice is harmless
});

test('a taken name refuses the whole registration; a lazy client is read at each scrape; bad arguments are refused', async () => {
  const client = open({ url: db.url });
  const registry = new FakeRegistry();
  const mine = { name: 'hirecache_queued', get: () => ({}), reset() {} };
  registry.registerMetric(mine);
  expect(() => registerMetrics(registry, client)).toThrow(expect.objectContaining({ code: 'ERR_METRIC_EXISTS' }));
  expect([...registry.byName.values()]).toEqual([mine]);

  // A function is read at each scrape: the client may not exist yet when metrics are wired.
  let current = null;
  const other = new FakeRegistry();
  registerMetrics(other, () => current);
  let f = parseExposition(await other.metrics());
  expect(sampleValue(f, 'hirecache_breaker_state')).toBeUndefined();
  current = client;
  await client.get('x');
  f = parseExposition(await other.metrics());
  expect(sampleValue(f, 'hirecache_commands_total', { command: 'get', outcome: 'miss' })).toBe(1);

  expect(() => registerMetrics({}, client)).toThrow(/registerMetrics: registry must be a prom-client Registry/);
  expect(() => registerMetrics(new FakeRegistry(), { metrics: 1 })).toThrow(/client must be a RedisClient/);
  expect(() => registerMetrics(new FakeRegistry(), client, { prefix: 'bad-prefix' })).toThrow(/option prefix/);
});
