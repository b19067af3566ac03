'use strict';
// The client's log sink on a fake clock: one line when Redis becomes unusable and one when it
// is back; outages that follow each other quickly are summed up, not listed; and an outage
// held back that way is still reported if it goes on, never silent.
const { createLogSink } = require('../../lib/client/log');

function sink() {
  const lines = [];
  const logger = { error: (t) => lines.push(['error', t]), warn: (t) => lines.push(['warn', t]), info: (t) => lines.push(['info', t]) };
  let closed = true;
  const s = createLogSink(logger, {}, '127.0.0.1:6379', () => closed);
  const refused = { error: Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }) };
  return {
    lines,
    event: (type, detail) => s.event(type, detail),
    down() {
      closed = false;
      s.event('error', refused);
      s.event('breaker', { state: 'open', reason: 'unreachable' });
    },
    up() {
      closed = true;
      s.event('breaker', { state: 'closed', reason: null });
      s.event('ready', {});
    },
  };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

test('an outage is one warning and one recovery line, however many attempts fail', () => {
  const s = sink();
  s.down();
  for (let i = 0; i < 50; i++) s.down();
  jest.advanceTimersByTime(5000);
  s.up();
  expect(s.lines.map(([level]) => level)).toEqual(['warn', 'info']);
  expect(s.lines[1][1]).toMatch(/usable again \(unusable for 5000 ms after 51 failed connection attempts\)/);
});

test('a flapping server is summed up: a few outage lines a minute, then a count', () => {
  const s = sink();
  for (let i = 0; i < 100; i++) {
    s.down();
    jest.advanceTimersByTime(100);
    s.up();
    jest.advanceTimersByTime(100);
  }
  // 20 s of flapping: the first two outages, each with its recovery, and nothing more.
  expect(s.lines.map(([level]) => level)).toEqual(['warn', 'info', 'warn', 'info']);
  jest.advanceTimersByTime(45000);
  s.down();
  expect(s.lines.at(-1)[0]).toBe('warn');
  expect(s.lines.at(-1)[1]).toMatch(/98 brief outages since the last report/);
});

test('a real outage right after a blip is reported when it begins, and its recovery', () => {
  const s = sink();
  s.down();
  s.up(); // a blip, reported
  jest.advanceTimersByTime(1000);
  s.down();
  expect(s.lines.map(([level]) => level)).toEqual(['warn', 'info', 'warn']);
  jest.advanceTimersByTime(60000);
  s.up();
  expect(s.lines[3][0]).toBe('info');
  expect(s.lines[3][1]).toMatch(/unusable for 60000 ms/);
});

test('a stall shorter than a second is only counted; a longer one is reported while it lasts', () => {
  const s = sink();
  const stall = () => s.event('breaker', { state: 'open', reason: 'stalled' });
  stall();
  jest.advanceTimersByTime(500);
  s.up();
  expect(s.lines).toEqual([]);
  stall();
  jest.advanceTimersByTime(1000);
  expect(s.lines).toHaveLength(1);
  expect(s.lines[0][1]).toMatch(/stopped answering.*\(unusable for 1000 ms so far\) \(1 brief outage since the last report\)/);
  jest.advanceTimersByTime(1000);
  s.up();
  expect(s.lines[1][1]).toMatch(/usable again \(unusable for 2000 ms\)/);
});

test('a stall that turns into a lost connection is reported at once as unreachable', () => {
  const s = sink();
  s.event('breaker', { state: 'open', reason: 'stalled' });
  jest.advanceTimersByTime(200);
  s.down();
  expect(s.lines).toHaveLength(1);
  expect(s.lines[0][1]).toMatch(/unreachable \(ECONNREFUSED/);
});
