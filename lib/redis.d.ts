/// <reference types="node" />
export * from './errors';

export interface ClientOptions {
  /** redis://[user[:password]@]host[:port][/db], or the word `disabled`. Overrides REDIS_URL. */
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  /** CLIENT SETNAME on every connection (no spaces). */
  name?: string;
  /** Milliseconds for DNS + TCP connect + handshake. Default 10000. */
  connectTimeout?: number;
  /** Milliseconds a command may wait for its reply; 0 for none. Default 5000. */
  commandTimeout?: number;
  /** TCP keep-alive delay in milliseconds; 0 turns it off. Default 30000. */
  keepAlive?: number;
  noDelay?: boolean;
  /** Commands accepted but not yet written, at most. Default 10000. */
  maxQueue?: number;
  /** The largest value cacheSet accepts, in bytes. Default 64 MiB. */
  maxValueBytes?: number;
  reconnectBaseDelay?: number;
  reconnectMaxDelay?: number;
  /** TLS is not supported yet: any truthy value throws UnsupportedError. */
  tls?: false | null;
}

export type RedisArg = string | Buffer | number;
export type RedisReply = string | number | null | Buffer | Error | RedisReply[];

export interface ClientStatus {
  state: 'idle' | 'connecting' | 'ready' | 'down' | 'closing' | 'closed';
  ready: boolean;
  host: string;
  port: number;
  db: number;
  lastError: { code: string; message: string; at: number } | null;
  reconnectAttempts: number;
  connectionsOpened: number;
  inFlight: number;
  queued: number;
  fallbacks: string[];
}

export class RedisClient {
  constructor(options?: ClientOptions, env?: NodeJS.ProcessEnv);
  call(command: string, ...args: RedisArg[]): Promise<any>;
  callBuffer(command: string, ...args: RedisArg[]): Promise<any>;
  get(key: string | Buffer): Promise<string | null>;
  getBuffer(key: string | Buffer): Promise<Buffer | null>;
  set(key: string | Buffer, value: string | Buffer, ttlSec?: number): Promise<'OK'>;
  mget(keys: Array<string | Buffer>): Promise<Array<string | null>>;
  del(...keys: Array<string | Buffer>): Promise<number>;
  unlink(...keys: Array<string | Buffer>): Promise<number>;
  quit(): Promise<void>;
  disconnect(): void;
  noteFallback(source: string, active: boolean): void;
  status(): ClientStatus;
  readonly options: Readonly<Omit<ClientOptions, 'url' | 'tls'>> & { enabled: boolean };
}

/** The process-wide client (created on first call), or null when REDIS_URL=disabled. */
export function getRedisClient(): RedisClient | null;
export function isRedisEnabled(): boolean;
export function createClient(options?: ClientOptions): RedisClient;
export function quitRedisClient(): Promise<void>;
