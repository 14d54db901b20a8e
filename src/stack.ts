/**
 * The parts of a deployment, each started from configuration, and `npm start`'s whole local stack:
 * Temporal dev server, Prelude sandbox (unless a real API key is set), worker and HTTP service.
 */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { privacyKeys, type Config, type PrivacyKeys } from '../temporal.config';
import { watchForStalls } from '../activities/stall-fence';
import { verificationClientOptions } from './client';
import { dataConverterFor } from './codec';
import { connectClient } from './connection';
import { startDevServer } from './devserver';
import {
  installSdkMetrics,
  ServiceMetrics,
  startMetricsServer,
  WorkerMetrics,
  type MetricsServer,
} from './metrics';
import { shardCapacityWarnings } from './guards/settings';
import { PreludeClient } from './prelude';
import { startSandbox } from './sandbox';
import { closeGracefully } from './graceful-close';
import { startServer } from './server';
import { shutdownGraceMsFor } from './shutdown-grace';
import { untilTemporalAnswers } from './wait-for-temporal';
import { connectWorker, createVerificationWorker } from './worker';
import { loadPRetry } from './p-retry';

/** Stops what a start function started. */
export type Stop = () => Promise<void>;

/** The Prelude client for configuration: the real API with a key, else whatever PRELUDE_BASE_URL names. */
export function preludeClientFor(config: Config): PreludeClient {
  const { apiKey, baseUrl, timeoutMs } = config.prelude;
  if (!apiKey && new URL(baseUrl).hostname === 'api.prelude.dev') {
    throw new Error(
      'PRELUDE_API_KEY is required to call the real Prelude API (or run `npm start` for the sandbox)',
    );
  }
  // The sandbox accepts any bearer unless SANDBOX_API_KEY is set.
  return new PreludeClient({ apiKey: apiKey ?? 'sandbox', baseUrl, timeoutMs });
}

/**
 * The privacy keys of a production entry point, and a warning on stderr when they are opted out of.
 *
 * @throws ConfigError in the default `encrypted` mode when a key is missing.
 */
function keysFor(config: Config): PrivacyKeys {
  const keys = privacyKeys(config.privacy);
  if (config.privacy.mode === 'plaintext') {
    console.warn(
      'WARNING: PRIVACY_MODE=plaintext: phone numbers, e-mail addresses and codes are stored in clear ' +
        'in Temporal (workflow IDs, search attributes, histories). Never use it with real users.',
    );
  }
  return keys;
}

/**
 * The send guards turned down are an explicit opt-out, and a budget the shards cannot count is a
 * refusal waiting to happen: both said on stderr at start.
 */
function warnOfGuardOptOuts(config: Config): void {
  if (config.guards.mode === 'off') {
    console.warn(
      'WARNING: GUARD_MODE=off: no country budget, allow-list, IP, device or number-block guard applies: ' +
        'SMS pumping is stopped only by the per-target limits.',
    );
  } else if (config.guards.block.mode !== 'enforce') {
    console.warn(
      `WARNING: GUARD_BLOCK_MODE=${config.guards.block.mode}: number-block velocity is not refused.`,
    );
  }
  for (const warning of shardCapacityWarnings(config.guards)) console.warn(`WARNING: ${warning}`);
}

/** A running worker: stops it, and says where its metrics are served (if they are). */
export type RunningWorker = Stop & { metricsUrl?: string };

/**
 * Runs a worker until stopped, with its metrics — the domain metrics and the Temporal SDK's — on
 * `METRICS_HOST:METRICS_PORT` (unless `METRICS_PORT=0`). Metrics that cannot be served (the port is
 * taken) are a warning, not a reason to stop verifying.
 */
