/**
 * Stopping the HTTP service (`npm run server` on SIGTERM, `npm start` on Ctrl-C) while a caller's
 * request is in flight on a keep-alive connection — as HTTP clients, and the sandbox posting its
 * webhooks, keep them. The service started as production starts it (`runServer`), against the
 * run's dev server; Prelude is a server of the test's own that never answers, so a readiness probe
 * stays in flight for its 2 s check.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { clientConnectionOptions } from '../../src/connection';
import { runServer } from '../../src/stack';
import { loadConfig } from '../../temporal.config';
import { eventually } from '../support/eventually';

const webhookPublicKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

describe('stopping the HTTP service', () => {
  let connection: Connection;
  let silentPrelude: Server;
  let preludeUrl: string;
  let probesReceived = 0;

  beforeAll(async () => {
    connection = await Connection.connect(
      clientConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS }).temporal),
    );
    // Takes every request and never answers it.
    silentPrelude = createServer(() => {
      probesReceived += 1;
    });
    await new Promise<void>((resolve) => silentPrelude.listen(0, '127.0.0.1', resolve));
    preludeUrl = `http://127.0.0.1:${(silentPrelude.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    silentPrelude.closeAllConnections();
    await new Promise<void>((resolve) => silentPrelude.close(() => resolve()));
    await connection.close();
  });

  it('takes seconds, not the keep-alive timeout, when a request was in flight as it began', async () => {
    const server = await runServer(
      loadConfig({
        TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS,
        PRELUDE_BASE_URL: preludeUrl,
        PRELUDE_WEBHOOK_PUBLIC_KEY: webhookPublicKey,
        PORT: '0',
        VERIFY_ID_KEY: randomBytes(24).toString('base64url'),
        PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      }),
      { client: new Client({ connection }) },
    );
    // A client that keeps its connection open between requests, as fetch and the SDKs do.
    const agent = new Agent({ keepAlive: true });
    try {
      const before = probesReceived;
      const probe = new Promise<number>((resolve, reject) => {
        request(`${server.url}/readyz`, { agent }, (response: IncomingMessage) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        })
          .on('error', reject)
          .end();
      });
      await eventually(() => probesReceived > before, {
        description: 'the readiness probe in flight (asking Prelude)',
      });

      const stopping = Date.now();
      const stopped = server.stop().then(() => Date.now() - stopping);
      // The probe ends after its 2 s Prelude check (503: Prelude does not answer).
      expect(await probe).toBe(503);
      // Once nothing is in flight, stopping has nothing left to wait for. Fastify's default keeps
      // the idle keep-alive connection until its keep-alive timeout (72 s) instead: a deployment's
      // SIGTERM is then answered by SIGKILL, and `npm start` seems to hang on Ctrl-C.
      // Unref'd: once the race is decided, the pending timer must not keep jest's worker alive.
      const outcome = await Promise.race([stopped, sleep(15_000, 'still stopping' as const, { ref: false })]);
      expect(outcome).not.toBe('still stopping');
    } finally {
      // Lets a service that is still stopping finish now (the client side closes the connection).
      agent.destroy();
    }
  }, 30_000);
});
