/// <reference types="node" />
import { EventEmitter } from 'events';
import type { ClientMetrics } from './metrics';
import type { RedisCommands, BatchCommands } from './commands';
export * from './errors';
export type { RedisCommands, BatchCommands, CommandArg, CommandArgs, CommandPairs, RedisKey, Callback } from './commands';

export interface ClientOptions {
  /** redis://[user[:password]@]host[:port][/db], or the word `disabled`. Overrides REDIS_URL. */
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  /**
   * CLIENT SETNAME on every connection (no spaces). With `sentinels`, the primary's name as
   * the sentinels know it (ioredis's meaning); CLIENT SETNAME is then `connectionName`.
   */
  name?: string;
  /** Milliseconds for DNS + TCP connect + handshake. Default 10000. */
  connectTimeout?: number;
  /** Milliseconds a command may wait for its reply; 0 for none. Default 5000. */
  commandTimeout?: number;
  /** TCP keep-alive delay in milliseconds; 0 turns it off. Default 30000. */
  keepAlive?: number;
  noDelay?: boolean;
  /**
   * Commands that may wait to be written: for a connection, behind a socket that takes no
   * more, or for replies to free in-flight room. Past it, calls fail at once with
   * ERR_QUEUE_FULL. A burst issued in one turn while connected does not count against it
   * (up to maxInFlight). Default 10000.
   */
  maxQueue?: number;
  /** Commands written and not yet answered, at most. Default 100000. */
  maxInFlight?: number;
  /**
   * Bytes of commands the socket has not taken yet (queued or handed to the kernel's
   * writer), at most; a command is always accepted when nothing waits. Default 128 MiB.
   */
  maxQueueBytes?: number;
  /** The largest argument of any command (and the largest value cacheSet accepts), in bytes. Default 64 MiB. */
  maxValueBytes?: number;
  /** The largest bulk string accepted from the server, in bytes. Default 512 MiB (Redis's proto-max-bulk-len). */
  maxBulkBytes?: number;
  /** The most elements one array reply may announce. Default 16777216. */
  maxAggregateElements?: number;
  /** The longest reply line (status, error, integer, header), in bytes. Default 65536. */
  maxLineBytes?: number;
  /** How deeply array replies may nest, 1 to 7. Default 7. */
  maxDepth?: number;
  reconnectBaseDelay?: number;
  reconnectMaxDelay?: number;
  /**
   * Prepended to every key argument (found from the command table's key positions), to the
   * cache's keys and cacheDelPrefix's scan, and to the limiter's keys. Not to channels.
   */
  keyPrefix?: string | Buffer;
  /**
   * Asked before every reconnect, the first after a drop too: `times` (1, 2, … since the
   * last connection that worked) → the wait in ms, or null (anything not a number) to stop:
   * the client then ends ('end'). Default: the built-in backoff, which never gives up.
   */
  retryStrategy?: ((times: number) => number | null | undefined | void) | null;
  /**
   * Failed connection attempts a command not yet written waits through before it fails
   * (null: until its commandTimeout). Default 0: calls fail at once while Redis is down.
   * Calls with a fallback (the cache's, the limiter's) never wait; a written command is
   * never resent.
   */
  maxRetriesPerRequest?: number | null;
  /** false connects when the client is created (ioredis's default); true (or left out) on the first command. */
  lazyConnect?: boolean;
  /** ioredis's name for `name`. */
  connectionName?: string;
  /** Connections kept for blocking commands (BLPOP, XREAD BLOCK…), each running one at a time. Default 4. */
  maxBlockingConnections?: number;
  /**
   * TLS, with Node's tls.connect names: true (or a rediss:// URL, or REDIS_TLS=true) for the
   * defaults, or the settings. The server is verified unless rejectUnauthorized is false.
   * false or null against a rediss:// URL is refused: never a plaintext fallback.
   */
  tls?: boolean | null | TlsOptions;
  /** Count outcomes and latencies by command in the client core (see metrics()). Default true. */
  metrics?: boolean;
  /** The circuit breaker's settings, or false for none (calls then wait for their deadlines). */
  breaker?: false | BreakerOptions;
  /**
   * Where the client reports outages (one line when Redis becomes unusable, one when it is
   * back): console by default (silent when NODE_ENV=test), any object with error/warn/info
   * (pino, winston…), or false for none.
   */
  logger?: false | null | Logger;
  /**
   * Redis Cluster: true (the host and port, or url, are a seed node), the seed nodes
   * ('host:port', a redis:// or rediss:// URL, or { host, port }), or the settings. Default:
   * REDIS_CLUSTER_NODES ('host1:6379,host2:6379') when set. Every node's connection takes
   * the other options (password, tls, timeouts, breaker).
   */
  cluster?: boolean | ClusterNode[] | ClusterOptions;
  /**
   * Redis Sentinel: the sentinels to ask where the primary is (default port 26379). With it,
   * `name` is the primary's name as the sentinels know it (ioredis's meaning), and
   * connectionName is CLIENT SETNAME. Default: REDIS_SENTINELS and REDIS_SENTINEL_NAME.
   */
  sentinels?: ClusterNode[];
  /** AUTH for the sentinels (REDIS_SENTINEL_PASSWORD); the primary's is `password`. */
  sentinelPassword?: string;
  sentinelUsername?: string;
  /** Only 'master': a Sentinel client talks to the primary. */
  role?: 'master';
}