export async function runWorker(config: Config): Promise<RunningWorker> {
  const dataConverter = dataConverterFor(keysFor(config).keyRing);
  // Before the first worker connection, which would set the process's Temporal runtime up without them.
  const sdkMetricsUrl = config.metrics.port > 0 ? await installSdkMetrics() : undefined;
  const connection = await untilTemporalAnswers(config.temporal, () => connectWorker(config.temporal));
  const client = await connectClient(config.temporal, dataConverter);
  const metrics = new WorkerMetrics({ processMetrics: true });
  warnOfShortGrace(config);
  const worker = await createVerificationWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    client,
    prelude: preludeClientFor(config),
    callbackUrl: config.prelude.callbackUrl,
    dataConverter,
    metrics,
    shutdownGraceMs: config.worker.shutdownGraceMs,
  });
  const metricsServer =
    config.metrics.port > 0 ? await serveWorkerMetrics(config, metrics, sdkMetricsUrl) : undefined;
  // From the moment the worker polls: a stall before it (loading the workflow bundle) held no task.
  watchForStalls();
  const running = worker.run();
  const stop = async () => {
    worker.shutdown();
    await running;
    await metricsServer?.close();
    await client.connection.close();
    await connection.close();
  };
  return Object.assign(stop, { metricsUrl: metricsServer?.url });
}

/**
 * Says at start that `WORKER_SHUTDOWN_GRACE_MS` is shorter than a call can last, when it is: the
 * user's explicit choice, under which a deploy cancels calls. (Unset, the worker takes as long as
 * the longest call can last: createVerificationWorker.)
 */
function warnOfShortGrace(config: Config): void {
  const needed = shutdownGraceMsFor(config.prelude.timeoutMs);
  const chosen = config.worker.shutdownGraceMs;
  if (chosen !== undefined && chosen < needed) {
    console.warn(
      `WARNING: WORKER_SHUTDOWN_GRACE_MS=${chosen} is shorter than a call can last (${needed} ms with ` +
        `PRELUDE_TIMEOUT_MS=${config.prelude.timeoutMs}): a stopping worker cancels the calls it has in ` +
        'flight, and the next one makes them again (a check spent twice, a code sent twice).',
    );
  }
}

async function serveWorkerMetrics(
  config: Config,
  metrics: WorkerMetrics,
  sdkMetricsUrl: string | undefined,
): Promise<MetricsServer | undefined> {
  const { host, port, token } = config.metrics;
  try {
    const server = await startMetricsServer({ host, port, token, registry: metrics.registry, sdkMetricsUrl });
    console.log(`worker metrics: ${server.url}${sdkMetricsUrl ? '' : ' (without the Temporal SDK metrics)'}`);
    return server;
  } catch (error) {
    console.warn(
      `WARNING: the worker's metrics are not served: ${host}:${port} (METRICS_HOST, METRICS_PORT): ${(error as Error).message}`,
    );
    return undefined;
  }
}

/** Options of {@link runServer} beyond the configuration. */
export interface RunServerOptions {
  /** A client to share (its connection is then not closed on stop). */
  client?: Client;
  /** `npm start` only: the local Web UI's origin, let through to the codec endpoints without a token. */
  localUiOrigin?: string;
}

/** Runs the HTTP service until stopped. */
export async function runServer(
  config: Config,
  { client, localUiOrigin }: RunServerOptions = {},
): Promise<{ url: string; metricsUrl: string; stop: Stop }> {
  const { keyRing } = keysFor(config);
  const temporal =
    client ??
    (await untilTemporalAnswers(config.temporal, () =>
      connectClient(config.temporal, dataConverterFor(keyRing)),
    ));
  warnOfGuardOptOuts(config);
  const servesCodec = keyRing && (config.privacy.codecTokens.length > 0 || localUiOrigin);
  const { app, url } = await startServer({
    client: temporal,
    verification: verificationClientOptions(config),
    apiToken: config.service.apiToken,
    adminToken: config.service.adminToken,
    allowOverrides: config.service.allowOverrides,
    webhookPublicKey: config.prelude.webhookPublicKey ?? (await sandboxWebhookKey(config)),
    bodyLimitBytes: config.service.bodyLimitBytes,
    host: config.service.host,
    port: config.service.port,
    logger: true,
    corsOrigins: config.service.corsOrigins,
    metrics: new ServiceMetrics({ processMetrics: true }),
    metricsToken: config.metrics.token,
    preludeUrl: config.prelude.baseUrl,
    codec: servesCodec
      ? {
          keyRing,
          tokens: config.privacy.codecTokens,
          corsOrigins: config.privacy.corsOrigins,
          localUiOrigin,
        }
      : undefined,
  });
  return {
    url,
    metricsUrl: `${url}/metrics`,
    stop: async () => {
      await closeGracefully(app.server, () => app.close());
      if (!client) await temporal.connection.close();
    },
  };
}

