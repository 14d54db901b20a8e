import { DefaultLogger, Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';

/**
 * Workers under test log their lifecycle at INFO; only warnings help when reading a test run. Of
 * those, the SDK's "Activity failed" for a Prelude error (`Prelude.*`: the sandbox's injected 500s,
 * cut connections and refusals, which the tests ask for) is dropped: ~150 of them, a dozen lines
 * each, buried the rest. TEST_LOG_LEVEL=debug shows everything.
 */
class TestLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (this.level !== 'DEBUG' && isInjectedPreludeFailure(message, meta)) return;
    super.log(level, message, meta);
  }
}

function isInjectedPreludeFailure(message: string, meta: LogMetadata | undefined): boolean {
  const error: unknown = meta?.error;
  if (message !== 'Activity failed' || !(error instanceof Error)) return false;
  const type = (error as Error & { type?: unknown }).type;
  return typeof type === 'string' && type.startsWith('Prelude.');
}

Runtime.install({ logger: new TestLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN') });
