'use strict';
// metricsHandler served by Express and by a plain http server: text/plain; version=0.0.4,
// a body that passes the strict reader, HEAD without a body, and a failure handed to
// Express's next() (or a plain 500) rather than a crash.
const http = require('http');
const express = require('express');
const { createClient } = require('../../lib/redis');
const { metricsHandler } = require('../../lib/metrics');
const { suiteDatabase } = require('../helpers/suite-db');
const { parseExposition, sampleValue } = require('./exposition-parser');

let db;
const clients = [];
const servers = [];

// The breaker is off unless a test is about it: on a busy machine a starved redis-server
// could open it and turn a counted hit into a refusal.
function open(options) {
  const client = createClient({ logger: false, breaker: false, ...options });
  clients.push(client);
  return client;
}

/** Listens on a free loopback port; resolves with the base URL. */
async function serve(handler) {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}`;
}

/** One request; resolves with { status, headers, body }. */
function request(url, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  db = await suiteDatabase();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

test('GET /metrics in an Express app: the exposition content type and a valid body', async () => {
  const client = open({ url: db.url });
  await client.get('x');
  const app = express();
  app.get('/metrics', metricsHandler(client, { prefix: 'api_' }));
  const base = await serve(app);
  const res = await request(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  expect(res.headers['cache-control']).toBe('no-store');
  const f = parseExposition(res.body);
  expect(sampleValue(f, 'api_commands_total', { command: 'get', outcome: 'miss' })).toBe(1);
  expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));

  const head = await request(`${base}/metrics`, 'HEAD');
  expect(head.status).toBe(200);
  expect(head.body).toBe('');
});

test('a failure goes to next() under Express, and is a plain 500 under http.createServer', async () => {
  const failing = () => {
    throw new Error('no client today');
  };
  const app = express();
  app.get('/metrics', metricsHandler(failing));
  let seen = null;
  // Express's error handlers are told apart by their four parameters.
  app.use((err, req, res, _next) => {
    seen = err;
    res.status(503).end('down');
  });
  const viaExpress = await request(`${await serve(app)}/metrics`);
  expect(viaExpress.status).toBe(503);
  expect(seen.message).toBe('no client today');

  const plain = await request(`${await serve(metricsHandler(failing))}/metrics`);
  expect(plain.status).toBe(500);
  expect(plain.body).toBe('metrics unavailable\n');
});

test('a lazy client is read at each request; options are checked when the handler is made', async () => {
  let current = null;
  const base = await serve(metricsHandler(() => current));
  expect(parseExposition((await request(base)).body).size).toBe(0);
  current = open({ url: db.url });
  await current.get('x');
  expect(sampleValue(parseExposition((await request(base)).body), 'hirecache_connections_opened_total')).toBe(1);
  expect(() => metricsHandler(null, { prefix: '-' })).toThrow(/metricsHandler: option prefix/);
  expect(() => metricsHandler('redis://x')).toThrow(/metricsHandler: client must be/);
});
