'use strict';
// Proves that the three copies of the token-bucket arithmetic agree, decision by decision:
//   - C++ (src/ratelimit/token_bucket.cc), through the addon's LocalLimiter on a clock the test
//     sets (its clockUs option);
//   - Lua (lib/ratelimit/token_bucket.lua), run by a real redis-server with EVAL, its TIME
//     answered from the same clock;
//   - JS (lib/ratelimit/redis.js), which turns each reply of the script into the numbers a
//     caller sees, called directly on the script's replies.
// One table of scenarios (points, duration, burst, blockDuration, and a list of operations
// at exact microseconds: consumes, gets, penalties, rewards, blocks) drives all three. At
// every step the script must reach the C++ decision (admitted, refused or blocked) with the
// same debt before it, in units, or the same wait while blocked, and the JS numbers made from
// the script's reply must equal the C++ numbers. So each copy is held to the others.
//
// The script reads the clock with TIME and its keys expire with PX, both on Redis's real
// clock. The test runs it behind a one-line prelude (its body is the file's bytes) that
// shadows the `redis` table: TIME answers the test's clock, and a key's PX is kept on that
// clock too (the key vanishes on access once the test's clock has passed it, as Redis expires
// a key on access), so a key that the script lets expire too early is caught as well.
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { LocalLimiter } = require('../../lib/binding');
const { ALLOWED, FIRST, BLOCKED, FOUND, FOREVER_MS, MAX_POINTS, normalizeOptions } = require('../../lib/ratelimit/shared');
const { RedisRateLimiter, SCRIPT, SCRIPT_SHA } = require('../../lib/ratelimit/redis');
const { createClient } = require('../../lib/redis');
const { suiteDatabase } = require('../helpers/suite-db');

const S = 1e6; // microseconds per second
// A realistic wall-clock time (November 2023) in microseconds: the script's modular clock
// wraps at 2^52 units, so with scale > 1 these times are already past a wrap.
const EPOCH_US = 1_700_000_000_000_000;

// Shadows `redis` for the script's body: TIME from ARGV[7] and ARGV[8] (seconds and
// microseconds of the test's clock); PX kept on that clock in a side key per bucket. One
// line, so that the script's own line numbers stay as they are in errors.
const PRELUDE = [
  'local real = redis',
  'local fake_ms = math.floor((tonumber(ARGV[7]) * 1000000 + tonumber(ARGV[8])) / 1000)',
  "local function pxat(k) return k .. '|test-pxat' end",
  'local redis = setmetatable({ call = function(command, k, ...)',
  "  if command == 'TIME' then return { ARGV[7], ARGV[8] } end",
  "  local at = real.call('GET', pxat(k))",
  "  if at and fake_ms > tonumber(at) then real.call('DEL', k, pxat(k)) end",
  "  if command == 'SET' then",
  '    local value, px_word, px = ...',
  "    real.call('DEL', pxat(k))",
  "    if px_word == 'PX' then real.call('SET', pxat(k), string.format('%.0f', fake_ms + px)) end",
  "    return real.call('SET', k, value)",
  '  end',
  "  if command == 'DEL' then real.call('DEL', pxat(k)) end",
  '  return real.call(command, k, ...)',
  'end }, { __index = real }) ',
].join(' ');

let db;
let redis;

beforeAll(async () => {
  db = await suiteDatabase();
  redis = createClient({ url: db.url });
});

afterAll(async () => {
  await db.flush();
  await redis.quit();
});

/**
 * A client for the limiter that sends its EVALSHA as EVAL of the prelude and the script, at
 * the time `clock.us`. Anything else goes to Redis as it is. Its breaker stays closed.
 */
function clientOnClock(clock) {
  return {
    breakerState: 'closed',
    _command(flags, command, ...args) {
      return this.call(command, ...args);
    },
    call(command, ...args) {
      if (command !== 'EVALSHA') return redis.call(command, ...args);
      const [sha, ...rest] = args;
      if (sha !== SCRIPT_SHA) throw new Error(`unexpected script ${sha}`);
      const sec = Math.floor(clock.us / S);
      return redis.call('EVAL', PRELUDE + SCRIPT, ...rest, String(sec), String(clock.us - sec * S));
    },
  };
}

/** The numbers of a result, as a caller sees them. */
const numbers = (r) =>
  r === null
    ? null
    : { remainingPoints: r.remainingPoints, msBeforeNext: r.msBeforeNext, consumedPoints: r.consumedPoints, isFirstInDuration: r.isFirstInDuration };

