'use strict';
// Runs a limiter scenario in a Node process of its own, so that several processes can share
// one bucket through Redis as separate app servers would.
const { spawn } = require('child_process');
const path = require('path');

const LIB = path.join(__dirname, '..', '..', 'lib');

/**
 * Runs `body` (the source of an async function of ({ createLimiter, createClient, url, arg }))
 * in a new Node process whose wall clock is shifted by skewMs, and resolves `done` with what
 * it returned (JSON) and the child's clock. The shift covers Date.now() and new Date(), as a
 * machine whose clock is wrong would show them. With `waitFor`, the child loads everything,
 * then waits for go() before it runs the body, so several children can start together.
 */
function inChild(body, { url, skewMs = 0, arg = null, waitFor = false } = {}) {
  const source = `
    const skew = ${JSON.stringify(skewMs)};
    if (skew !== 0) {
      const RealDate = Date;
      const realNow = RealDate.now.bind(RealDate);
      class SkewedDate extends RealDate {
        constructor(...a) { if (a.length === 0) super(realNow() + skew); else super(...a); }
        static now() { return realNow() + skew; }
      }
      globalThis.Date = SkewedDate;
    }
    const { createLimiter } = require(${JSON.stringify(path.join(LIB, 'ratelimit'))});
    const { createClient } = require(${JSON.stringify(path.join(LIB, 'redis'))});
    const run = ${body};
    const go = async () => {
      ${waitFor ? `await new Promise((r) => process.stdin.once('data', r));` : ''}
      return run({ createLimiter, createClient, url: ${JSON.stringify(url)}, arg: ${JSON.stringify(arg)} });
    };
    go().then((v) => { process.stdout.write(JSON.stringify({ clock: Date.now(), value: v })); process.exit(0); },
              (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child failed (${code}): ${err}`))));
  });
  return { child, done, go: () => child.stdin.write('go\n') };
}

module.exports = { inChild };
