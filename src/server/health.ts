/**
 * `GET /healthz` (the process answers) and `GET /readyz` (the service can do its job: Temporal
 * answers, a worker polls the task queue, Prelude — or the sandbox — answers). Readiness is worked
 * out at most once every few seconds, whatever the number of probes, so probes cannot load Temporal.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ErrorCode } from '../errors';
import { ServiceError } from './errors';
import { errorAnswers } from './schemas';

/** What readiness checks. */
export interface ReadinessOptions {
  client: Client;
  /** The task queue a worker must poll. */
  taskQueue: string;
  /** Prelude's base URL (or the sandbox's); absent: not checked. */
  preludeUrl?: string;
  /** How long an answer is reused (default 5 s). */
  cacheMs?: number;
}

/** A readiness verdict: ready, or the first reason not to be. */
type Readiness = { ready: true } | { ready: false; code: ErrorCode; message: string };

/** Each check's deadline. */
const checkTimeoutMs = 2_000;

/**
 * A poller seen this recently is a worker still polling: Temporal remembers pollers for minutes, and
 * a long poll renews its entry at least every ~70 s.
 */
const pollerFreshMs = 2 * 60_000;

/** Registers the health routes. */
export async function healthRoutes(app: FastifyInstance, options: ReadinessOptions): Promise<void> {
  const readiness = cachedReadiness(options);
  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.get(
    '/healthz',
    {
      logLevel: 'warn',
      schema: {
        operationId: 'liveness',
        summary: 'Liveness: the process answers',
        description: 'Answers as long as the process serves requests; asks nothing of Temporal or Prelude.',
        tags: ['operations'],
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }).describe('alive'), ...errorAnswers() },
      },
    },
    async () => ({ status: 'ok' as const }),
  );
  routes.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        operationId: 'readiness',
        summary: 'Readiness: Temporal answers, a worker polls the task queue, Prelude answers',
        description: 'Worked out at most once every 5 s, however many probes ask.',
        tags: ['operations'],
        security: [],
        response: {
          200: z.object({ status: z.literal('ready') }).describe('ready'),
          // The first check that failed.
          ...errorAnswers('temporal_unavailable', 'no_worker', 'prelude_unavailable'),
        },
      },
    },
    async () => {
      const verdict = await readiness();
      if (!verdict.ready) throw new ServiceError(verdict.code, verdict.message);
      return { status: 'ready' as const };
    },
  );
}

/** Readiness, worked out at most once per `cacheMs`; concurrent probes share one evaluation. */
function cachedReadiness(options: ReadinessOptions): () => Promise<Readiness> {
  const cacheMs = options.cacheMs ?? 5_000;
  let cached: { at: number; verdict: Promise<Readiness> } | undefined;
  return () => {
    if (!cached || Date.now() - cached.at >= cacheMs) {
      cached = { at: Date.now(), verdict: evaluate(options) };
    }
    return cached.verdict;
  };
}

async function evaluate({ client, taskQueue, preludeUrl }: ReadinessOptions): Promise<Readiness> {
  const [temporalUp, polled, preludeUp] = await Promise.all([
    temporalAnswers(client),
    workerPolls(client, taskQueue),
    preludeUrl === undefined ? true : preludeAnswers(preludeUrl),
  ]);
  if (!temporalUp) return { ready: false, code: 'temporal_unavailable', message: 'Temporal does not answer' };
  if (!polled) {
    return { ready: false, code: 'no_worker', message: `no worker polls the task queue ${taskQueue}` };
  }
  if (!preludeUp) return { ready: false, code: 'prelude_unavailable', message: 'Prelude does not answer' };
  return { ready: true };
}

async function temporalAnswers(client: Client): Promise<boolean> {
  try {
    await client.connection.withDeadline(Date.now() + checkTimeoutMs, () =>
      client.connection.workflowService.getSystemInfo({}),
    );
    return true;
  } catch {
    return false;
  }
}

/** Whether a worker has polled the task queue's workflow tasks lately (DescribeTaskQueue's pollers). */
async function workerPolls(client: Client, taskQueue: string): Promise<boolean> {
  try {
    const { pollers } = await client.connection.withDeadline(Date.now() + checkTimeoutMs, () =>
      client.connection.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    const freshSince = Date.now() - pollerFreshMs;
    return (pollers ?? []).some((poller) => {
      const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
      return seconds === 0 || seconds * 1000 >= freshSince;
    });
  } catch {
    return false;
  }
}

/** Whether Prelude (or the sandbox) gives any answer short of a server error. */
async function preludeAnswers(baseUrl: string): Promise<boolean> {
  try {
    const response = await fetch(baseUrl, { signal: AbortSignal.timeout(checkTimeoutMs) });
    await response.body?.cancel();
    return response.status < 500;
  } catch {
    return false;
  }
}
