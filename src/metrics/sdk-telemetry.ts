/**
 * The Temporal SDK's own worker metrics (task slots, poll latencies, workflow and activity task
 * counts, sticky cache…), which Core exports in Prometheus format from a port of its own. The worker's
 * `/metrics` serves them along with the domain metrics, so Core listens on a loopback port only.
 */
import { IllegalStateError } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { freeListenPorts } from '../free-port';

let installed: Promise<string | undefined> | undefined;

/**
 * Sets up the process's Temporal runtime to export metrics, once: later calls give the same answer.
 * It must run before the process's first worker connection, which sets the runtime up without them.
 *
 * @returns where Core serves its metrics, or undefined when they are not exported: the runtime was set
 *   up already (a test process installs its own), or could not export them. The domain metrics still are.
 */
export function installSdkMetrics(): Promise<string | undefined> {
  installed ??= (async () => {
    const [port] = await freeListenPorts(1);
    const bindAddress = `127.0.0.1:${port}`;
    try {
      Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress } } } });
      return `http://${bindAddress}/metrics`;
    } catch (error) {
      // Metrics are no reason not to verify: a runtime that cannot export them is set up without.
      if (!(error instanceof IllegalStateError)) {
        console.warn(`WARNING: the Temporal SDK's metrics are not exported: ${(error as Error).message}`);
      }
      return undefined;
    }
  })();
  return installed;
}
