/**
 * The Temporal servers a cluster run can stand on: the production-shaped one (PostgreSQL, then the
 * four server services) and, for comparison, the CLI's dev server as `npm start` runs it. Each
 * part is a supervised process made by the caller's `part` (so the caller stops them all).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { devServerAnswers, devServerFlags, temporalCliPath } from '../../src/devserver';
import { freePort } from '../../src/free-port';
import type { Part, PartSpec } from '../processes';
import { ensurePostgresInstalled, initPostgres, postgresPart, type PostgresSettings } from './postgres';
import {
  applySchema,
  temporalInstall,
  temporalServiceParts,
  temporalServices,
  untilListening,
  type ServicePorts,
  type TemporalService,
} from './temporal-server';

/** Makes a supervised part that the caller stops. */
export type MakePart = (spec: PartSpec) => Part;

/** A started server: its frontend's address, and its parts when it is the cluster. */
export interface StartedServer {
  address: string;
  postgres?: Part;
  temporal?: Record<TemporalService, Part>;
}

/** Where a server's files go. */
interface ServerDirs {
  runDir: string;
  logDir: string;
}

/**
 * PostgreSQL with the schema, then the frontend (which writes the cluster's metadata record, which
 * two services at once race on), then history, matching and the internal worker together.
 */
export async function startTemporalOnPostgres(
  part: MakePart,
  options: ServerDirs & {
    /**
     * 14 free ports below 32768: the database, each service's gRPC and metrics, the frontend's HTTP,
     * each service's membership port (kept as a smallint in the membership table).
     */
    ports: number[];
    dynamicConfigPath?: string | null;
    log: (line: string) => void;
  },
): Promise<StartedServer> {
  const { runDir, logDir, log } = options;
  const started = Date.now();
  const take = () => options.ports.shift()!;
  const signal = AbortSignal.any([]);
  const db: PostgresSettings = {
    port: take(),
    user: 'temporal',
    password: randomBytes(18).toString('base64url'),
  };
  const [install] = await Promise.all([temporalInstall(), ensurePostgresInstalled(log)]);
  const dataDir = await initPostgres(join(runDir, 'postgres'), db);
  const postgres = part(postgresPart(dataDir, db, logDir));
  await postgres.start(signal);
  await applySchema(install, db);
  log(`PostgreSQL ${db.port} ready with the schema (${Date.now() - started} ms)`);

  const membership = temporalServices.map(() => take());
  const ports = Object.fromEntries(
    temporalServices.map((name) => [
      name,
      {
        grpc: take(),
        membership: membership.shift()!,
        metrics: take(),
        ...(name === 'frontend' ? { http: take() } : {}),
      },
    ]),
  ) as Record<TemporalService, ServicePorts>;
  const specs = temporalServiceParts({
    install,
    db,
    ports,
    runDir,
    logDir,
    dynamicConfigPath: options.dynamicConfigPath,
  });
  const temporal = Object.fromEntries(
    temporalServices.map((name, index) => [name, part(specs[index]!)]),
  ) as Record<TemporalService, Part>;
  await temporal.frontend.start(signal);
  await Promise.all(
    temporalServices.filter((name) => name !== 'frontend').map((name) => temporal[name].start(signal)),
  );
  await untilListening(ports.frontend.grpc, AbortSignal.timeout(90_000), () =>
    Boolean(temporal.frontend.process?.hasExited()),
  );
  return { address: `127.0.0.1:${ports.frontend.grpc}`, postgres, temporal };
}

/** The CLI's dev server, in memory, with the flags every launch of the project uses. */
export async function startDevServerPart(
  part: MakePart,
  options: ServerDirs & { port: number },
): Promise<StartedServer> {
  const address = `127.0.0.1:${options.port}`;
  const devserver = part({
    name: 'devserver',
    command: await temporalCliPath(),
    args: [
      ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--headless'],
      ...['--http-port', String(await freePort()), '--metrics-port', String(await freePort())],
      ...['--log-level', 'error', ...devServerFlags()],
    ],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? options.runDir },
    cwd: options.runDir,
    logDir: options.logDir,
    ready: async (_process, signal) => {
      while (!(await devServerAnswers(address))) {
        signal.throwIfAborted();
        await sleep(200);
      }
    },
  });
  await devserver.start(AbortSignal.any([]));
  return { address };
}