/**
 * `npm start`: every part in one process, wired together — the worker calls the sandbox, the
 * sandbox posts webhooks to the service, the service verifies them with the sandbox's key.
 */
export async function runLocalStack(config: Config): Promise<Stop> {
  const stops: Stop[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
  };
  try {
    const [host, port] = splitAddress(config.temporal.address);
    const codecEndpoint = `http://${config.service.host}:${config.service.port}/codec`;
    const temporal = await startDevServer({
      ip: host,
      port,
      dbFile: join(process.cwd(), '.temporal', 'dev.sqlite'),
      codecEndpoint: config.privacy.keyRing ? codecEndpoint : undefined,
    });
    stops.push(temporal.stop);

    let wired = config;
    let sandboxUrl: string | undefined;
    if (!config.prelude.apiKey) {
      const sandbox = await startSandbox(config.sandbox);
      stops.push(sandbox.stop);
      sandboxUrl = sandbox.url;
      wired = {
        ...wired,
        prelude: {
          ...wired.prelude,
          baseUrl: sandbox.url,
          webhookPublicKey: sandbox.publicKeyPem,
          resendDelaySeconds: wired.prelude.resendDelaySeconds ?? config.sandbox.minRetryDelaySeconds,
          callbackUrl:
            wired.prelude.callbackUrl ??
            `http://${config.service.host}:${config.service.port}/webhooks/prelude`,
        },
      };
    }
    const worker = await runWorker(wired);
    stops.push(worker);
    const server = await runServer(wired, { localUiOrigin: temporal.uiUrl });
    stops.push(server.stop);

    console.log(
      [
        '',
        'prelude-temporal is running:',
        `  HTTP service   ${server.url}   (API docs ${server.url}/docs)`,
        `  Metrics        ${server.metricsUrl} (service)` +
          (worker.metricsUrl ? `   ${worker.metricsUrl} (worker)` : '   (worker: not served)'),
        `  Temporal UI    ${temporal.uiUrl}`,
        sandboxUrl
          ? `  Prelude        sandbox at ${sandboxUrl}   (inbox ${sandboxUrl}/sandbox/messages)`
          : `  Prelude        ${wired.prelude.baseUrl}`,
        config.privacy.keyRing
          ? `  Codec          ${codecEndpoint}   (the Web UI above decodes through it; CLI: ` +
            `temporal workflow show --codec-endpoint ${codecEndpoint} --codec-auth "Bearer $CODEC_API_TOKEN")`
          : '  Privacy        PLAINTEXT: targets and codes are stored in clear',
        '',
        'Ctrl-C stops everything.',
      ].join('\n'),
    );
    return stopAll;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * Without a configured webhook key, a service pointed at the sandbox (no API key, not Prelude's host)
 * uses the sandbox's own key, as docker compose runs them: waits for the sandbox up to 30 s. Something
 * that answers, but not as a sandbox, or nothing at all by then, leaves the key unset (webhooks are
 * then answered 503 `webhook_key_missing`).
 */
async function sandboxWebhookKey(config: Config): Promise<string | undefined> {
  const { apiKey, baseUrl } = config.prelude;
  if (apiKey || new URL(baseUrl).hostname === 'api.prelude.dev') return undefined;
  const { default: pRetry } = await loadPRetry();
  let response: Response;
  try {
    // fetch rejects only with a TypeError; p-retry sends again on those that are network failures
    // (the sandbox is not listening yet), and gives up on any other at once.
    response = await pRetry(() => fetch(`${baseUrl}/sandbox/webhook-public-key`), {
      retries: Infinity,
      factor: 1,
      minTimeout: 500,
      maxRetryTime: 30_000,
    });
  } catch (error) {
    // Nothing answered within 30 s (or fetch refused the URL): no key.
    if (error instanceof TypeError) return undefined;
    throw error;
  }
  if (!response.ok) return undefined;
  return (await response.text()).trim();
}

/** `host:port` → its parts. */
export function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), Number(address.slice(at + 1))];
}
