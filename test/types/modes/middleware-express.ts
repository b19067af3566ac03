// The limiter's middleware and the health and metrics handlers in an Express application,
// type-checked by test/types/resolution.modes.test.js under every resolution mode with
// @types/express installed: the middleware's callbacks get Express's Request and Response.
import type { Express, Request, Response, Router } from 'express';
import { createLimiter, rateLimitByIp, rateLimitByKey } from 'hirecache/ratelimit';
import type { RateLimitRequest, RateLimitResponse } from 'hirecache/ratelimit';
import { healthHandlers, healthRouter } from 'hirecache/health';
import { metricsHandler } from 'hirecache/metrics';

const expressTypes: [RateLimitRequest, RateLimitResponse] extends [Request, Response] ? true : false = true;

export function routes(app: Express, router: Router): void {
  const login = createLimiter({ keyPrefix: 'rl:login', points: 5, duration: 600, blockDuration: 900 });
  app.post(
    '/users/:id/login',
    rateLimitByIp(login, { headers: 'draft', skip: (req) => req.path === '/health' }),
    rateLimitByKey(login, (req) => req.get('x-user') ?? req.ip, {
      cost: (req) => (req.query.bulk ? 5 : 1),
      handler: (_req, res, _next, result) => res.status(429).json({ retryInMs: result.msBeforeNext }),
      onMissingKey: (_req, res) => res.status(400).send('who is this?'),
    }),
    (req: Request, res: Response) => res.json({ id: req.params.id }),
  );
  // @ts-expect-error Express's res.status takes a number
  rateLimitByIp(login, { handler: (_req, res) => res.status('429') });
  // @ts-expect-error Express's req.get takes a header name
  rateLimitByKey(login, (req) => req.get(42));

  const handlers = healthHandlers();
  app.get('/health', handlers.health);
  app.get('/health/ready', handlers.ready);
  app.use(healthRouter({ Router: () => router }, { path: '/status' }));
  app.get('/metrics', metricsHandler());
  void expressTypes;
}
