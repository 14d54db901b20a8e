/** How the benchmark scripts run: quiet workers, every part stopped whatever fails, exit code 1 on failure. */
import { DefaultLogger, Runtime } from '@temporalio/worker';

/** What a benchmark pushes for each part it starts; run in reverse order at the end. */
export type Cleanups = (() => Promise<void>)[];

/** Runs a benchmark as a script. */
export function runBenchmark(run: (cleanups: Cleanups) => Promise<void>): void {
  void (async () => {
    // Workers log their lifecycle and the workflows' own lines at INFO: noise between the JSON lines.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    // Everything started is stopped in reverse order, whatever fails.
    const cleanups: Cleanups = [];
    try {
      await run(cleanups);
    } finally {
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
      }
    }
  })().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
