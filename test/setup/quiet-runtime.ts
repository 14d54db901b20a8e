import { DefaultLogger, Runtime } from '@temporalio/worker';

// Workers under test log their lifecycle at INFO; only warnings help when reading a test run.
Runtime.install({ logger: new DefaultLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN') });
