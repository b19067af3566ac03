'use strict';
// Jest runs the JS suites against one real redis-server started by the global setup.
// Each suite file gets a database of its own (test/helpers/suite-db.js) and empties it
// before each test, so two workers never see each other's keys.
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.js'],
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.js',
  testTimeout: 30000,
  maxWorkers: 2,
  // A worker that grew past this after a suite file is replaced before the next one, so
  // one heavy suite never leaves the next with too little heap.
  workerIdleMemoryLimit: '1GB',
};
