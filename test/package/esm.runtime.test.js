'use strict';
// Proves that an ES module application can use hirecache by named imports: a temporary
// `"type": "module"` project with the repository installed as node_modules/hirecache runs
// test/package/fixtures/esm-app.mjs in a child process, which imports names from every
// subpath, caches, rate-limits, reads health and metrics, and checks that `import` and
// `require()` share one instance. Once on the embedded store (REDIS_URL=disabled), once on
// the real redis-server of the global setup.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { suiteDatabase } = require('../helpers/suite-db');

const root = path.resolve(__dirname, '..', '..');
let app;

beforeAll(() => {
  app = fs.mkdtempSync(path.join(os.tmpdir(), 'hirecache-esm-app-'));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'esm-app', private: true, type: 'module' }));
  fs.mkdirSync(path.join(app, 'node_modules'));
  fs.symlinkSync(root, path.join(app, 'node_modules', 'hirecache'), 'dir');
  // A .js file: the package's "type" makes it an ES module, as in an application.
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'esm-app.mjs'), path.join(app, 'index.js'));
});

afterAll(() => {
  if (app) fs.rmSync(app, { recursive: true, force: true });
});

/** Runs the application with REDIS_URL; resolves the JSON it printed, rejects with its stderr on failure. */
function runApp(redisUrl) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['index.js'], {
      cwd: app,
      env: { ...process.env, REDIS_URL: redisUrl, NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) reject(new Error(`the ESM application exited with ${code ?? signal}:\n${stderr}${stdout}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

/** What the application must report whichever store backs it. */
function expectSameWhateverTheStore(out) {
  expect(out).toMatchObject({
    stored: true,
    read: 'one',
    readThroughRoot: 'two',
    mget: ['one', null],
    deleted: 1,
    prefixDeleted: 1,
    afterDelete: null,
    ownCache: { backend: 'memory', read: 'private' },
    ipKey: '10.0.0.1',
    unsupported: { code: 'ERR_UNSUPPORTED', isUnsupported: true, isHirecache: true },
    sameInstance: { errorClass: true, clientClass: true, client: true, cacheDefault: true, rootDefault: true },
    clientStates: true,
    health: 'ok',
    healthHandlers: ['health', 'live', 'ready'],
  });
  expect(out.limiter).toEqual({ store: out.enabled ? 'redis' : 'memory', decisions: [1, 0, 'refused'], rootIsSame: true });
  expect(out.metrics.hits).toBe('number');
  expect(out.metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
}

test('named imports of every subpath work on the embedded store (REDIS_URL=disabled)', async () => {
  const out = await runApp('disabled');
  expect(out.enabled).toBe(false);
  expect(out.backend).toBe('memory');
  expectSameWhateverTheStore(out);
}, 30000);

test('named imports of every subpath work against Redis, and the process exits after quitRedisClient()', async () => {
  const db = await suiteDatabase();
  const out = await runApp(db.url);
  expect(out.enabled).toBe(true);
  expect(out.backend).toBe('redis');
  expectSameWhateverTheStore(out);
  expect(out.metrics.textLines).toBeGreaterThan(0);
}, 30000);
