'use strict';
// maxBytes bounds the memory the embedded store really holds. The workload that broke it:
// rounds of inserts at a new value size each round (so a new size class of the native
// arena), deleting 15 of every 16 entries, which leaves one live entry on most pages of
// every round. Measured in a child process of its own, so nothing else Jest does counts:
// the store's own figure must stay within the bound at every round, and the process's
// resident memory must grow by no more than the bound plus a generous allowance for V8.
const { spawnSync } = require('child_process');
const path = require('path');

const MAX_BYTES = 16 * 1024 * 1024;
// V8's heap after the garbage of a few hundred thousand key strings, libuv and the rest of
// a Node process that was already running: far less than this, on any machine we know.
const ALLOWANCE = 48 * 1024 * 1024;

function child() {
  const { MemoryStore } = require(path.join(__dirname, '..', '..', 'lib', 'store', 'memory-store'));
  const store = new MemoryStore({ maxEntries: 1000000, maxBytes: MAX_BYTES, sweepIntervalMs: 2 ** 31 - 1 });
  global.gc();
  const rssBefore = process.memoryUsage().rss;
  let id = 0;
  let mostCounted = 0;
  for (let round = 0; round < 40; round++) {
    const value = 'v'.repeat(600 + 8 * round);
    const first = id;
    for (let i = 0; i < 4000; i++) store.set(`key:${id++}`, value);
    mostCounted = Math.max(mostCounted, store.stats().bytes);
    for (let i = first; i < id; i++) if (i % 16 !== 0) store.del(`key:${i}`);
    mostCounted = Math.max(mostCounted, store.stats().bytes);
  }
  global.gc();
  const stats = store.stats();
  const survivor = store.get(`key:${(id - 1) - ((id - 1) % 16)}`);
  process.stdout.write(
    JSON.stringify({
      rssGrowth: process.memoryUsage().rss - rssBefore,
      mostCounted,
      stats,
      survivorLength: survivor === null ? -1 : survivor.length,
    }),
  );
}

// Jest's module registry sets require.main to the test file too, so the child is told
// apart by its argument.
if (process.argv[2] === '--child') {
  child();
} else {
  test('rounds of new value sizes with 15 of 16 entries deleted stay within maxBytes', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--child'], { encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.mostCounted).toBeLessThanOrEqual(MAX_BYTES);
    expect(out.stats.bytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(out.rssGrowth).toBeLessThanOrEqual(MAX_BYTES + ALLOWANCE);
    // The newest survivors are kept and intact: the bound was met by moving entries out of
    // sparse pages (compaction), not by losing recent entries.
    expect(out.survivorLength).toBe(600 + 8 * 39);
    expect(out.stats.compactions).toBeGreaterThan(0);
  });
}