// ---- C++ ---------------------------------------------------------------------------------

/** A LocalLimiter with the limiter's numbers, as lib/ratelimit/shared.js makes one, on the test's clock. */
function nativeOnClock({ points, duration, burst, blockDuration }, startUs) {
  const native = new LocalLimiter({
    points,
    durationUs: Math.round(duration * S),
    burst,
    blockUs: Math.round(blockDuration * S),
    maxEntries: 1000,
    maxKeyLength: 512,
    clockUs: startUs,
  });
  if (typeof native.setClockUs !== 'function') throw new Error('the addon has no manual clock: rebuild it (npm run build)');
  return native;
}

/** The C++ outcome of one operation, read as lib/ratelimit/memory.js reads it. */
function cppStep(native, op, arg, key) {
  const out = native.out;
  const result = (flags) => ({
    remainingPoints: out[0],
    msBeforeNext: out[1] > FOREVER_MS ? -1 : out[1],
    consumedPoints: out[2],
    isFirstInDuration: (flags & FIRST) !== 0,
  });
  let flags;
  switch (op) {
    case 'consume':
      flags = native.consume(key, arg);
      return { decision: flags & BLOCKED ? 'blocked' : flags & ALLOWED ? 'admitted' : 'refused', settled: flags & ALLOWED ? 'resolved' : 'rejected', result: result(flags) };
    case 'get':
      flags = native.get(key);
      if ((flags & FOUND) === 0) return { decision: 'admitted', settled: 'resolved', result: null };
      return { decision: flags & BLOCKED ? 'blocked' : 'admitted', settled: 'resolved', result: result(flags) };
    case 'penalty':
    case 'reward':
      flags = native[op](key, arg);
      return { decision: flags & BLOCKED ? 'blocked' : 'admitted', settled: 'resolved', result: result(flags) };
    case 'block':
      // memory.js: 0 seconds is a block without end, 2^53 ms.
      flags = native.block(key, arg === 0 ? 2 ** 53 : Math.ceil(arg * 1000));
      return { decision: 'blocked', settled: 'resolved', result: result(flags) };
    default:
      throw new Error(`unknown operation ${op}`);
  }
}

/** The units the C++ bucket owes at the clock's time, or null while it is blocked. */
function cppDebt(native, key) {
  const flags = native.get(key);
  if ((flags & FOUND) === 0) return 0;
  return flags & BLOCKED ? null : native.out[4];
}

// ---- Lua and JS --------------------------------------------------------------------------

const OP_CODES = { consume: 'c', get: 'g', penalty: 'p', reward: 'r', block: 'b' };
const STATUS = { 0: 'refused', 1: 'admitted', 2: 'blocked' };

/** The script's raw reply to one operation, with the arguments the Redis limiter sends. */
function luaStep(limiter, op, arg, key) {
  const cost = op === 'get' ? 0 : op === 'block' ? Math.ceil(arg * 1000) : arg; // as redis.js's methods pass it
  return limiter._send(OP_CODES[op], key, cost);
}

/** The script's reply decoded: its decision and its number (the debt before, or the wait while blocked). */
function luaView(raw) {
  // [number, refused points] when the key holds refused points.
  const reply = typeof raw === 'number' ? raw : raw[0];
  const status = reply < 0 ? 2 : reply % 4;
  const value = reply < 0 ? -1 : (reply - status) / 4;
  return status === 2 ? { decision: 'blocked', waitMs: value } : { decision: STATUS[status], debt: value };
}

/** What the Redis limiter's JS makes of the script's reply: the promise's outcome. */
async function jsStep(limiter, op, arg, key, reply) {
  if (!Object.prototype.hasOwnProperty.call(OP_CODES, op)) throw new Error(`unknown operation ${op}`);
  // The limiter's own entry point for a reply (it decodes the array form too).
  const outcome = limiter._settle(OP_CODES[op], key, op === 'get' ? 0 : arg, reply);
  return Promise.resolve(outcome).then(
    (result) => ({ settled: 'resolved', result: numbers(result) }),
    (result) => ({ settled: 'rejected', result: numbers(result) }),
  );
}

// ---- The table ---------------------------------------------------------------------------