export type ClusterNode = string | { host: string; port?: number } | { url: string } | { socket: { host: string; port?: number } };

export interface ClusterOptions {
  /** The seed nodes; any reachable one gives the slot map. node-redis's name: rootNodes. */
  nodes?: ClusterNode[];
  rootNodes?: ClusterNode[];
  /** MOVED / ASK / TRYAGAIN followed per command, at most. Default 16. */
  maxRedirections?: number;
  /** Milliseconds between two reads of the slot map when nothing asks for one; 0: never. Default 5000. ioredis: slotsRefreshInterval. */
  refreshInterval?: number;
  slotsRefreshInterval?: number;
  /** Reads (GET, MGET, HGETALL…) go to a replica of their slot (READONLY). Default false. node-redis: useReplicas; ioredis: scaleReads 'slave'. */
  readFromReplicas?: boolean;
  useReplicas?: boolean;
  scaleReads?: 'master' | 'slave';
}

/** One node of a cluster client, in status().cluster.nodes. */
export interface ClusterNodeStatus {
  /** "host:port" */
  endpoint: string;
  role: 'primary' | 'replica';
  /** Slots it serves as primary in the current map. */
  slots: number;
  /** 'idle' until a command needs it. */
  state: ClientState;
  breaker: BreakerState;
  lastError: { code: string; message: string; at: number } | null;
  reconnectAttempts: number;
  connectionsOpened: number;
  inFlight: number;
  queued: number;
}

/** The TLS settings hirecache takes; any other tls.connect name is refused by name. */
export interface TlsOptions {
  /** Trusted CAs as PEM (the file's contents, not its name). Default: the system's trust store plus NODE_EXTRA_CA_CERTS. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** The client's certificate chain as PEM, for mutual TLS. */
  cert?: string | Buffer | Array<string | Buffer>;
  /** The client's private key as PEM, encrypted with `passphrase` if that is given. */
  key?: string | Buffer;
  passphrase?: string;
  /** The name the server's certificate must carry, also sent as SNI. Default: the host. */
  servername?: string;
  /** false skips verification of the server (a warning is logged once). Default true (unless NODE_TLS_REJECT_UNAUTHORIZED=0). */
  rejectUnauthorized?: boolean;
  /** Lowest protocol version accepted. Default 'TLSv1.2'. */
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** Highest protocol version offered. Default: the highest OpenSSL supports. */
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
}

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
}

