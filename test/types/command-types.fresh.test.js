'use strict';
// Proves lib/commands.d.ts, the declarations of the generated command methods, is what
// scripts/gen-command-types.js writes from the command table installed now and from the
// methods RedisClient has by hand: after a table update or a new hand-written method, the
// fix is `node scripts/gen-command-types.js`.
const fs = require('fs');
const path = require('path');
const { renderCommandTypes } = require('../../scripts/gen-command-types');
const { COMMANDS, handWritten } = require('../../lib/client/commands');
const { RedisClient } = require('../../lib/client/client');

const file = path.join(__dirname, '..', '..', 'lib', 'commands.d.ts');

test('lib/commands.d.ts is up to date (else run `node scripts/gen-command-types.js`)', () => {
  const checkedIn = fs.readFileSync(file, 'utf8');
  expect(checkedIn === renderCommandTypes()).toBe(true);
});

test('it declares a method for every generated command', () => {
  const text = fs.readFileSync(file, 'utf8');
  for (const name of COMMANDS) {
    if (handWritten(RedisClient.prototype, name)) continue;
    expect(text).toContain(`\n  ${name}(`);
    expect(text).toContain(`\n  ${name}Buffer(`);
  }
});
