'use strict';
// Small async tools the suites share: waiting for a condition, watching for unhandled
// rejections, and telling whether a promise has settled yet.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lets pending I/O callbacks and microtasks run (a few loop turns). */
async function turns(n = 5) {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Polls predicate() (sync or async) until it returns truthy; rejects after timeoutMs with
 * `what` in the message. This is a hang guard, not a performance bound.
 */
async function waitFor(predicate, { timeoutMs = 10000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not reached within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** Wraps a promise so its state can be read synchronously: { promise, settled, value, error }. */
function track(promise) {
  const t = { settled: false, fulfilled: false, value: undefined, error: undefined };
  t.promise = promise.then(
    (value) => Object.assign(t, { settled: true, fulfilled: true, value }),
    (error) => Object.assign(t, { settled: true, fulfilled: false, error }),
  );
  return t;
}

/**
 * Records every 'unhandledRejection' of the process from now on. stop() removes the
 * listener and returns what was recorded.
 */
function watchUnhandledRejections() {
  const seen = [];
  const listener = (reason) => seen.push(reason);
  process.on('unhandledRejection', listener);
  return {
    seen,
    stop() {
      process.off('unhandledRejection', listener);
      return seen;
    },
  };
}

/** Resolves with { ok, value } or { ok: false, error } (never rejects). */
function outcome(promise) {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
}

module.exports = { sleep, turns, waitFor, track, watchUnhandledRejections, outcome };
