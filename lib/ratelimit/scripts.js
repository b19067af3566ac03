'use strict';
// The Lua scripts of the rate limiting modules: read from their .lua files once, sent with
// EVALSHA under the SHA1 of the file's bytes, and loaded (SCRIPT LOAD) when Redis answers
// NOSCRIPT, one load at a time per client and script, shared by everything on that client.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { BREAKER_EARLY } = require('../client/client');

/**
 * The script in lib/ratelimit/<file>: { file, text, sha }. Its text must be ASCII, so the
 * string SCRIPT LOAD sends is exactly the bytes whose SHA1 EVALSHA names.
 */
function luaScript(file) {
  const full = path.join(__dirname, file);
  const bytes = fs.readFileSync(full);
  const text = bytes.toString('latin1');
  if (/[\u0080-\uffff]/.test(text)) throw new Error(`hirecache: ${full} must be ASCII`);
  return { file: full, text, sha: crypto.createHash('sha1').update(bytes).digest('hex') };
}

// Per client, the SCRIPT LOAD in progress of each script (by SHA1).
const loads = new WeakMap();

/**
 * Loads `script` on `client` (after a NOSCRIPT: the call did not run). BREAKER_EARLY: a load
 * still waiting when the breaker opens settles at once; the calls waiting for it have not
 * run. Rejects when Redis hashes the script differently.
 */
function loadScript(client, script) {
  let mine = loads.get(client);
  if (mine === undefined) {
    mine = new Map();
    loads.set(client, mine);
  }
  let p = mine.get(script.sha);
  if (p === undefined) {
    const done = () => mine.delete(script.sha);
    p = client._command(BREAKER_EARLY, 'SCRIPT', 'LOAD', script.text).then(
      (sha) => {
        done();
        if (sha !== script.sha) throw new Error(`hirecache: Redis answered SCRIPT LOAD of ${path.basename(script.file)} with ${sha}, expected ${script.sha}`);
      },
      (err) => {
        done();
        throw err;
      },
    );
    mine.set(script.sha, p);
  }
  return p;
}

module.exports = { luaScript, loadScript };
