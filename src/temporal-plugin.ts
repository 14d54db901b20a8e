/**
 * The Temporal plugin that puts verification into a team's own Worker and Client, on the SDK's plugin
 * interfaces (`plugins` of `Worker.create`, `new Client` and `bundleWorkflowCode`).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client, type ClientOptions, type ClientPlugin } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type {
  BundleOptions,
  BundlerPlugin,
  ReplayWorkerOptions,
  Worker,
  WorkerOptions,
  WorkerPlugin,
} from '@temporalio/worker';
import { createActivities, watchForStalls } from '../activities';
import { dataConverterFor } from './codec/encryption-codec';
import type { KeyRing } from './codec/key-ring';
import {
  preludeCallMetrics,
  sharedWorkerMetrics,
  windowInterceptorsModule,
  windowMetricsSinks,
  type WorkerMetrics,
} from './metrics';
import { PreludeClient, type PreludeClientOptions } from './prelude';
import { shutdownGraceMsFor } from './shutdown-grace';
import { preloadedWorkflowModules, workflowsModule } from './workflow-modules';

/** What {@link verificationPlugin} needs. */
export interface VerificationPluginOptions {
  /** The Prelude client the activities call (the real API or the sandbox), or its options. */
  prelude: PreludeClient | PreludeClientOptions;
  /**
   * The codec's keys (`parseKeyRing(PAYLOAD_CODEC_KEYS)`, or `loadConfig().privacy.keyRing`). `null`
   * is the plaintext opt-out: payloads in clear, for fake numbers only.
   */
  keyRing: KeyRing | null;
  /** Webhook URL Prelude posts delivery reports to (`PRELUDE_CALLBACK_URL`). */
  callbackUrl?: string;
  /**
   * The client the activities signal windows and reach the per-target limits with. Default: a client
   * on the worker's own connection and namespace, with the codec.
   */
  client?: Client;
  /** Where windows and Prelude calls are counted; default: the process's shared worker metrics. */
  metrics?: WorkerMetrics;
}

/**
 * Adds verification to a team's Worker and Client:
 *
 * - to a Worker: the Prelude activities, our workflows beside the team's (bundled together from the
 *   worker's `workflowsPath`), the metrics interceptors and sinks, and the codec;
 * - to a Client (and so to the helpers `startVerification`, `checkCode`, …): the codec.
 *
 * **The codec applies to every workflow of that Worker and Client, the team's own included**: their
 * payloads and failure messages are encrypted with the same keys (after any codec the team already
 * has), so the Web UI and the CLI show them only through the codec endpoint
 * (`--codec-endpoint`, see the README's "Personal data"). To keep your workflows out of it, run ours
 * on their own task queue with `createVerificationWorker` instead.
 *
 * Workers built from a prebuilt bundle get our workflows only if the bundle was made with this plugin
 * too: `bundleWorkflowCode({ workflowsPath, plugins: [plugin] })`.
 *
 * @experimental like the SDK's plugin interfaces it implements.
 */
export class VerificationPlugin implements WorkerPlugin, ClientPlugin, BundlerPlugin {
  readonly name = 'prelude-temporal';
  readonly #options: VerificationPluginOptions;
  readonly #prelude: PreludeClient;
  readonly #dataConverter: DataConverter;

  constructor(options: VerificationPluginOptions) {
    this.#options = options;
    this.#prelude =
      options.prelude instanceof PreludeClient ? options.prelude : new PreludeClient(options.prelude);
    this.#dataConverter = dataConverterFor(options.keyRing ?? undefined);
  }

