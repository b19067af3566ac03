// The limiter's middleware and the health and metrics handlers on a plain http server,
// type-checked by test/types/resolution.modes.test.js under every resolution mode, with and
// without @types/express installed: the middleware's callbacks get Node's request and
// response (Express's when its types are there), never `any`, and either way keep Node's own
// fields typed.
import * as http from 'http';
import { createLimiter, rateLimitByIp, rateLimitByKey } from 'hirecache/ratelimit';
import type { RateLimitRequest, RateLimitResponse } from 'hirecache/ratelimit';
import { healthHandlers } from 'hirecache/health';
import { metricsHandler } from 'hirecache/metrics';

type IsAny<T> = 0 extends 1 & T ? true : false;
const notAny: [IsAny<RateLimitRequest>, IsAny<RateLimitResponse>] = [false, false];

const limiter = createLimiter({ keyPrefix: 'rl:api', points: 100, duration: 60, store: 'memory' });
const byKey = rateLimitByKey(limiter, (req) => req.headers['x-api-key'] as string | undefined, {
  skip: (req) => req.method === 'OPTIONS',
  cost: (req) => (req.url?.startsWith('/bulk') ? 10 : 1),
  handler: (_req, res) => {
    res.statusCode = 429;
    res.end();
  },
});
// What a framework added is reachable without a cast.
const byEmail = rateLimitByKey(limiter, (req) => req.body.email);
// @ts-expect-error headers is Node's IncomingHttpHeaders, not a number
rateLimitByKey(limiter, (req) => ((n: number) => n)(req.headers));
// @ts-expect-error statusCode is a number
rateLimitByIp(limiter, { handler: (_req, res) => (res.statusCode = 'too many') });

const health = healthHandlers();
const metrics = metricsHandler();
export const server = http.createServer((req, res) => {
  if (req.url === '/health') return health.health(req, res);
  if (req.url === '/metrics') return metrics(req, res);
  byKey(req, res, () => byEmail(req, res, () => rateLimitByIp(limiter)(req, res, () => res.end('ok'))));
});
void notAny;
