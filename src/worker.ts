/**
 * The worker: runs the verification workflows and the Prelude activities on the task queue.
 * In production it loads the workflow bundle `npm run build` wrote; otherwise it bundles the
 * workflows itself at start-up.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import type { TemporalConfig } from '../temporal.config';
import { createActivities } from '../activities';
import { failureConverterPath } from './codec/failure-converter';
import { serverConnectionOptions } from './connection';
import {
  preludeCallMetrics,
  sharedWorkerMetrics,
  windowInterceptorsModule,
  windowMetricsSinks,
  type WorkerMetrics,
} from './metrics';
import { packageRoot } from './package-root';
import type { PreludeClient } from './prelude';
import { shutdownGraceMsFor } from './shutdown-grace';
import { preloadedWorkflowModules, workflowsModule } from './workflow-modules';

/** Where `npm run build` writes the prebuilt workflow bundle. */
export const workflowBundlePath = join(packageRoot(), 'dist', 'workflow-bundle.js');

/** What a verification worker needs. */
export interface VerificationWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** The client the webhook ingest signals windows with. */
  client: Client;
  /** The Prelude client the activities call (the real API or the sandbox). */
  prelude: PreludeClient;
  /** Webhook URL Prelude posts delivery reports to (`PRELUDE_CALLBACK_URL`). */
  callbackUrl?: string;
  /** From `dataConverterFor(keyRing)`: payloads and failures encrypted, so history holds no personal data in clear. */
  dataConverter: DataConverter;
  /** A prebuilt workflow bundle; defaults to `dist/workflow-bundle.js` when it exists. */
  workflowBundle?: string;
  /** Where the windows and Prelude calls are counted; defaults to {@link sharedWorkerMetrics}. */
  metrics?: WorkerMetrics;
  /**
   * How long a stopping worker lets its calls in flight finish (`WORKER_SHUTDOWN_GRACE_MS`); default:
   * as long as the longest can last with the Prelude client's timeout (see shutdownGraceMsFor).
   */
  shutdownGraceMs?: number;
}

/** The connection a worker polls with (a client's connection is `connectClient`'s). */
export function connectWorker(config: TemporalConfig): Promise<NativeConnection> {
  return NativeConnection.connect(serverConnectionOptions(config));
}

/** Creates (does not run) a worker for the verification workflows and their activities. */
export async function createVerificationWorker(options: VerificationWorkerOptions): Promise<Worker> {
  const bundle = options.workflowBundle ?? (existsSync(workflowBundlePath) ? workflowBundlePath : undefined);
  const metrics = options.metrics ?? sharedWorkerMetrics();
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities({
      prelude: options.prelude,
      callbackUrl: options.callbackUrl,
      client: options.client,
    }),
    dataConverter: options.dataConverter,
    interceptors: {
      activity: [preludeCallMetrics(metrics)],
      // A prebuilt bundle has the window interceptors in it already (see writeWorkflowBundle).
      ...(bundle ? {} : { workflowModules: [windowInterceptorsModule()] }),
    },
    sinks: windowMetricsSinks(metrics),
    // A dead worker's sticky queue is given up after 1 s (default 10 s), so its windows' next tasks
    // reach a live worker while their users still wait. A live worker takes a sticky task in
    // milliseconds; one that misses it only replays the history from the normal queue.
    stickyQueueScheduleToStartTimeout: '1 second',
    // A deploy's SIGTERM lets the calls in flight finish, not cancels them (src/shutdown-grace.ts).
    shutdownGraceTime: options.shutdownGraceMs ?? shutdownGraceMsFor(options.prelude.timeoutMs),
    ...(bundle
      ? { workflowBundle: { codePath: bundle } }
      : { workflowsPath: workflowsModule(), bundlerOptions: { preloadModules: preloadedWorkflowModules() } }),
  });
}

/** Bundles the workflows once, so workers start without webpack (production, and the test suite). */
export async function writeWorkflowBundle(outFile: string = workflowBundlePath): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: workflowsModule(),
    workflowInterceptorModules: [windowInterceptorsModule()],
    preloadModules: preloadedWorkflowModules(),
    failureConverterPath,
    logger: quietLogger,
  });
  writeFileSync(outFile, code);
  return outFile;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};
