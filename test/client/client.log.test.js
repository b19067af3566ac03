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

test('a flapping server is summed up: at most one warning per 30 s', () => {
  const s = sink();
  for (let i = 0; i < 100; i++) {
    s.down();
    jest.advanceTimersByTime(100);
    s.up();
    jest.advanceTimersByTime(100);
  }
  // 20 s of flapping: the first outage and its recovery only.
  expect(s.lines.map(([level]) => level)).toEqual(['warn', 'info']);
  jest.advanceTimersByTime(15000);
  s.down();
  expect(s.lines.at(-1)[1]).toMatch(/99 shorter outages since the last report/);
});

test('a real outage soon after a blip is reported once the interval has passed, then its recovery', () => {
  const s = sink();
  s.down();
  s.up(); // a blip: reported
  jest.advanceTimersByTime(1000);
  s.down(); // held back for now
  expect(s.lines).toHaveLength(2);
  jest.advanceTimersByTime(29000);
  expect(s.lines).toHaveLength(3);
  expect(s.lines[2][0]).toBe('warn');
  expect(s.lines[2][1]).toMatch(/unreachable .*\(unusable since 29000 ms ago\)/);
  jest.advanceTimersByTime(60000);
  s.up();
  expect(s.lines[3][0]).toBe('info');
  expect(s.lines[3][1]).toMatch(/unusable for 89000 ms/);
});
