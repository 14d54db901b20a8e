/**
 * `/readyz` means the service can do its job — Temporal answers, a worker polls the task queue,
 * Prelude answers — and probes cannot load Temporal: the verdict is worked out once per period.
 * The Temporal client is a stand-in here, so each case can make one part fail.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { healthRoutes } from '../../src/server/health';
import { answerError } from '../../src/server/errors';
import { eventually } from '../support/eventually';
import { request } from './offline-service';

interface Poller {
  lastAccessTime?: { seconds: number };
}

function fakeTemporal(state: { up: boolean; pollers: Poller[] }) {
  const calls = { systemInfo: 0, describeTaskQueue: 0 };
  const client = {
    options: { namespace: 'default' },
    connection: {
      withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
      workflowService: {
        getSystemInfo: async () => {
          calls.systemInfo += 1;
          if (!state.up) throw new Error('unavailable');
          return {};
        },
        describeTaskQueue: async () => {
          calls.describeTaskQueue += 1;
          if (!state.up) throw new Error('unavailable');
          return { pollers: state.pollers };
        },
      },
    },
  } as unknown as Client;
  return { client, calls };
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function readinessApp(client: Client, preludeUrl?: string, cacheMs = 60_000) {
  const app = Fastify();
  apps.push(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // As the service answers a route's error.
  app.setErrorHandler(answerError);
  await app.register(healthRoutes, { client, taskQueue: 'prelude-verify', preludeUrl, cacheMs });
  return app;
}

const now = () => ({ seconds: Math.floor(Date.now() / 1000) });

describe('readiness', () => {
  let prelude: Server;
  let preludeUrl: string;
  let preludeStatus = 404;
  beforeAll(async () => {
    prelude = createServer((_request, response) => response.writeHead(preludeStatus).end());
    await new Promise<void>((resolve) => prelude.listen(0, '127.0.0.1', resolve));
    preludeUrl = `http://127.0.0.1:${(prelude.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => prelude.close(() => resolve())));

  it('is ready when Temporal answers, a worker polled lately and Prelude answers (any answer short of a 5xx)', async () => {
    const { client } = fakeTemporal({ up: true, pollers: [{ lastAccessTime: now() }] });
    const app = await readinessApp(client, preludeUrl);
    const answer = await request(app, { method: 'GET', url: '/readyz' });
    expect([answer.statusCode, answer.json()]).toEqual([200, { status: 'ready' }]);
    expect((await request(app, { method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });

  it.each([
    ['Temporal does not answer', { up: false, pollers: [] }, 'temporal_unavailable'],
    ['no worker polls', { up: true, pollers: [] }, 'no_worker'],
    [
      'the only poller is long gone',
      { up: true, pollers: [{ lastAccessTime: { seconds: 1_000 } }] },
      'no_worker',
    ],
  ])('is not ready when %s', async (_case, state, code) => {
    const { client } = fakeTemporal(state);
    const app = await readinessApp(client);
    const answer = await request(app, { method: 'GET', url: '/readyz' });
    expect(answer.statusCode).toBe(503);
    expect(answer.json()).toEqual({ code, message: expect.any(String) });
  });

  it('is not ready when Prelude answers 5xx or not at all', async () => {
    const { client } = fakeTemporal({ up: true, pollers: [{ lastAccessTime: now() }] });
    preludeStatus = 502;
    const failing = await readinessApp(client, preludeUrl);
    expect((await request(failing, { method: 'GET', url: '/readyz' })).json()).toMatchObject({
      code: 'prelude_unavailable',
    });
    preludeStatus = 404;
    const unreachable = await readinessApp(client, 'http://127.0.0.1:9');
    expect((await request(unreachable, { method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  });

  it('asks Temporal once per period however many probes come', async () => {
    const state = { up: true, pollers: [{ lastAccessTime: now() }] };
    const { client, calls } = fakeTemporal(state);
    // A period long enough for the first probes to fall inside it even on a loaded machine.
    const app = await readinessApp(client, undefined, 2_000);
    const answers = await Promise.all(
      Array.from({ length: 25 }, () => request(app, { method: 'GET', url: '/readyz' })),
    );
    expect(answers.every((answer) => answer.statusCode === 200)).toBe(true);
    expect(calls).toEqual({ systemInfo: 1, describeTaskQueue: 1 });

    state.up = false;
    expect((await request(app, { method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    // Probe until the verdict is worked out again: however many probes that takes, Temporal is
    // asked once more, when the period is over.
    await eventually(async () => (await request(app, { method: 'GET', url: '/readyz' })).statusCode === 503, {
      description: 'the next period’s verdict (503: Temporal is down)',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect(calls).toEqual({ systemInfo: 2, describeTaskQueue: 2 });
  });
});
