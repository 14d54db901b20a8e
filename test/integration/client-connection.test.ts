/**
 * The client connection the service, the worker's activities and backend code use, when Temporal is
 * unreachable or the connection is closed: as when the service is stopped during a Temporal outage,
 * or an activity calls Temporal after its worker closed the connection. A call must end with an
 * error its caller gets, and nothing may be thrown from a gRPC or timer callback: an uncaught
 * exception there ends the process instead of letting it stop cleanly.
 *
 * No Temporal is mocked: the connections go to a port where nothing listens, or to a small gRPC
 * server that answers WorkflowService's GetSystemInfo with the statuses a Temporal would.
 */
import { Metadata, Server, ServerCredentials, status, type ServiceError } from '@grpc/grpc-js';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { clientConnectionOptions } from '../../src/connection';
import { freePort } from '../../src/free-port';
import { loadConfig } from '../../temporal.config';

const { GetSystemInfoResponse } = temporal.api.workflowservice.v1;

/** Errors thrown from callbacks while a test runs, which would end a service's process. */
let uncaught: unknown[] = [];
const recordUncaught = (error: unknown) => uncaught.push(error);
beforeEach(() => {
  uncaught = [];
  process.on('uncaughtException', recordUncaught);
});
afterEach(() => {
  process.off('uncaughtException', recordUncaught);
});

function connectionTo(address: string): Connection {
  return Connection.lazy(clientConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: address }).temporal));
}

/** The call's error (or 'answered'), or 'still pending' if it has not settled within 10 s. */
async function outcomeOf(call: Promise<unknown>): Promise<unknown> {
  const outcome = call.then(
    () => 'answered',
    (error: unknown) => error,
  );
  return Promise.race([outcome, sleep(10_000, 'still pending', { ref: false })]);
}

/**
 * A gRPC server with WorkflowService's GetSystemInfo, answering attempt n with `answers[n - 1]`: a
 * status code, or OK with a response.
 */
async function systemInfoServer(
  answers: status[],
): Promise<{ address: string; attempts: () => number; stop: () => void }> {
  const server = new Server();
  let attempts = 0;
  const asIs = (bytes: Buffer) => bytes;
  server.addService(
    {
      GetSystemInfo: {
        path: '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo',
        requestStream: false,
        responseStream: false,
        requestSerialize: asIs,
        requestDeserialize: asIs,
        responseSerialize: asIs,
        responseDeserialize: asIs,
      },
    },
    {
      GetSystemInfo: (
        _call: unknown,
        callback: (error: Partial<ServiceError> | null, value?: Buffer) => void,
      ) => {
        attempts++;
        const code = answers[attempts - 1] ?? status.OK;
        if (code === status.OK) {
          callback(
            null,
            Buffer.from(GetSystemInfoResponse.encode({ serverVersion: `attempt ${attempts}` }).finish()),
          );
        } else {
          callback({ code, details: `attempt ${attempts}`, metadata: new Metadata() });
        }
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return { address: `127.0.0.1:${port}`, attempts: () => attempts, stop: () => server.forceShutdown() };
}

describe('a client connection closed while a call waits to be retried', () => {
  it('ends that call with a CANCELLED error instead of throwing from the retry timer', async () => {
    const connection = connectionTo(`127.0.0.1:${await freePort()}`);
    const call = connection.workflowService.getSystemInfo({});
    // Every attempt is refused at once, so the call spends this time between retries.
    await sleep(500);
    await connection.close();

    const settled = await outcomeOf(call);
    expect(settled).toMatchObject({ code: status.CANCELLED, details: 'Channel has been shut down' });
    expect(isGrpcServiceError(settled)).toBe(true);
    expect(uncaught).toEqual([]);
  });
});

describe('a call on a client connection already closed', () => {
  // Its first attempt cannot be created: the SDK's retries threw "savedMessageNext is not a
  // function" from the CANCELLED status that reports it.
  it('ends with a CANCELLED error, and nothing is thrown uncaught', async () => {
    const connection = connectionTo(`127.0.0.1:${await freePort()}`);
    await connection.close();

    const settled = await outcomeOf(connection.workflowService.getSystemInfo({}));
    expect(uncaught).toEqual([]);
    expect(settled).toMatchObject({ code: status.CANCELLED, details: 'Channel has been shut down' });
    expect(isGrpcServiceError(settled)).toBe(true);
  });
});

describe('a call retried after UNAVAILABLE', () => {
  it('ends with the retry’s non-retryable status, and nothing is thrown uncaught', async () => {
    const server = await systemInfoServer([status.UNAVAILABLE, status.NOT_FOUND]);
    const connection = connectionTo(server.address);
    try {
      const settled = await outcomeOf(connection.workflowService.getSystemInfo({}));
      expect(uncaught).toEqual([]);
      expect(settled).toMatchObject({ code: status.NOT_FOUND, details: 'attempt 2' });
      expect(isGrpcServiceError(settled)).toBe(true);
      expect(server.attempts()).toBe(2);
    } finally {
      await connection.close();
      server.stop();
    }
  });

  it('answers with the retry’s response', async () => {
    const server = await systemInfoServer([status.UNAVAILABLE, status.UNAVAILABLE, status.OK]);
    const connection = connectionTo(server.address);
    try {
      const response = await connection.workflowService.getSystemInfo({});
      expect(response.serverVersion).toBe('attempt 3');
      expect(uncaught).toEqual([]);
    } finally {
      await connection.close();
      server.stop();
    }
  });

  it('is not retried once its caller cancels it', async () => {
    const server = await systemInfoServer([status.UNAVAILABLE, status.UNAVAILABLE, status.UNAVAILABLE]);
    const connection = connectionTo(server.address);
    const abort = new AbortController();
    try {
      const call = connection.withAbortSignal(abort.signal, () =>
        connection.workflowService.getSystemInfo({}),
      );
      // Once the first attempt is answered, the call waits 136-204 ms to be retried.
      while (server.attempts() < 1) await sleep(5);
      abort.abort();
      const settled = await outcomeOf(call);
      expect(settled).toMatchObject({ code: status.CANCELLED });
      expect(uncaught).toEqual([]);
      await sleep(300);
      expect(server.attempts()).toBe(1);
    } finally {
      await connection.close();
      server.stop();
    }
  });
});
