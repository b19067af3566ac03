'use strict';
// Writes lib/commands.d.ts, the declarations of the command methods lib/client/commands.js
// gives RedisClient, from the same command table (@ioredis/commands) and the same rule for
// which names are written by hand. After updating the table, run it and commit the result:
//
//   node scripts/gen-command-types.js           rewrites lib/commands.d.ts
//   node scripts/gen-command-types.js --check   exits 1 when lib/commands.d.ts is out of date
//
// test/types/command-types.fresh.test.js checks the file is what this script writes. Most
// replies are declared `any`; the commands below get the reply Redis gives them in RESP2.
const fs = require('fs');
const path = require('path');
const table = require('@ioredis/commands');
const tableVersion = require('@ioredis/commands/package.json').version;
const { RedisClient } = require('../lib/client/client');
const { Multi, Pipeline } = require('../lib/client/batch');
const { COMMANDS, commandMethods } = require('../lib/client/commands');

const OUTPUT = path.join(__dirname, '..', 'lib', 'commands.d.ts');

// [reply of the method, reply of its Buffer variant, commands]. Status replies ('OK', TYPE's)
// stay strings in a Buffer variant; bulk replies become Buffers.
const REPLIES = [
  [
    'number',
    'number',
    [
      'append', 'bitcount', 'copy', 'dbsize', 'decr', 'decrby', 'del', 'unlink', 'exists', 'expire', 'expireat', 'getbit',
      'hdel', 'hexists', 'hincrby', 'hlen', 'hset', 'hsetnx', 'hstrlen', 'incr', 'incrby', 'lastsave',
      'linsert', 'llen', 'lpush', 'lpushx', 'lrem', 'move', 'msetnx', 'persist', 'pexpire', 'pexpireat',
      'pfadd', 'pfcount', 'pttl', 'publish', 'renamenx', 'rpush', 'rpushx', 'sadd', 'scard', 'sdiffstore',
      'setbit', 'setnx', 'setrange', 'sinterstore', 'sismember', 'smove', 'srem', 'strlen', 'sunionstore',
      'touch', 'ttl', 'xack', 'xdel', 'xlen', 'zcard', 'zcount', 'zlexcount', 'zrem', 'zremrangebylex',
      'zremrangebyrank', 'zremrangebyscore',
    ],
  ],
  ['string | null', 'Buffer | null', ['getdel', 'getex', 'getset', 'hget', 'lindex', 'lmove', 'randomkey', 'rpoplpush', 'zscore']],
  ['string', 'Buffer', ['echo', 'getrange', 'hincrbyfloat', 'incrbyfloat', 'zincrby']],
  ['string', 'string', ['type']],
  ["'OK'", "'OK'", ['flushall', 'flushdb', 'hmset', 'lset', 'ltrim', 'mset', 'psetex', 'rename', 'setex']],
  [
    'string[]',
    'Buffer[]',
    [
      'hkeys', 'hvals', 'keys', 'lrange', 'sdiff', 'sinter', 'smembers', 'sunion', 'zrange', 'zrangebylex',
      'zrangebyscore', 'zrevrange', 'zrevrangebylex', 'zrevrangebyscore',
    ],
  ],
  ['(string | null)[]', '(Buffer | null)[]', ['hmget', 'mget']],
  ['Record<string, string>', 'Record<string, Buffer>', ['hgetall']],
  ['[cursor: string, elements: string[]]', '[cursor: Buffer, elements: Buffer[]]', ['hscan', 'scan', 'sscan', 'zscan']],
];

// Commands whose reply with a count is a list: [reply without, with, Buffer variant's without,
// with]. LPOP and RPOP answer nil for a missing key either way; SPOP and SRANDMEMBER an empty list.
const COUNTED = {
  lpop: ['string | null', 'string[] | null', 'Buffer | null', 'Buffer[] | null'],
  rpop: ['string | null', 'string[] | null', 'Buffer | null', 'Buffer[] | null'],
  spop: ['string | null', 'string[]', 'Buffer | null', 'Buffer[]'],
  srandmember: ['string | null', 'string[]', 'Buffer | null', 'Buffer[]'],
};

// Commands that take an object or a Map of pairs (see PAIRS_AT in lib/client/commands.js):
// the parameters before it.
const PAIRS = { hset: 'key: RedisKey, ', hmset: 'key: RedisKey, ', mset: '', msetnx: '' };

// The flags worth a word in a method's comment.
const NOTED_FLAGS = ['readonly', 'write', 'blocking', 'pubsub', 'admin'];

function replyOf(command, buffers) {
  for (const [reply, bufferReply, commands] of REPLIES) {
    if (commands.includes(command)) return buffers ? bufferReply : reply;
  }
  return 'any';
}

