'use strict';
// Collectors for an application's own prom-client Registry, without depending on prom-client:
// the registry is duck-typed. prom-client's Registry keeps metric objects by their `name`
// (registerMetric throws when another object holds the name), and at each scrape awaits
// each one's get(), which must return { name, help, type, values, aggregator }: values are
// { value, labels, metricName? } (metricName for a histogram's _bucket/_sum/_count series),
// and aggregator names how a cluster's AggregatorRegistry combines workers ('sum', 'max').
// resetMetrics() calls each metric's reset().
const { HirecacheError } = require('../errors');
const { buildFamilies, resolveExpositionOptions } = require('./exposition');
const { FAMILIES } = require('./families');
const { metricsSnapshot, checkClient } = require('./snapshot');
const { invalidParameterError } = require('../util/validate');

/**
 * Registers one collector per hirecache metric family into `registry` (a prom-client
 * Registry, or anything with registerMetric(metric)). The values are read from the client
 * when the registry is scraped; nothing is counted twice and nothing runs between scrapes.
 *   client   a RedisClient, null, or a function returning either (read at each scrape, so
 *            the process-wide getRedisClient can be passed before the client exists).
 *   options  { prefix = 'hirecache_', cache, limiters } as for prometheusText.
 * Returns a function that removes the collectors again. Throws HirecacheError
 * ERR_METRIC_EXISTS, registering nothing, when the registry already holds one of the names.
 */
function registerMetrics(registry, client, options = {}) {
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function') {
    throw invalidParameterError('registry', 'a prom-client Registry (an object with registerMetric())', registry, {
      where: 'registerMetrics',
    });
  }
  if (typeof client !== 'function') checkClient(client, 'registerMetrics');
  const { prefix, extras } = resolveExpositionOptions(options, 'registerMetrics');
  const currentClient = typeof client === 'function' ? client : () => client;

  // One snapshot per scrape: a registry asks every metric in the same synchronous run, so
  // the families built for the first are kept until the microtasks after it.
  let built = null;
  const familiesNow = () => {
    if (built === null) {
      const c = currentClient();
      checkClient(c, 'registerMetrics');
      built = new Map(buildFamilies(metricsSnapshot(c, extras)).map((b) => [b.family.name, b.samples]));
      queueMicrotask(() => {
        built = null;
      });
    }
    return built;
  };

  const metrics = FAMILIES.map((family) => {
    const name = prefix + family.name;
    return {
      name,
      help: family.help,
      type: family.type,
      aggregator: family.aggregator,
      labelNames: [],
      get() {
        const samples = familiesNow().get(family.name);
        return {
          name,
          help: family.help,
          type: family.type,
          aggregator: family.aggregator,
          values: samples.map((s) => {
            const value = { value: s.value, labels: s.labels === null ? {} : { ...s.labels } };
            if (s.suffix !== '') value.metricName = name + s.suffix;
            return value;
          }),
        };
      },
      // The counts live in the client core and are never reset: resetting would make a
      // counter go backwards for every other reader.
      reset() {},
    };
  });

  if (typeof registry.getSingleMetric === 'function') {
    const taken = metrics.find((m) => registry.getSingleMetric(m.name) !== undefined);
    if (taken) throw new HirecacheError(`registerMetrics: the registry already has a metric named ${taken.name}`, 'ERR_METRIC_EXISTS');
  }
  const registered = [];
  try {
    for (const m of metrics) {
      registry.registerMetric(m);
      registered.push(m);
    }
  } catch (err) {
    unregister(registry, registered);
    throw err;
  }
  return () => unregister(registry, registered.splice(0));
}

/** Removes `metrics` from the registry, each only if the registry still holds that very object. */
function unregister(registry, metrics) {
  if (typeof registry.removeSingleMetric !== 'function') return;
  for (const m of metrics) {
    const held = typeof registry.getSingleMetric === 'function' ? registry.getSingleMetric(m.name) : m;
    if (held === m) registry.removeSingleMetric(m.name);
  }
}

module.exports = { registerMetrics };
