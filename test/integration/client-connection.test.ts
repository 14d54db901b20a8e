/**
 * The client connection the service, the worker's activities and backend code use, closed while a
 * call to an unreachable Temporal waits to be retried — as when the service is stopped during a
 * Temporal outage. The SDK retries from a timer; grpc-js then throws from that timer, and an
 * uncaught exception would end the process instead of letting it stop cleanly.
 */
import { status } from '@grpc/grpc-js';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { clientConnectionOptions } from '../../src/connection';
import { freePort } from '../../src/free-port';
import { loadConfig } from '../../temporal.config';

describe('a client connection closed while a call waits to be retried', () => {
  it('ends that call with a CANCELLED error instead of throwing from the retry timer', async () => {
    const unreachable = `127.0.0.1:${await freePort()}`;
    const connection = Connection.lazy(
      clientConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: unreachable }).temporal),
    );
    const outcome = connection.workflowService.getSystemInfo({}).then(
      () => 'answered',
      (error: unknown) => error,
    );
    // Every attempt is refused at once, so the call spends this time between retries.
    await sleep(500);
    await connection.close();

    const settled = await Promise.race([outcome, sleep(10_000, 'still pending', { ref: false })]);
    expect(settled).toMatchObject({ code: status.CANCELLED, details: 'Channel has been shut down' });
    expect(isGrpcServiceError(settled)).toBe(true);
  });
});
