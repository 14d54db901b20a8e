/**
 * One Temporal dev server serves the whole run (test/setup/global-setup.ts); suites connect to it
 * through TEMPORAL_ADDRESS. Set TEMPORAL_ADDRESS yourself to run against a server you started.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The cluster's suites run on their own (`npm run test:cluster`, jest.cluster.config.js): each
  // starts a production-shaped cluster that takes the machine's two cores.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/cluster/'],
  transform: {
    '^.+\\.(t|j)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  // p-retry and its dependency ship only ES modules; jest's CommonJS runtime needs them transformed.
  transformIgnorePatterns: ['/node_modules/(?!(p-retry|is-network-error)/)'],
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  setupFiles: ['<rootDir>/test/setup/quiet-runtime.ts'],
  testTimeout: 60_000,
  // Two cores: the dev server and the workers under test need the second one.
  maxWorkers: 2,
  // A worker's event loop is empty at the end, but the process then frees its heap (~800 MB after
  // its share of the suites) and the Temporal SDK's native runtimes: still alive 0.3 s after its
  // `exit` event here, and at times past jest's default 500 ms, after which jest kills it and warns
  // of a leak that is not there. A real leak (a pending timer or socket) keeps a worker alive
  // longer than this, and is still reported.
  workerGracefulExitTimeout: 5_000,
};
