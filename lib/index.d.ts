export * from './redis';
export * from './cache';
