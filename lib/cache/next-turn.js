'use strict';
// Settles the fallback's answers on a later turn of the event loop, as Redis's would be,
// all the answers of one turn by one setImmediate. An answer from memory could settle at
// once (a microtask), but then a tight `await cacheGet()` loop during an outage would never
// let timers and I/O run: not the breaker's probe that ends the outage, not the health
// endpoint that reports it.

let resolvers = [];
let values = [];
let scheduled = false;

function flush() {
  const r = resolvers;
  const v = values;
  resolvers = [];
  values = [];
  scheduled = false;
  for (let i = 0; i < r.length; i++) r[i](v[i]);
}

/** A promise of `value`, fulfilled on the next turn of the event loop. */
function nextTurn(value) {
  return new Promise((resolve) => {
    resolvers.push(resolve);
    values.push(value);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
}

module.exports = { nextTurn };