/** A deterministic sequence of operations: the same every run (a linear congruential generator). */
function seededSteps(seed, count, { burst, intervalUs, maxBlockSec = 0 }) {
  let state = seed >>> 0;
  const next = (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  const steps = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    // Mostly small gaps around the refill interval, sometimes none, sometimes a long rest.
    const gap = next(10) === 0 ? 0 : next(20) === 0 ? intervalUs * (burst + 2) : next(2 * intervalUs + 1);
    at += gap;
    const pick = next(100);
    if (pick < 60) steps.push([at, 'consume', next(burst + 1)]);
    else if (pick < 72) steps.push([at, 'get']);
    else if (pick < 82) steps.push([at, 'penalty', 1 + next(burst)]);
    else if (pick < 94) steps.push([at, 'reward', 1 + next(burst)]);
    else if (maxBlockSec > 0) steps.push([at, 'block', next(maxBlockSec * 4 + 1) / 4]);
    else steps.push([at, 'get']);
  }
  return steps;
}

const SCENARIOS = [
  {
    name: '5 per 10 s: refill boundaries, penalty and reward, cost 0, the debt cap',
    limiter: { points: 5, duration: 10, burst: 5, blockDuration: 0 },
    start: EPOCH_US,
    steps: [
      [0, 'consume', 1],
      [0, 'consume', 4],
      [0, 'consume', 1],
      [2 * S - 1, 'consume', 1], // a microsecond before the token is back
      [2 * S, 'consume', 1], // exactly when it is
      [2 * S, 'get'],
      [3 * S, 'penalty', 3],
      [3 * S, 'consume', 1],
      [3 * S, 'get'],
      [5 * S, 'reward', 2],
      [5 * S, 'consume', 2],
      [7.5 * S, 'consume', 0],
      [40 * S, 'get'], // full again: no bucket
      [40 * S, 'consume', 0],
      [40 * S, 'penalty', MAX_POINTS], // past the cap on a debt
      [41 * S, 'get'],
      [41 * S, 'consume', 5],
      [41 * S, 'reward', MAX_POINTS],
      [41 * S, 'get'],
      [41 * S, 'consume', 5],
    ],
  },
  {
    name: '3 per second (a third of a second is no whole microsecond), across the wrap of the script clock',
    limiter: { points: 3, duration: 1, burst: 3, blockDuration: 0 },
    // Scale 3: the script's clock (microseconds * 3, modulo 2^52) wraps half a second in.
    start: Math.floor(2 ** 52 / 3) - 0.5 * S,
    steps: [
      [0, 'consume', 3],
      [333333, 'consume', 1], // a third of a microsecond short
      [333334, 'consume', 1],
      [333334, 'get'],
      [S, 'consume', 2],
      [S, 'get'],
      [1333333, 'reward', 1],
      [1666667, 'penalty', 4],
      [1666667, 'consume', 1],
      [3 * S, 'consume', 1],
      [5 * S, 'get'],
    ],
  },
  {
    name: '10 per minute with a burst of 20 and a 30 s block on refusal',
    limiter: { points: 10, duration: 60, burst: 20, blockDuration: 30 },
    start: EPOCH_US + 123456,
    steps: [
      [0, 'consume', 20],
      [0, 'consume', 1], // refused: starts the block
      [10 * S, 'consume', 1],
      [10 * S, 'get'],
      [10 * S, 'penalty', 5], // taken while blocked: the debt outlives the block
      [10 * S, 'reward', 1],
      [30 * S - 1, 'consume', 1],
      [30 * S, 'consume', 1], // the block has ended; the debt has not
      [61 * S, 'get'],
      [200 * S, 'get'],
      [200 * S, 'block', 5],
      [200 * S, 'consume', 1],
      [205 * S, 'consume', 1], // the explicit block ended exactly now
      [210 * S, 'block', 0], // without end
      [210 * S, 'consume', 1],
      [100000 * S, 'get'],
      [100000 * S, 'penalty', 1],
    ],
  },
  {
    name: '7 per millisecond: scale 7, keys that expire within a millisecond',
    limiter: { points: 7, duration: 0.001, burst: 7, blockDuration: 0 },
    start: EPOCH_US + 999,
    steps: [
      [0, 'consume', 7],
      [142, 'consume', 1], // 1/7 ms is 142.857 µs
      [143, 'consume', 1],
      [143, 'get'],
      [1000, 'get'],
      [1143, 'get'],
      [2000, 'consume', 7],
      [2000, 'penalty', 3],
      [2500, 'consume', 1],
      [3429, 'consume', 1],
    ],
  },
  {
    name: 'a bucket too fine for exact units (999983 per day): the interval is rounded up',
    limiter: { points: 999983, duration: 86400, burst: 999983, blockDuration: 0 },
    start: EPOCH_US,
    steps: [
      [0, 'consume', 999983],
      [0, 'consume', 1],
      [86400, 'consume', 1], // one point per 86400.0000... µs, rounded up
      [86401, 'consume', 1],
      [86401, 'get'],
      [S, 'consume', 11],
      [100 * S, 'consume', 1000],
      [100 * S, 'penalty', 999983],
      [86400 * S, 'get'],
    ],
  },
  {
    name: 'a burst below the rate (10 per second, burst 2) and a half-second block',
    limiter: { points: 10, duration: 1, burst: 2, blockDuration: 0.5 },
    start: EPOCH_US + 7,
    steps: [
      [0, 'consume', 2],
      [0, 'consume', 1],
      [499999, 'consume', 1],
      [500000, 'consume', 1],
      [500000, 'consume', 2],
      [600000, 'reward', 5],
      [600000, 'get'],
      [600001, 'block', 0.25],
      [850001, 'consume', 1],
    ],
  },
  {
    name: '200 seeded random operations on 4 per 2 s, burst 6, block 1 s',
    limiter: { points: 4, duration: 2, burst: 6, blockDuration: 1 },
    start: EPOCH_US + 31337,
    steps: seededSteps(20240611, 200, { burst: 6, intervalUs: 0.5 * S, maxBlockSec: 2 }),
  },
  {
    name: '200 seeded random operations on 3 per 7 s (scale 3), no block',
    limiter: { points: 3, duration: 7, burst: 3, blockDuration: 0 },
    start: Math.floor(2 ** 52 / 3) - 20 * S,
    steps: seededSteps(7, 200, { burst: 3, intervalUs: Math.ceil((7 * S) / 3) }),
  },
];

