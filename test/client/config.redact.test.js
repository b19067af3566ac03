'use strict';
// Proves that a password written into REDIS_URL or the option url (or, by mistake, into
// REDIS_HOST or the option host) never reaches an error, whatever shape the URL has: with or
// without '//', with one or three slashes, backslashes, a leading space, no scheme, no host, a
// password where the port should be, a password split by '/', '#' or '?', a query parameter
// named like a secret. Each malformed URL must be refused, and the password (and every piece
// of it) must be absent from the error's message, its stack and util.inspect(err).
const util = require('util');
const { resolveConfig, redactUrl } = require('../../lib/client/config');

// Passwords whose pieces are distinctive, so a partial leak (half of a password cut at a '/'
// or a '#') is caught too.
const PLAIN = 'Qv7tPlainSecret';
const TRICKY = 'Alpha7q@Bravo8x:Charlie9/Delta0#Echo1?Foxtrot2';
const DIGITS = '48291/77120355'; // digits on both sides of a '/': parses as port and path
const PASSWORDS = [PLAIN, TRICKY, DIGITS];

/** The pieces of a password that must never appear: the whole and every part of 4+ chars. */
function pieces(password) {
  return [password, ...password.split(/[@:/#?%\s]/).filter((part) => part.length >= 4)];
}

/** URL shapes that must be refused, as functions of the password. */
const SHAPES = [
  ['no // after the scheme', (p) => `redis:app:${p}@127.0.0.1:6379`],
  ['one slash after the scheme', (p) => `redis:/app:${p}@127.0.0.1:6379`],
  ['no // and a leading space', (p) => ` redis:app:${p}@127.0.0.1:6379`],
  ['one slash and a leading space', (p) => ` redis:/app:${p}@127.0.0.1:6379`],
  ['three slashes', (p) => `redis:///app:${p}@127.0.0.1:6379`],
  ['backslashes for slashes', (p) => `redis:\\\\app:${p}@127.0.0.1:6379`],
  ['an upper-case scheme without //', (p) => `REDIS:app:${p}@127.0.0.1:6379`],
  ['no colon after the scheme', (p) => `redis//app:${p}@127.0.0.1:6379`],
  ['no scheme, only a password', (p) => `:${p}@127.0.0.1:6379`],
  ['no scheme, no user', (p) => `${p}@127.0.0.1`],
  ['a password where the port goes (no host)', (p) => `redis://app:${p}`],
  ['only a password where the port goes', (p) => `redis://:${p}`],
  ['a password and an empty host', (p) => `redis://app:${p}@`],
  ['a bad port after the credentials', (p) => `redis://app:${p}@127.0.0.1:notaport/0`],
  ['a bad db after the credentials', (p) => `redis://app:${p}@127.0.0.1:6379/x`],
  ['two ports after the credentials', (p) => `redis://app:${p}@127.0.0.1:6379:7/0`],
  ['no // and a bad port', (p) => `redis:app:${p}@127.0.0.1:notaport`],
  ['a newline inside', (p) => `redis:app:${p}\n@127.0.0.1:6379`],
  ['a tab after the scheme', (p) => `redis:\tapp:${p}@127.0.0.1:6379`],
  ['a password in a query, with a bad port', (p) => `redis://127.0.0.1:notaport/0?password=${encodeURIComponent(p)}`],
  ['a password in a query, no host', (p) => `redis:?password=${encodeURIComponent(p)}`],
  ['an unencoded password in a query, bad port', (p) => `redis://127.0.0.1:bad?password=${p}`],
  ['a trailing space after a bad URL', (p) => `redis:app:${p}@127.0.0.1:6379 `],
];

/** Runs fn, returns the error it threw (fails the test when it does not throw). */
function thrown(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function expectNoPassword(err, password) {
  const texts = { message: err.message, stack: String(err.stack), inspect: util.inspect(err) };
  for (const piece of pieces(password)) {
    for (const [where, text] of Object.entries(texts)) {
      if (text.includes(piece)) throw new Error(`the error's ${where} shows ${JSON.stringify(piece)}: ${text}`);
    }
  }
}

// redis://app:48291/77120355 is a well-formed URL (host app, port 48291, db 77120355):
// nothing tells it from a mistake, so it is accepted, and no error could show it.
const VALID = new Set([`redis://app:${DIGITS}`]);

const cases = [];
for (const [shape, make] of SHAPES) {
  for (const password of PASSWORDS) {
    if (!VALID.has(make(password))) cases.push([shape, password, make(password)]);
  }
}

describe.each([
  ['REDIS_URL', (url) => resolveConfig({ REDIS_URL: url }), /REDIS_URL/],
  ['option url', (url) => resolveConfig({}, { url }), /option url/],
])('%s', (_, resolve, names) => {
  test.each(cases)('%s (password %j) is refused without showing the password', (_shape, password, url) => {
    const err = thrown(() => resolve(url));
    expect(err.message).toMatch(names);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expectNoPassword(err, password);
  });
});

describe('redactUrl', () => {
  test.each(cases)('%s (password %j): the password is hidden', (_shape, password, url) => {
    const shown = redactUrl(url);
    for (const piece of pieces(password)) expect(shown).not.toContain(piece);
  });

  test.each([
    ['redis://h:6379/2', 'redis://h:6379/2'],
    ['redis://[::1]:6390/2', 'redis://[::1]:6390/2'],
    [`redis://alice:${PLAIN}@cache.internal:6380/4`, 'redis://alice:***@cache.internal:6380/4'],
    [`redis://:${PLAIN}@h`, 'redis://***@h'],
    [`redis:app:${PLAIN}@127.0.0.1:6379`, 'redis:app:***@127.0.0.1:6379'],
    [`redis:/app:${PLAIN}@127.0.0.1:6379`, 'redis:/app:***@127.0.0.1:6379'],
    ['redis://h:6379/0?db=3&name=api', 'redis://h:6379/0?db=3&name=api'],
  ])('keeps what helps find the mistake: %s shows as %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});

describe('a URL where a host goes (REDIS_HOST=redis://...)', () => {
  // Such a host would reach the resolver's error ("resolving <host> failed"), the client's
  // status().lastError and util.inspect(client) whole: it is refused before any of that.
  const hostShapes = [
    (p) => `redis://app:${p}@127.0.0.1:6379`,
    (p) => `redis:app:${p}@127.0.0.1`,
    (p) => `app:${p}@127.0.0.1`,
    (p) => `:${p}@cache.internal`,
    (p) => `${p}@cache.internal`,
    (p) => `cache.internal/${p}`,
    (p) => `app:${p}`,
  ];
  const hostCases = [];
  for (const make of hostShapes) for (const password of PASSWORDS) hostCases.push([make(password), password]);

  test.each(hostCases)('REDIS_HOST=%j is refused without showing the password', (host, password) => {
    const err = thrown(() => resolveConfig({ REDIS_HOST: host }));
    expect(err.message).toMatch(/REDIS_HOST/);
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expectNoPassword(err, password);
  });

  test.each(hostCases)('option host %j is refused without showing the password', (host, password) => {
    const err = thrown(() => resolveConfig({}, { host }));
    expect(err.message).toMatch(/option host/);
    expectNoPassword(err, password);
  });

  test.each(['cache.internal', 'redis-1', 'my_host', '127.0.0.1', '::1', '[::1]', 'fe80::1%eth0', '2001:db8::7'])(
    'a host name or an IP address is still a host: %s',
    (host) => {
      // An IPv6 address in brackets, as a URL writes it, is kept without them.
      const bare = host.replace(/^\[(.*)\]$/, '$1');
      expect(resolveConfig({ REDIS_HOST: host }).host).toBe(bare);
      expect(resolveConfig({}, { host }).host).toBe(bare);
    },
  );
});

test('the one shape left out is a well-formed URL, accepted as such', () => {
  expect(resolveConfig({ REDIS_URL: `redis://app:${DIGITS}` })).toMatchObject({ host: 'app', port: 48291, db: 77120355 });
});

test('a password given as a non-string option is not shown in the error', () => {
  const err = thrown(() => resolveConfig({}, { password: 918273645 }));
  expect(err).toBeInstanceOf(TypeError);
  expect(err.message).toMatch(/option password/);
  expectNoPassword(err, '918273645');
});
