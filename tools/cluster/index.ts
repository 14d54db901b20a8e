/**
 * A production-shaped Temporal cluster with the project on it, every part its own supervised
 * process on free ports of 127.0.0.1:
 *
 *   PostgreSQL 15 (own data directory) → schema (SQL tool) → Temporal frontend, history, matching,
 *   internal worker (4 history shards, deploy/temporal/dynamicconfig.yaml) → `prelude-temporal
 *   setup` → Prelude sandbox → project workers → HTTP services
 *
 * or, for comparison (`server: 'devserver'`), the same project parts on the CLI's dev server.
 *
 * Used by `npm run cluster`, `npm run test:cluster` and `npm run bench:cluster`. `dist/` must be
 * built (`npm run build`). Everything it started is stopped by process group on `stop()`, and on
 * the way out of the process whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeListenPorts } from '../../src/free-port';
import { packageRoot } from '../../src/package-root';
import { Part } from '../processes';
import { startDevServerPart, startTemporalOnPostgres } from './servers';
import { projectPart, runSetup, type ProjectEnv } from './project';
import type { TemporalService } from './temporal-server';

export { dynamicConfigFile, historyShards, temporalServices } from './temporal-server';
export { postgresMajor } from './postgres';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Project workers; default 2. */
  workers?: number;
  /** HTTP services; default 2. */
  services?: number;
  /**
   * `cluster` (default): Temporal on PostgreSQL; `devserver`: the Temporal CLI's dev server, as
   * `npm start` runs it, for comparison (the project's parts are the same).
   */
  server?: 'cluster' | 'devserver';
  /** The server's dynamic config file; default the project's; `null`: the server's defaults. */
  dynamicConfigPath?: string | null;
  /** Configuration the project's parts get on top of the cluster's own (VERIFY_*, SANDBOX_*, …). */
  env?: ProjectEnv;
  /** Keep the run directory (logs, configs, the database) after `stop()`. */
  keepRunDir?: boolean;
  log?: (line: string) => void;
}

/** A running cluster. */
export interface Cluster {
  runDir: string;
  /** `host:port` of the Temporal frontend. */
  temporalAddress: string;
  namespace: string;
  sandboxUrl: string;
  /** The HTTP services' URLs. */
  serviceUrls: string[];
  /** The bearer token of the HTTP services. */
  apiToken: string;
  /** `VERIFY_ID_KEY` of the project's parts. */
  idKey: string;
  /** What the project's parts were started with. */
  env: ProjectEnv;
  /** What `prelude-temporal setup` printed. */
  setupOutput: string;
  /** The database and the server's services (absent on a dev server). */
  postgres?: Part;
  temporal?: Record<TemporalService, Part>;
  sandbox: Part;
  workers: Part[];
  services: Part[];
  /** From the call until every part was ready. */
  startedInMs: number;
  stop(): Promise<void>;
}

/** Starts everything, in order; on a failure, stops what was started and throws. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => console.error(`[cluster] ${line}`));
  const root = packageRoot(__dirname);
  const runDir = mkdtempSync(join(tmpdir(), 'prelude-cluster-'));
  // PostgreSQL runs as its own user and must reach its data directory inside.
  chmodSync(runDir, 0o755);
  const logDir = join(runDir, 'logs');
  mkdirSync(logDir);
  const all: Part[] = [];
  const part = (spec: ConstructorParameters<typeof Part>[0]) => {
    const made = new Part(spec, log);
    all.push(made);
    return made;
  };
  // A start that fails keeps its directory: the parts' logs say why.
  let keepRunDir = options.keepRunDir ?? false;
  const stop = async () => {
    for (const running of [...all].reverse()) {
      await running
        .stop()
        .catch((error: unknown) => log(`stopping ${running.spec.name}: ${(error as Error).message}`));
    }
    if (keepRunDir) log(`run directory kept: ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
  };
  const signal = AbortSignal.any([]);
  try {
    const ports = await freeListenPorts(24);
    const take = () => ports.shift()!;
    const server =
      options.server === 'devserver'
        ? await startDevServerPart(part, { runDir, logDir, port: take() })
        : await startTemporalOnPostgres(part, {
            runDir,
            logDir,
            ports: ports.splice(0, 14),
            dynamicConfigPath: options.dynamicConfigPath,
            log,
          });
    const temporalAddress = server.address;
    log(`Temporal ${temporalAddress} up (${Date.now() - started} ms)`);

    const sandboxPort = take();
    const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
    const servicePortsHttp = Array.from({ length: options.services ?? 2 }, take);
    const serviceUrls = servicePortsHttp.map((port) => `http://127.0.0.1:${port}`);
    const idKey = randomBytes(24).toString('base64url');
    const apiToken = randomBytes(24).toString('base64url');
    const namespace = 'default';
    const env: ProjectEnv = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? runDir,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: namespace,
      VERIFY_ID_KEY: idKey,
      PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      CODEC_API_TOKEN: randomBytes(24).toString('base64url'),
      SERVICE_API_TOKEN: apiToken,
      HOST: '127.0.0.1',
      PRELUDE_BASE_URL: sandboxUrl,
      // Prelude's webhooks go to the first service, as they would to one public URL.
      PRELUDE_CALLBACK_URL: `${serviceUrls[0]}/webhooks/prelude`,
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_PORT: String(sandboxPort),
      METRICS_PORT: '0',
      ...options.env,
    };
    const setupOutput = await runSetup(root, env);
    log(`setup: ${setupOutput.split('\n').join('; ')}`);

    const where = { root, env, runDir, logDir };
    const sandbox = part(projectPart('sandbox', 'sandbox', 'Prelude sandbox:', where));
    await sandbox.start(signal);
    const workers = Array.from({ length: options.workers ?? 2 }, (_, index) =>
      part(projectPart(`worker-${index + 1}`, 'worker', 'worker polling', where)),
    );
    const services = servicePortsHttp.map((port, index) =>
      part(
        projectPart(`service-${index + 1}`, 'server', 'HTTP service:', {
          ...where,
          env: { ...env, PORT: String(port) },
        }),
      ),
    );
    await Promise.all([...workers, ...services].map((p) => p.start(signal)));
    const startedInMs = Date.now() - started;
    log(`cluster ready in ${startedInMs} ms (run directory ${runDir})`);
    return {
      runDir,
      temporalAddress,
      namespace,
      sandboxUrl,
      serviceUrls,
      apiToken,
      idKey,
      env,
      setupOutput,
      postgres: server.postgres,
      temporal: server.temporal,
      sandbox,
      workers,
      services,
      startedInMs,
      stop,
    };
  } catch (error) {
    keepRunDir = true;
    await stop();
    throw error;
  }
}