/** The declarations of one method: its overloads, each with and without a callback. */
function declare({ method, command, buffers }) {
  const flags = NOTED_FLAGS.filter((flag) => table.hasFlag(command, flag));
  const noted = flags.length > 0 ? ` (${flags.join(', ')})` : '';
  const lines = [`  /** ${command.toUpperCase()}${noted}${buffers ? ', bulk replies as Buffers' : ''}. */`];
  const overload = (params, reply) => {
    lines.push(`  ${method}(${params}): Promise<${reply}>;`);
    const withCallback = params.startsWith('...') ? `...args: [...args: CommandArgs, callback: Callback<${reply}>]` : `${params}, callback: Callback<${reply}>`;
    lines.push(`  ${method}(${withCallback}): Promise<${reply}>;`);
  };
  const counted = COUNTED[command];
  if (counted !== undefined) {
    const [one, many] = buffers ? counted.slice(2) : counted;
    overload('key: RedisKey', one);
    overload('key: RedisKey, count: number', many);
    return lines;
  }
  const reply = replyOf(command, buffers);
  if (PAIRS[command] !== undefined) overload(`${PAIRS[command]}pairs: CommandPairs`, reply);
  overload('...args: CommandArgs', reply);
  return lines;
}

/** The declaration of one builder method (multi(), pipeline()): it queues and returns the builder. */
function declareQueued({ method, command, buffers }) {
  const pairs = PAIRS[command] !== undefined ? [`  ${method}(${PAIRS[command]}pairs: CommandPairs): Self;`] : [];
  return [
    `  /** Queues ${command.toUpperCase()}${buffers ? ', its bulk replies as Buffers' : ''}. */`,
    ...pairs,
    `  ${method}(...args: CommandArgs): Self;`,
  ];
}

/** Throws when a name above is not in the table (a typo, or a command the table dropped). */
function checkNames() {
  const named = [...REPLIES.flatMap(([, , commands]) => commands), ...Object.keys(COUNTED), ...Object.keys(PAIRS)];
  const unknown = named.filter((name) => !COMMANDS.includes(name));
  if (unknown.length > 0) throw new Error(`gen-command-types: not in the command table: ${unknown.join(', ')}`);
}

/** The text of lib/commands.d.ts. */
function renderCommandTypes() {
  checkNames();
  const methods = commandMethods(RedisClient.prototype);
  // The builders' own names (exec, discard) are written by hand on both.
  const onPipeline = new Set(commandMethods(Pipeline.prototype).map(({ method }) => method));
  const queued = commandMethods(Multi.prototype).filter(({ method }) => onPipeline.has(method));
  return [
    `// Generated by scripts/gen-command-types.js from @ioredis/commands ${tableVersion}: do not edit.`,
    '// A command method takes its arguments as call() does, arrays flattened one level, and an',
    '// optional trailing callback; it returns the promise either way. See lib/client/commands.js.',
    '/// <reference types="node" />',
    "import type { RedisArg } from './redis';",
    '',
    '/** An argument of a command method; a bigint goes in decimal. */',
    'export type CommandArg = RedisArg | bigint;',
    '/** A command method\'s arguments: each array argument\'s elements go in its place. */',
    'export type CommandArgs = Array<CommandArg | CommandArg[]>;',
    '/** Field/value pairs for HSET, HMSET, MSET and MSETNX. */',
    'export type CommandPairs = Record<string, CommandArg> | Map<CommandArg, CommandArg>;',
    'export type RedisKey = string | Buffer;',
    '/** Called with (null, result) or (err), as ioredis calls it. */',
    'export type Callback<T> = (err: Error | null, result?: T) => void;',
    '',
    `/** The ${methods.length} command methods of RedisClient besides those written by hand. */`,
    'export interface RedisCommands {',
    ...methods.flatMap(declare),
    '}',
    '',
    `/** The ${queued.length} command methods of multi() and pipeline(): each queues its command. */`,
    'export interface BatchCommands<Self> {',
    ...queued.flatMap(declareQueued),
    '}',
    '',
  ].join('\n');
}

if (require.main === module) {
  const text = renderCommandTypes();
  const current = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, 'utf8') : null;
  if (process.argv.includes('--check')) {
    if (current !== text) {
      console.error('lib/commands.d.ts is out of date: run `node scripts/gen-command-types.js`');
      process.exit(1);
    }
  } else if (current !== text) {
    fs.writeFileSync(OUTPUT, text);
    console.log(`wrote ${path.relative(process.cwd(), OUTPUT)}`);
  }
}

module.exports = { renderCommandTypes };