  /** The codec, for a Client. */
  configureClient(options: Omit<ClientOptions, 'plugins'>): Omit<ClientOptions, 'plugins'> {
    return { ...options, dataConverter: this.#withCodec(options.dataConverter) };
  }

  /**
   * Activities, metrics and the codec, for a Worker (workflows come through {@link configureBundler});
   * and, when the team left it unset, a shutdown grace that lets our calls in flight finish on a
   * deploy (src/shutdown-grace.ts; the SDK's default 0 cancels them, and the next worker makes them
   * again). A grace the team set is theirs.
   */
  configureWorker(options: WorkerOptions): WorkerOptions {
    const dataConverter = this.#withCodec(options.dataConverter);
    const metrics = this.#options.metrics ?? sharedWorkerMetrics();
    const client = this.#options.client ?? this.#workerClient(options, dataConverter);
    const activities = createActivities({
      prelude: this.#prelude,
      callbackUrl: this.#options.callbackUrl,
      client,
    });
    return {
      ...options,
      dataConverter,
      activities: { ...options.activities, ...activities },
      interceptors: {
        ...options.interceptors,
        activity: [...(options.interceptors?.activity ?? []), preludeCallMetrics(metrics)],
      },
      sinks: { ...options.sinks, ...windowMetricsSinks(metrics) },
      shutdownGraceTime: options.shutdownGraceTime ?? shutdownGraceMsFor(this.#prelude.timeoutMs),
    };
  }

  /**
   * Watches the worker's event loop from the moment it polls: a worker that stalled makes no Prelude
   * call for a task it held meanwhile (activities/stall-fence.ts).
   */
  runWorker(worker: Worker, next: (worker: Worker) => Promise<void>): Promise<void> {
    watchForStalls();
    return next(worker);
  }

  /** The codec, for a replay Worker: recorded histories are encrypted too. */
  configureReplayWorker(options: ReplayWorkerOptions): ReplayWorkerOptions {
    return { ...options, dataConverter: this.#withCodec(options.dataConverter) };
  }

  /** Our workflows beside the team's, with the window interceptors and the failure converter. */
  configureBundler(options: BundleOptions): BundleOptions {
    const ours = this.#dataConverter.failureConverterPath;
    if (options.failureConverterPath && options.failureConverterPath !== ours) {
      throw new Error(
        'prelude-temporal: the worker already has a failure converter; the plugin needs its own',
      );
    }
    return {
      ...options,
      workflowsPath: workflowsBeside(options.workflowsPath),
      workflowInterceptorModules: [...(options.workflowInterceptorModules ?? []), windowInterceptorsModule()],
      // Ours only: the team's modules may keep state per workflow, which only they can vouch for.
      preloadModules: [...(options.preloadModules ?? []), ...preloadedWorkflowModules()],
      failureConverterPath: ours,
      webpackConfigHook: withSdkResolvable(options.webpackConfigHook),
    };
  }

  /** The team's data converter with our codec after theirs and our failure converter. */
  #withCodec(theirs: DataConverter | undefined): DataConverter {
    const ours = this.#dataConverter;
    if (theirs?.failureConverterPath && theirs.failureConverterPath !== ours.failureConverterPath) {
      throw new Error(
        'prelude-temporal: the data converter already has a failure converter; the plugin needs its own',
      );
    }
    return {
      ...theirs,
      failureConverterPath: ours.failureConverterPath,
      payloadCodecs: [...(theirs?.payloadCodecs ?? []), ...(ours.payloadCodecs ?? [])],
    };
  }

  #workerClient(options: WorkerOptions, dataConverter: DataConverter): Client {
    if (!options.connection) {
      throw new Error('prelude-temporal: give the worker a connection, or give the plugin a client');
    }
    // A NativeConnection serves the client API too: no second connection to Temporal.
    return new Client({ connection: options.connection, namespace: options.namespace, dataConverter });
  }
}

/** The plugin for a team's Worker and Client (see {@link VerificationPlugin}). */
export function verificationPlugin(options: VerificationPluginOptions): VerificationPlugin {
  return new VerificationPlugin(options);
}

/**
 * A workflows module that exports the team's workflows and ours: the bundler takes one path. It is
 * written to the temporary directory, so nothing is written beside the team's code or ours; its name
 * comes from the two paths, so every worker of a deployment shares one file.
 */
function workflowsBeside(theirs: string): string {
  const code = `export * from ${JSON.stringify(theirs)};\nexport * from ${JSON.stringify(workflowsModule())};\n`;
  const dir = join(
    tmpdir(),
    'prelude-temporal',
    createHash('sha256').update(code).digest('hex').slice(0, 16),
  );
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'workflows.js');
  writeFileSync(file, code);
  return file;
}

/**
 * The bundler resolves the SDK's workflow runtime from beside the workflows module, which
 * {@link workflowsBeside} puts in a temporary directory: the `node_modules` that holds
 * `@temporalio/workflow` is added to webpack's module directories.
 */
function withSdkResolvable(
  theirs: BundleOptions['webpackConfigHook'],
): NonNullable<BundleOptions['webpackConfigHook']> {
  // …/node_modules/@temporalio/workflow/lib/index.js → …/node_modules
  const modules = dirname(dirname(dirname(dirname(require.resolve('@temporalio/workflow')))));
  return (config) => {
    const configured = theirs ? theirs(config) : config;
    const resolve = configured.resolve ?? {};
    return {
      ...configured,
      resolve: { ...resolve, modules: [...(resolve.modules ?? ['node_modules']), modules] },
    };
  };
}