test('the script is the file token_bucket.lua, and its SHA1 is that of the file', () => {
  const bytes = fs.readFileSync(path.join(__dirname, '../../lib/ratelimit/token_bucket.lua'));
  expect(SCRIPT).toBe(bytes.toString('utf8'));
  expect(SCRIPT_SHA).toBe(crypto.createHash('sha1').update(bytes).digest('hex'));
});

test('the npm package ships the script', () => {
  const root = path.join(__dirname, '../..');
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const files = JSON.parse(r.stdout)[0].files.map((f) => f.path);
  expect(files).toContain('lib/ratelimit/token_bucket.lua');
});

/** Expects `actual` to equal `expected`; a failure names the step and shows every side. */
function agree(step, what, actual, expected, sides) {
  try {
    expect(actual).toEqual(expected);
  } catch (err) {
    err.message = `${step}: ${what}\n${JSON.stringify(sides, null, 1)}\n${err.message}`;
    throw err;
  }
}

describe.each(SCENARIOS)('$name', ({ limiter: numbersOf, start, steps }) => {
  test('C++, the Lua script and the JS around it agree at every step', async () => {
    await db.flush();
    const clock = { us: start };
    const native = nativeOnClock(numbersOf, start);
    const config = normalizeOptions({ keyPrefix: 'agree', ...numbersOf, rejectLocally: false, fallback: false });
    const limiter = new RedisRateLimiter(config, clientOnClock(clock));
    const key = 'k';
    for (const [index, [at, op, arg]] of steps.entries()) {
      clock.us = start + at;
      native.setClockUs(clock.us);
      const step = `step ${index} at +${at} µs: ${op}${arg === undefined ? '' : `(${arg})`}`;

      const debtBefore = cppDebt(native, key);
      const cpp = cppStep(native, op, arg, key);
      const reply = await luaStep(limiter, op, arg, key);
      const lua = luaView(reply);
      const js = await jsStep(limiter, op, arg, key, reply);

      // The script reaches the C++ decision from the same debt (or the same wait when blocked).
      const cppView =
        cpp.decision === 'blocked'
          ? { decision: 'blocked', waitMs: cpp.result.msBeforeNext }
          : { decision: cpp.decision, debt: debtBefore };
      const sides = { cpp: { ...cpp, debtBefore }, luaReply: reply, js };
      agree(step, 'the script decides as C++ does, from the same debt', lua, cppView, sides);
      // The JS makes the C++ numbers out of the script's reply.
      agree(step, 'the JS numbers are the C++ numbers', js, { settled: cpp.settled, result: numbers(cpp.result) }, sides);
    }
  });
});
