'use strict';
// Tools the client-surface suites (test/client/surface/) share: catching a refusal whether
// the call throws or rejects, reading CLIENT LIST as records through the independent raw
// client, and counting a redis-server's connections by the name a test gave its client.
const { rawCommand } = require('./raw-redis');

/**
 * Runs `fn` and returns the error it threw or the reason its promise rejected with; fails
 * the test (throws) when it neither throws nor rejects.
 */
async function refusalOf(fn) {
  let result;
  try {
    result = fn();
  } catch (err) {
    return err;
  }
  try {
    await result;
  } catch (err) {
    return err;
  }
  throw new Error(`expected a refusal, but the call resolved with ${JSON.stringify(result)}`);
}

/** CLIENT LIST of the server `raw` points at, as one record per connection (every field a string). */
async function clientList(raw) {
  const text = await rawCommand(raw, 'CLIENT', 'LIST');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Object.fromEntries(line.trim().split(' ').map((field) => {
      const eq = field.indexOf('=');
      return [field.slice(0, eq), field.slice(eq + 1)];
    })));
}

/** The connections of the server `raw` points at whose CLIENT SETNAME is `name`. */
async function connectionsNamed(raw, name) {
  return (await clientList(raw)).filter((c) => c.name === name);
}

/** 'MuLtI' for 'multi': a command name in mixed case. */
function mixedCase(name) {
  return [...name].map((ch, i) => (i % 2 === 0 ? ch.toUpperCase() : ch.toLowerCase())).join('');
}

module.exports = { refusalOf, clientList, connectionsNamed, mixedCase };
