/**
 * `npm run test:cluster`: the suites in test/cluster, each on a production-shaped Temporal cluster
 * of its own (tools/cluster: PostgreSQL, four server services, two workers, two HTTP services).
 * Not part of `npm test`. One suite at a time: a cluster takes the machine's two cores.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/cluster'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  // p-retry and its dependency ship only ES modules; jest's CommonJS runtime needs them transformed.
  transformIgnorePatterns: ['/node_modules/(?!(p-retry|is-network-error)/)'],
  globalSetup: '<rootDir>/test/cluster/global-setup.ts',
  testTimeout: 120_000,
  maxWorkers: 1,
};
