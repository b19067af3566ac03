'use strict';
// Tools the fault-injection suite shares (test/resilience/*.test.js): a logger that records
// its lines, an open-loop load generator that records when each call was issued and when it
// settled, percentiles, a child-process runner for multi-process scenarios, and a cleanup
// that never leaves a redis-server stopped (SIGSTOP) behind.
const { spawn } = require('child_process');
const path = require('path');
const { performance } = require('perf_hooks');

const LIB = path.join(__dirname, '..', '..', 'lib');

/** A logger that records its lines: { lines: [{ level, message, at }], logger } (at: Date.now()). */
function recordingLogger() {
  const lines = [];
  const at = (level) => (message) => lines.push({ level, message: String(message), at: Date.now() });
  return { lines, logger: { error: at('error'), warn: at('warn'), info: at('info') } };
}

/** The p-th percentile (0..100) of `values` (nearest rank); NaN when empty. */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** "p50 1.23 ms, p99 4.56 ms, max 7.89 ms (n calls)" for the record. */
function latencySummary(values) {
  const f = (x) => `${x.toFixed(2)} ms`;
  return `p50 ${f(percentile(values, 50))}, p99 ${f(percentile(values, 99))}, max ${f(Math.max(...values))} (${values.length} calls)`;
}

/**
 * An open-loop load generator: every `tickMs` it issues `perTick` calls of `op(seq)` (which
 * returns a promise), whether or not earlier calls have settled, as independent requests to
 * an API would. Each call is recorded as { seq, phase, issuedAt, settledAt, ok, value, error }
 * (times from performance.now()); `phase` is what `phaseOf()` said when it was issued.
 *
 *   const load = openLoop({ op, tickMs: 10, perTick: 10, phaseOf: () => phase });
 *   ...; await load.stop();   // stops issuing; resolves once every call has settled
 *   load.calls                // the records
 *   load.unsettled()          // the records of calls not settled yet
 */
function openLoop({ op, tickMs = 10, perTick = 10, phaseOf = () => null }) {
  const calls = [];
  let seq = 0;
  const pending = new Set();
  const issue = () => {
    for (let i = 0; i < perTick; i++) {
      const rec = { seq: seq++, phase: phaseOf(), issuedAt: performance.now(), settledAt: null, ok: null, value: undefined, error: undefined };
      calls.push(rec);
      let p;
      try {
        p = Promise.resolve(op(rec.seq, rec));
      } catch (err) {
        p = Promise.reject(err);
      }
      const done = p.then(
        (value) => Object.assign(rec, { settledAt: performance.now(), ok: true, value }),
        (error) => Object.assign(rec, { settledAt: performance.now(), ok: false, error }),
      );
      pending.add(done);
      done.then(() => pending.delete(done));
    }
  };
  const timer = setInterval(issue, tickMs);
  return {
    calls,
    unsettled: () => calls.filter((c) => c.settledAt === null),
    /** Stops issuing; resolves when every call has settled, or rejects after `timeoutMs`. */
    async stop({ timeoutMs = 20000 } = {}) {
      clearInterval(timer);
      let guard;
      const timeout = new Promise((_, reject) => {
        guard = setTimeout(() => reject(new Error(`openLoop: ${pending.size} calls not settled within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([Promise.all([...pending]), timeout]);
      } finally {
        clearTimeout(guard);
      }
      return calls;
    },
  };
}

/** Latencies (ms) of the settled calls in `calls`. */
const latencies = (calls) => calls.filter((c) => c.settledAt !== null).map((c) => c.settledAt - c.issuedAt);

/** SIGCONT to `pid`, ignoring a process that is gone: so no test leaves a server stopped. */
function resume(pid) {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // Gone already.
  }
}

/**
 * Runs `body` (the source of an async function of ({ createLimiter, createClient, url, arg }))
 * in a Node process of its own, as a separate app server would, and resolves `done` with
 * what it returned (JSON). The child loads hirecache, then waits for go(), so several
 * children can start together.
 */
function inChild(body, { url, arg = null }) {
  const source = `
    const { createLimiter } = require(${JSON.stringify(path.join(LIB, 'ratelimit'))});
    const { createClient } = require(${JSON.stringify(path.join(LIB, 'redis'))});
    const run = ${body};
    process.stdout.write('loaded\\n');
    new Promise((r) => process.stdin.once('data', r))
      .then(() => run({ createLimiter, createClient, url: ${JSON.stringify(url)}, arg: ${JSON.stringify(arg)} }))
      .then((v) => { process.stdout.write('RESULT ' + JSON.stringify(v) + '\\n'); process.exit(0); },
            (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onLoaded;
  const loaded = new Promise((resolve) => { onLoaded = resolve; });
  child.stdout.on('data', (d) => {
    out += d;
    if (out.includes('loaded\n')) onLoaded();
  });
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      onLoaded();
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice('RESULT '.length)));
      else reject(new Error(`child failed (${code}): ${err}`));
    });
  });
  return { child, loaded, done, go: () => child.stdin.write('go\n'), kill: () => child.kill('SIGKILL') };
}

/** process.memoryUsage() in MiB, rounded to 0.1, for the record. */
function memoryMiB() {
  const m = process.memoryUsage();
  const mib = (x) => Math.round((x / 1048576) * 10) / 10;
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers) };
}

/** A full garbage collection when the runtime allows one (v8 flag set at run time). */
function collectGarbage() {
  try {
    const v8 = require('v8');
    const vm = require('vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    gc();
    return true;
  } catch {
    return false;
  }
}

module.exports = { recordingLogger, percentile, latencySummary, openLoop, latencies, resume, inChild, memoryMiB, collectGarbage, LIB };
