// Uses hirecache's metrics API as an application would; only type-checked (tsc --noEmit, by
// test/metrics/metrics.types.test.js), never run. The lines under `@ts-expect-error` are
// misuses the declarations must reject.
import { createClient, getRedisClient } from '../../../lib/redis';
import { metricsSnapshot, prometheusText, registerMetrics, metricsHandler, PROMETHEUS_CONTENT_TYPE } from '../../../lib/metrics';
import type { MetricsSnapshot, PromClientRegistryLike, ClientMetrics } from '../../../lib/metrics';
import { createServer } from 'http';

export function wire(registry: PromClientRegistryLike): void {
  const client = createClient({ metrics: true });
  const native: ClientMetrics = client.metrics();
  const hits: number = native.commands.get.hit + native.latency.byCommand.mget.count;
  void hits;
  const snap: MetricsSnapshot = metricsSnapshot(client, {
    limiters: { login: { status: () => ({}) } },
  });
  const rate: number | null = snap.hitRate;
  const state: 'closed' | 'open' | 'half-open' = snap.breakerState;
  void [rate, state];
  const text: string = prometheusText(null, { prefix: 'api_' });
  const stop: () => void = registerMetrics(registry, getRedisClient);
  stop();
  createServer(metricsHandler(null, { prefix: 'api_' })).listen(0);
  createServer(metricsHandler()).listen(0);
  const processWide: number | null = metricsSnapshot().hitRate;
  void processWide;
  const type: string = PROMETHEUS_CONTENT_TYPE;
  void [text, type];
  // @ts-expect-error the prefix is a string
  prometheusText(null, { prefix: 1 });
  // @ts-expect-error a registry needs registerMetric
  registerMetrics({}, null);
  // @ts-expect-error metrics is a boolean
  createClient({ metrics: 'yes' });
  // @ts-expect-error hitRate may be null
  const sure: number = snap.hitRate;
  void sure;
}
