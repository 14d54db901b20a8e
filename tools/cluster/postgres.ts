/**
 * The cluster's PostgreSQL: Debian's PostgreSQL 15 (installed with apt when missing), in a data
 * directory of the run's own, on a port of its own, listening on 127.0.0.1 only. Never the system's
 * 5432 cluster. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { untilPrinted, type PartSpec } from '../processes';

const run = promisify(execFile);

/** Debian's PostgreSQL 15 binaries. */
export const postgresMajor = 15;
const binDir = `/usr/lib/postgresql/${postgresMajor}/bin`;

/** Where the cluster's PostgreSQL listens, and as whom Temporal connects. */
export interface PostgresSettings {
  port: number;
  user: string;
  password: string;
}

const asRoot = process.getuid?.() === 0;

/** `command args` as the user PostgreSQL runs as (`postgres` when we are root, else ourselves). */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

/** Installs Debian's postgresql-15 when its binaries are missing (as root only: apt needs it). */
export async function ensurePostgresInstalled(log: (line: string) => void): Promise<void> {
  if (existsSync(join(binDir, 'initdb'))) return;
  if (!asRoot) {
    throw new Error(
      `PostgreSQL ${postgresMajor} is not installed (${binDir}/initdb): run \`apt-get install -y postgresql-${postgresMajor}\` as root`,
    );
  }
  log(`installing postgresql-${postgresMajor} with apt (first run only)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env });
  await run('apt-get', ['install', '-y', '-qq', `postgresql-${postgresMajor}`], { env });
}

/**
 * Makes a fresh data directory in `dir` (owned by the user PostgreSQL runs as) whose superuser is
 * `settings.user` with its password, and only password logins over TCP.
 */
export async function initPostgres(dir: string, settings: PostgresSettings): Promise<string> {
  const dataDir = join(dir, 'data');
  const passwordFile = join(dir, 'pwfile');
  mkdirSync(dir, { recursive: true });
  writeFileSync(passwordFile, `${settings.password}\n`, { mode: 0o600 });
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout), Number(gid));
    chownSync(passwordFile, Number(stdout), Number(gid));
  }
  const [command, args] = asPostgres(join(binDir, 'initdb'), [
    ...['-D', dataDir, '-U', settings.user, `--pwfile=${passwordFile}`],
    ...['--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '--encoding=UTF8', '--no-instructions'],
  ]);
  await run(command, args);
  return dataDir;
}

/** The PostgreSQL server process, for a supervised {@link Part}. */
export function postgresPart(dataDir: string, settings: PostgresSettings, logDir: string): PartSpec {
  const [command, args] = asPostgres(join(binDir, 'postgres'), [
    ...['-D', dataDir, '-p', String(settings.port)],
    ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    // Seven server processes with up to 20 connections each (the config's maxConns).
    ...['-c', 'max_connections=300'],
  ]);
  return {
    name: 'postgres',
    command,
    args,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
    cwd: '/',
    logDir,
    // Printed once started, and again once a restart after a crash has replayed its WAL.
    ready: (process, signal) =>
      untilPrinted(process, 'database system is ready to accept connections', signal),
  };
}
