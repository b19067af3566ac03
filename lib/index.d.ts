export * from './redis';
export * from './cache';
export * from './ratelimit';
export * from './health';
export * from './metrics';
