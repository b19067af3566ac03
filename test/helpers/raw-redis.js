'use strict';
// A deliberately tiny RESP2 client used by the suites as an independent witness: to seed
// data, to flush a database and to check what the client under test really did (TTL set,
// keys deleted, CLIENT LIST). It has no reconnection, no pipelining tricks and no timeouts
// beyond one per call, so that a bug in hirecache cannot hide behind it.
const net = require('net');

/** Encodes one command as a RESP array of bulk strings. */
function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Parses one reply from buf at offset. Returns { value, end } or null when incomplete.
 * Bulk strings come back as Buffers; errors as { error: message }.
 */
function parse(buf, offset) {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('latin1', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: { error: line }, end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.subarray(next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, at);
        if (!r) return null;
        out.push(r.value);
        at = r.end;
      }
      return { value: out, end: at };
    }
    default:
      throw new Error(`raw-redis: unexpected reply type ${JSON.stringify(type)}`);
  }
}

/** Turns Buffers into strings (latin1-safe callers should use rawCommandBuffer). */
function stringify(v) {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (Array.isArray(v)) return v.map(stringify);
  return v;
}

/**
 * Opens a connection, sends each command in `commands` (arrays of arguments) in one write
 * and resolves with their replies (bulk strings as Buffers, errors as { error }).
 * options: { port, host = '127.0.0.1', db, password, username, timeoutMs = 10000 }; with db
 * the commands run after a SELECT.
 */
function rawPipeline(options, commands) {
  const { port, host = '127.0.0.1', db, password, username, timeoutMs = 10000 } = options;
  const all = [];
  if (password !== undefined) all.push(username ? ['AUTH', username, password] : ['AUTH', password]);
  if (db !== undefined) all.push(['SELECT', db]);
  const skip = all.length;
  all.push(...commands);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    let buf = Buffer.alloc(0);
    const replies = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`raw-redis: no full reply within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('connect', () => sock.write(Buffer.concat(all.map(encode))));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let at = 0;
      for (;;) {
        const r = parse(buf, at);
        if (!r) break;
        replies.push(r.value);
        at = r.end;
      }
      buf = buf.subarray(at);
      if (replies.length === all.length) {
        clearTimeout(timer);
        sock.end();
        const failed = replies.slice(0, skip).find((r) => r && r.error);
        if (failed) reject(new Error(`raw-redis: handshake failed: ${failed.error}`));
        else resolve(replies.slice(skip));
      }
    });
  });
}

/** One command; resolves with its reply, bulk strings decoded as UTF-8; errors reject. */
async function rawCommand(options, ...args) {
  const [reply] = await rawPipeline(options, [args]);
  if (reply && reply.error) {
    const err = new Error(reply.error);
    err.code = reply.error.split(' ')[0];
    throw err;
  }
  return stringify(reply);
}

/** One command; resolves with its raw reply (bulk strings as Buffers). */
async function rawCommandBuffer(options, ...args) {
  const [reply] = await rawPipeline(options, [args]);
  if (reply && reply.error) throw new Error(reply.error);
  return reply;
}

/**
 * Parses a redis:// URL into the options the functions above take: { host, port, db }.
 * A URL without a path gives db undefined (the server's default, 0).
 */
function rawOptionsFromUrl(url) {
  const u = new URL(url);
  const out = { host: u.hostname, port: Number(u.port) };
  if (u.pathname && u.pathname.length > 1) out.db = Number(u.pathname.slice(1));
  return out;
}

module.exports = { rawPipeline, rawCommand, rawCommandBuffer, rawOptionsFromUrl, encode, parse };
