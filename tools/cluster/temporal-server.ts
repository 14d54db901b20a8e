/**
 * The cluster's Temporal server: the pinned server binary (built and cached by
 * ./temporal-server.sh), its schema applied with the SQL tool of the same version, and the
 * frontend, history, matching and internal-worker services as four processes sharing one
 * PostgreSQL, four history shards and the project's dynamic config (deploy/temporal/dynamicconfig.yaml).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { packageRoot } from '../../src/package-root';
import type { PartSpec } from '../processes';
import type { PostgresSettings } from './postgres';

const run = promisify(execFile);

/** The services of a Temporal server, each run as its own process. */
export const temporalServices = ['frontend', 'history', 'matching', 'worker'] as const;
export type TemporalService = (typeof temporalServices)[number];

/** History shards: fixed when the schema is first used, so it is part of the cluster's identity. */
export const historyShards = 4;

/** The dynamic config file every production-shaped stack of the project uses (compose too). */
export const dynamicConfigFile = 'deploy/temporal/dynamicconfig.yaml';

/** Each database, and its versioned schema steps under the module's schema/postgresql/v12. */
export const schemaSteps = [
  ['temporal', 'temporal/versioned'],
  ['temporal_visibility', 'visibility/versioned'],
] as const;

/** Ports of one service. */
export interface ServicePorts {
  grpc: number;
  membership: number;
  /** Its Prometheus metrics. */
  metrics: number;
  /** The frontend's HTTP API only. */
  http?: number;
}

/** Where the binaries and the schema are. */
export interface TemporalInstall {
  server: string;
  sqlTool: string;
  /** The module's schema/postgresql/v12 directory. */
  schemaDir: string;
}

/** Finds the pinned server and SQL tool (building them on first use) and the schema's directory. */
export async function temporalInstall(): Promise<TemporalInstall> {
  const script = join(packageRoot(__dirname), 'tools', 'cluster', 'temporal-server.sh');
  // stderr inherited: a cold build takes minutes and shows its progress.
  const ask = (what: string) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn('bash', [script, what], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(out.trim()) : reject(new Error(`${script} ${what} exited with ${code}`)),
      );
    });
  const dir = await ask('path');
  return {
    server: join(dir, 'server'),
    sqlTool: join(dir, 'temporal-sql-tool'),
    schemaDir: await ask('schema'),
  };
}

/**
 * Creates the `temporal` and `temporal_visibility` databases and applies the schema at the
 * server's version: `setup-schema -v 0.0`, then every versioned step (as the compose stack's
 * schema job does).
 */
export async function applySchema(install: TemporalInstall, db: PostgresSettings): Promise<void> {
  const env = {
    PATH: process.env.PATH ?? '',
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: '127.0.0.1',
    SQL_PORT: String(db.port),
    SQL_USER: db.user,
    // Through the environment: a password on the command line is readable by every local user.
    SQL_PASSWORD: db.password,
  };
  for (const [database, versioned] of schemaSteps) {
    const tool = (...args: string[]) => run(install.sqlTool, ['--db', database, ...args], { env });
    await tool('create-database');
    await tool('setup-schema', '-v', '0.0');
    await tool('update-schema', '-d', join(install.schemaDir, versioned));
  }
}

/** The server config (after the module's config/development-postgres12.yaml) for one service. */
function serverConfig(
  service: TemporalService,
  db: PostgresSettings,
  ports: Record<TemporalService, ServicePorts>,
  dynamicConfigPath: string | null,
): unknown {
  const datastore = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `127.0.0.1:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const rpc = (name: TemporalService) => ({
    rpc: {
      grpcPort: ports[name].grpc,
      membershipPort: ports[name].membership,
      bindOnLocalHost: true,
      ...(ports[name].http ? { httpPort: ports[name].http } : {}),
    },
  });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: historyShards,
      datastores: {
        'postgres-default': datastore('temporal', 20),
        'postgres-visibility': datastore('temporal_visibility', 10),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      // Each process serves its own metrics: one config per service, differing only here.
      metrics: {
        prometheus: {
          framework: 'tally',
          timerType: 'histogram',
          listenAddress: `127.0.0.1:${ports[service].metrics}`,
        },
      },
    },
    services: Object.fromEntries(temporalServices.map((name) => [name, rpc(name)])),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `127.0.0.1:${ports.frontend.grpc}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    ...(dynamicConfigPath
      ? { dynamicConfigClient: { filepath: dynamicConfigPath, pollInterval: '10s' } }
      : {}),
  };
}

/** Options of {@link temporalServiceParts}. */
export interface TemporalServicesOptions {
  install: TemporalInstall;
  db: PostgresSettings;
  ports: Record<TemporalService, ServicePorts>;
  /** Where the configs go. */
  runDir: string;
  logDir: string;
  /** The dynamic config file; default: the project's (deploy/temporal/dynamicconfig.yaml); `null`: none. */
  dynamicConfigPath?: string | null;
}

/**
 * One process spec per service, in start order. The server reads `<root>/<config dir>/<env>.yaml`;
 * each service gets its own directory with a `cluster.yaml`.
 */
export function temporalServiceParts(options: TemporalServicesOptions): PartSpec[] {
  const dynamicConfigPath =
    options.dynamicConfigPath === undefined
      ? join(packageRoot(__dirname), dynamicConfigFile)
      : options.dynamicConfigPath;
  return temporalServices.map((service) => {
    const configDir = join(options.runDir, `temporal-${service}`);
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      join(configDir, 'cluster.yaml'),
      stringify(serverConfig(service, options.db, options.ports, dynamicConfigPath)),
      { mode: 0o600 },
    );
    return {
      name: `temporal-${service}`,
      command: options.install.server,
      args: [
        '--root',
        options.runDir,
        '--config',
        `temporal-${service}`,
        '--env',
        'cluster',
        '--allow-no-auth',
        'start',
        '--service',
        service,
      ],
      env: { PATH: process.env.PATH ?? '' },
      cwd: options.runDir,
      logDir: options.logDir,
      // A service listens on its membership port once it is past the cluster metadata, and on its
      // gRPC port once it has joined the others (the frontend waits for the history service; the
      // internal worker serves no gRPC).
      ready: (process, signal) =>
        untilListening(
          service === 'history' || service === 'matching'
            ? options.ports[service].grpc
            : options.ports[service].membership,
          signal,
          () => process.hasExited(),
        ),
      readyTimeoutMs: 90_000,
    };
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function untilListening(
  port: number,
  signal: AbortSignal,
  exited: () => boolean = () => false,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    if (exited()) throw new Error(`exited before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(200);
  }
}