export interface BreakerOptions {
  enabled?: boolean;
  /** Commands written (or waiting for a connect) and nothing read for this long: open. Default 25 ms. */
  stallMs?: number;
  /** This many failures in a row open it (0: off). Default 5. */
  failureThreshold?: number;
  /** Or this share of failures (0 to 100; 0: off) among at least minimumRequests over windowMs. Default 50. */
  failureRatePercent?: number;
  /** Default 10000 ms. */
  windowMs?: number;
  /** Default 20. */
  minimumRequests?: number;
  /** Opened by failures: the wait before a PING probe. Default 1000 ms. */
  openMs?: number;
  /** The longest wait between probes (doubled after each failed one). Default 30000 ms. */
  maxOpenMs?: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';
/** Why the breaker opened: Redis stalled, could not be reached, or failed commands. */
export type BreakerReason = 'stalled' | 'unreachable' | 'failures';

export type RedisArg = string | Buffer | number;
export type RedisReply = string | number | null | Buffer | Error | RedisReply[];

/** The states of a client, in the order of CLIENT_STATES. */
export type ClientState = 'idle' | 'connecting' | 'ready' | 'down' | 'closing' | 'closed';
export const CLIENT_STATES: readonly ClientState[];

export interface ClientStatus {
  state: ClientState;
  ready: boolean;
  /** null for a Sentinel client before the sentinels named the primary. */
  host: string | null;
  port: number | null;
  db: number;
  /** Whether the connection speaks TLS. */
  tls: boolean;
  breaker: BreakerState;
  breakerReason: BreakerReason | null;
  /** When the breaker last opened (epoch ms), or null. */
  breakerOpenedAt: number | null;
  lastError: { code: string; message: string; at: number } | null;
  /** When the last error happened (epoch ms), or null. */
  lastErrorTime: number | null;
  reconnectAttempts: number;
  connectionsOpened: number;
  inFlight: number;
  queued: number;
  fallbacks: string[];
  /** A cluster client: the slot map reads and redirections so far, and each node's connection. */
  cluster?: { mapReads: number; redirections: number; nodes: ClusterNodeStatus[] };
  /** A Sentinel client: the primary last named ("host:port"; host and port above say the same). */
  sentinel?: { name: string; primary: string | null; sentinels: string[] };
}

/** A message listener: strings, or Buffers when subscribed with { buffers: true }. */
export type MessageListener<T extends string | Buffer = string> = (message: T, channel: T, pattern: T | null) => void;

export interface SubscriptionGap {
  /** When the subscriber connection was lost (epoch ms). */
  from: number;
  /** When every subscription was renewed (epoch ms): messages published in between were not received. */
  to: number;
  channels: string[];
  patterns: string[];
  shardChannels: string[];
}

/** Commands queued on a builder; every command method of the client queues and returns the builder. */
export interface CommandBatch<Self> {
  call(command: string, ...args: RedisArg[]): Self;
  callBuffer(command: string, ...args: RedisArg[]): Self;
  readonly length: number;
}

/**
 * client.multi(): exec() sends MULTI … EXEC as one unit. Resolves each command's result (an
 * error reply as an Error element), or null when a WATCHed key changed; rejects EXECABORT
 * (with previousErrors) when Redis refused to queue a command, ERR_OUTCOME_UNKNOWN when the
 * connection was lost after it was written.
 */
export interface Multi extends CommandBatch<Multi>, BatchCommands<Multi> {
  exec(callback?: (err: Error | null, results?: Array<RedisReply> | null) => void): Promise<Array<RedisReply> | null>;
  /** Drops the queued commands; nothing is sent. */
  discard(): Promise<'OK'>;
}

/** client.pipeline(): exec() resolves one [error, result] pair per command, as ioredis does. */
export interface Pipeline extends CommandBatch<Pipeline>, BatchCommands<Pipeline> {
  exec(callback?: (err: Error | null, results?: Array<[Error | null, any]>) => void): Promise<Array<[Error | null, any]>>;
}

export interface RedisClientEvents {
  connect: [];
  ready: [];
  /** Not emitted when nobody listens: the logger reports it instead, and nothing throws. */
  error: [err: Error & { code: string }];
  close: [];
  reconnecting: [delayMs: number];
  end: [];
  breaker: [change: { state: BreakerState; reason: BreakerReason | null }];
  message: [channel: string, message: string];
  messageBuffer: [channel: Buffer, message: Buffer];
  pmessage: [pattern: string, channel: string, message: string];
  pmessageBuffer: [pattern: Buffer, channel: Buffer, message: Buffer];
  smessage: [channel: string, message: string];
  smessageBuffer: [channel: Buffer, message: Buffer];
  /** Subscriptions were renewed after a reconnect; messages published meanwhile were lost. */
  subscriptionGap: [gap: SubscriptionGap];
}

/** Every other command as a method, generated from the command table (lib/commands.d.ts). */
export interface RedisClient extends RedisCommands {}
export class RedisClient extends EventEmitter {
  constructor(options?: ClientOptions, env?: NodeJS.ProcessEnv);
  on<E extends keyof RedisClientEvents>(event: E, listener: (...args: RedisClientEvents[E]) => void): this;
  once<E extends keyof RedisClientEvents>(event: E, listener: (...args: RedisClientEvents[E]) => void): this;
  off<E extends keyof RedisClientEvents>(event: E, listener: (...args: RedisClientEvents[E]) => void): this;
  /** The circuit breaker's state, read from the core without a call. */
  readonly breakerState: BreakerState;
  callBuffer(command: string, ...args: RedisArg[]): Promise<any>;
  get(key: string | Buffer, callback?: (err: Error | null, value?: string | null) => void): Promise<string | null>;
  getBuffer(key: string | Buffer, callback?: (err: Error | null, value?: Buffer | null) => void): Promise<Buffer | null>;
  /** SET, with EX ttlSec when a number of seconds is given; ioredis's set(key, value, 'EX', 60, 'NX') form too (null when NX/XX prevented it). */
  set(key: string | Buffer, value: string | Buffer | number, ttlSec?: number): Promise<'OK'>;
  set(key: string | Buffer, value: string | Buffer | number, ...options: Array<string | number>): Promise<'OK' | null>;
  /**
   * Sends any command. Commands that change the connection's state (MULTI, SUBSCRIBE,
   * SELECT…) throw CommandRefusedError naming the API to use; blocking ones (BLPOP…) run
   * on a connection of their own.
   */
  call(command: string | Buffer, ...args: RedisArg[]): Promise<any>;
  multi(commands?: Array<[string, ...RedisArg[]]>): Multi;
  pipeline(commands?: Array<[string, ...RedisArg[]]>): Pipeline;
  /** Runs fn with a connection of its own (WATCH … MULTI … EXEC, WAIT), closed when fn settles; it never reconnects. */
  isolated<T>(fn: (conn: RedisClient) => Promise<T> | T): Promise<T>;
  /** A new client with the same options (and overrides). */
  duplicate(overrides?: ClientOptions): RedisClient;
  subscribe(channels: string | string[], listener?: MessageListener<string>, options?: { buffers?: false } | false): Promise<number>;
  subscribe(channels: string | string[], listener: MessageListener<Buffer>, options: { buffers: true } | true): Promise<number>;
  subscribe(...channelsAndCallback: Array<string | ((err: Error | null, count?: number) => void)>): Promise<number>;
  psubscribe(patterns: string | string[], listener?: MessageListener<string>, options?: { buffers?: false } | false): Promise<number>;
  psubscribe(patterns: string | string[], listener: MessageListener<Buffer>, options: { buffers: true } | true): Promise<number>;
  psubscribe(...patternsAndCallback: Array<string | ((err: Error | null, count?: number) => void)>): Promise<number>;
  ssubscribe(channels: string | string[], listener?: MessageListener<string>, options?: { buffers?: false } | false): Promise<number>;
  ssubscribe(channels: string | string[], listener: MessageListener<Buffer>, options: { buffers: true } | true): Promise<number>;
  unsubscribe(channels?: string | string[], listener?: MessageListener<any>): Promise<number>;
  unsubscribe(...channels: string[]): Promise<number>;
  punsubscribe(patterns?: string | string[], listener?: MessageListener<any>): Promise<number>;
  punsubscribe(...patterns: string[]): Promise<number>;
  sunsubscribe(channels?: string | string[], listener?: MessageListener<any>): Promise<number>;
  subscriptions(): { channels: string[]; patterns: string[]; shardChannels: string[] };
  /** Only on an isolated() connection: on the shared one it throws CommandRefusedError. */
  watch(...keys: Array<string | Buffer | Array<string | Buffer>>): Promise<'OK'>;
  unwatch(): Promise<'OK'>;
  /** Connects now; resolves once the server answered (for lazyConnect: true users). */
  connect(callback?: (err: Error | null) => void): Promise<void>;
  quit(callback?: (err: Error | null, result?: 'OK') => void): Promise<'OK'>;
  disconnect(): void;
  noteFallback(source: string, active: boolean): void;
  status(): ClientStatus;
  /** The core's counters: outcomes and latency histograms by command, connection and breaker counts. */
  metrics(): ClientMetrics;
  readonly options: Readonly<Omit<ClientOptions, 'url' | 'tls'>> & {
    enabled: boolean;
    /** null for plaintext; secrets shown as '***', the trust store as 'given' or 'system'. */
    tls: null | {
      ca: 'given' | 'system'; cert: string; key: string; passphrase: string; servername: string;
      rejectUnauthorized: boolean; minVersion: string; maxVersion: string;
    };
  };
}

/** The process-wide client (created on first call), or null when REDIS_URL=disabled. */
export function getRedisClient(): RedisClient | null;
export function isRedisEnabled(): boolean;
export function createClient(options?: ClientOptions): RedisClient;

/** node-redis's form of a cluster client: createClient({ ...defaults, cluster: { rootNodes, … } }). */
export function createCluster(
  options: Omit<ClientOptions, 'cluster'> & Omit<ClusterOptions, 'nodes'> & {
    rootNodes: ClusterNode[];
    /** Every node's connection options (node-redis's name). */
    defaults?: Omit<ClientOptions, 'cluster'>;
    /** node-redis's name for maxRedirections. */
    maxCommandRedirections?: number;
  },
): RedisClient;

/**
 * ioredis's form: `new Cluster(startupNodes, options)`, the cluster's settings (scaleReads,
 * slotsRefreshInterval, maxRedirections…) beside redisOptions (every node's connection).
 */
export class Cluster extends RedisClient {
  constructor(
    startupNodes: ClusterNode[],
    options?: Omit<ClientOptions, 'cluster'> & Omit<ClusterOptions, 'nodes' | 'rootNodes'> & {
      redisOptions?: Omit<ClientOptions, 'cluster'>;
    },
  );
}
export function quitRedisClient(): Promise<void>;
