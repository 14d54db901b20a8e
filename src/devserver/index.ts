/**
 * Starts the Temporal CLI's development server (`temporal server start-dev`) with what this project
 * needs: our custom search attributes, Update-with-Start enabled, and a readiness wait that gives the
 * server as long as it really takes on a slow machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { customSearchAttributes } from '../../workflows/search-attributes';
import { freeListenPorts, portIsFree, PortTakenError } from '../free-port';
import { packageRoot } from '../package-root';
import { loadPRetry } from '../p-retry';

export { freePort, portIsFree, PortTakenError } from '../free-port';
export { packageRoot } from '../package-root';

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** IP to bind; default `127.0.0.1`. */
  ip?: string;
  /** gRPC port; default: a free one. */
  port?: number;
  /** Web UI port, or `false` for a headless server (tests). Default: gRPC port + 1000. */
  uiPort?: number | false;
  /** SQLite file that keeps state across restarts; default: in memory. */
  dbFile?: string;
  /** Remote codec endpoint the Web UI calls to decode payloads. */
  codecEndpoint?: string;
  /** How long to wait for the server to answer; default 60 s (the SDK's own helper waits only 5). */
  readyTimeoutMs?: number;
  /** Where the server's output goes; default: dropped (errors are still reported on a failed start). */
  stdio?: 'inherit' | 'ignore';
}

/** A running dev server. */
export interface DevServer {
  /** `host:port` of the frontend, for `TEMPORAL_ADDRESS`. */
  address: string;
  /** The Web UI's URL, when it has one. */
  uiUrl?: string;
  /** The server's process ID (the bench reads its CPU time). */
  pid?: number;
  /** Stops the server and waits until it has exited. */
  stop(): Promise<void>;
}

/** Path of the pinned Temporal CLI, building it with Go on first use (see scripts/temporal-cli.sh). */
export function temporalCliPath(): Promise<string> {
  const script = join(packageRoot(), 'scripts', 'temporal-cli.sh');
  return new Promise((resolve, reject) => {
    // stderr is inherited so that a cold build (minutes) shows its progress.
    const child = spawn('bash', [script, 'path'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout.trim())
        : reject(new Error(`Temporal CLI not available (scripts/temporal-cli.sh exited with ${code})`)),
    );
  });
}

/** The dev server flags every launch uses: search attributes and the dynamic config we rely on. */
export function devServerFlags(): string[] {
  const cliTypeNames: Record<string, string> = {
    TEXT: 'Text',
    KEYWORD: 'Keyword',
    INT: 'Int',
    DOUBLE: 'Double',
    BOOL: 'Bool',
    DATETIME: 'Datetime',
    KEYWORD_LIST: 'KeywordList',
  };
  return [
    ...customSearchAttributes.flatMap((key) => [
      '--search-attribute',
      `${key.name}=${cliTypeNames[key.type]}`,
    ]),
    // Update-with-Start (POST /verifications) is a multi-operation.
    '--dynamic-config-value',
    'frontend.enableExecuteMultiOperation=true',
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
    // A workflow task that schedules an activity gets the activity task back in its completion
    // response, so a worker polling the same queue skips a matching round trip (~100 ms -> ~20 ms
    // for an Update that runs one activity).
    '--dynamic-config-value',
    'system.enableActivityEagerExecution=true',
    // The dev server keeps every workflow in one history shard, and a shard reads its task queues
    // (transfer: a new workflow's first task, the task after an activity; timers; visibility) at most
    // 20 times a second by default: on a busy laptop a task waited up to 50 ms (~30 ms at p50) to
    // be dispatched. A cluster spreads its workflows over hundreds of shards, each with that budget;
    // these give the one shard what a cluster's shards give each workflow.
    '--dynamic-config-value',
    'history.transferProcessorMaxPollRPS=1000',
    '--dynamic-config-value',
    'history.timerProcessorMaxPollRPS=1000',
    '--dynamic-config-value',
    'history.visibilityProcessorMaxPollRPS=1000',
    // Deleting a run that closed moments ago (forgetting a target) waits until the server's saved
    // transfer-queue progress covers the run's close, and that progress is saved every 30 s by
    // default, the deletion retried meanwhile at growing intervals: such runs lingered 20-100 s.
    '--dynamic-config-value',
    'history.transferProcessorUpdateAckInterval="1s"',
  ];
}

/**
 * The flags that keep a dev server's state in the SQLite file `dbFile`. SQLite's defaults (a rollback
 * journal, synced in full) create, sync and delete a journal file on every commit, and a Temporal
 * server commits several times per workflow task. A write-ahead log synced at checkpoints is what
 * SQLite recommends for this: a crash of the process loses nothing, and a power cut at most the last
 * commits, never the file's integrity.
 */
export function devServerFileFlags(dbFile: string): string[] {
  return [
    '--db-filename',
    dbFile,
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
  ];
}

/**
 * Starts a dev server and resolves once it answers gRPC calls.
 *
 * @throws PortTakenError when something already listens on the port: joining another stack's
 *   server would mix both stacks' task queues and sandboxes.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  if (options.port !== undefined && !(await portIsFree(ip, options.port))) {
    throw new PortTakenError(
      `${ip}:${options.port} is already taken (another \`npm start\` or Temporal server?): stop it, or set ` +
        'TEMPORAL_ADDRESS to a free port for this stack',
    );
  }
  // Ports the server was not given are drawn afresh each time, and a server that exits while
  // starting (a port was taken before it bound it) is started again, twice at most.
  for (let attempt = 1; ; attempt++) {
    const [drawnPort, httpPort, metricsPort] = (await freeListenPorts(3, ip)) as [number, number, number];
    try {
      return await launch(options, ip, options.port ?? drawnPort, httpPort, metricsPort);
    } catch (error) {
      if (!(error instanceof DevServerExitedError) || attempt >= 3) throw error;
    }
  }
}

/** The dev server ended before it answered. */
class DevServerExitedError extends Error {}

async function launch(
  options: DevServerOptions,
  ip: string,
  port: number,
  httpPort: number,
  metricsPort: number,
): Promise<DevServer> {
  const cli = await temporalCliPath();
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', 'error'];
  args.push('--http-port', String(httpPort), '--metrics-port', String(metricsPort));
  if (options.uiPort === false) args.push('--headless');
  else if (options.uiPort !== undefined) args.push('--ui-port', String(options.uiPort));
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push(...devServerFileFlags(options.dbFile));
  }
  if (options.codecEndpoint) args.push('--ui-codec-endpoint', options.codecEndpoint);
  args.push(...devServerFlags());

  const child = spawn(cli, args, {
    stdio: ['ignore', options.stdio ?? 'pipe', options.stdio ?? 'pipe'],
    env: process.env,
  });
  // The first lines say why it failed (a panic's message), the last ones where.
  const head: string[] = [];
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    if (head.length < 10) head.push(chunk.toString());
    else {
      tail.push(chunk.toString());
      if (tail.length > 40) tail.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const address = `${ip}:${port}`;
  try {
    await waitUntilReady(address, child, options.readyTimeoutMs ?? 60_000);
  } catch (error) {
    await stopProcess(child);
    const lines = (text: string[]) => text.join('').trim().split('\n');
    const output = [
      ...lines(head).slice(0, 20),
      ...(tail.length ? ['…', ...lines(tail).slice(-20)] : []),
    ].join('\n');
    const Failure = child.exitCode !== null ? DevServerExitedError : Error;
    throw new Failure(
      `${(error as Error).message}${output ? `\n--- dev server output ---\n${output}` : ''}`,
      {
        cause: error,
      },
    );
  }
  const uiPort = options.uiPort === false ? undefined : (options.uiPort ?? port + 1000);
  return {
    address,
    uiUrl: uiPort === undefined ? undefined : `http://${ip}:${uiPort}`,
    pid: child.pid,
    stop: () => stopProcess(child),
  };
}

/** Polls the server every 250 ms until it answers; fails at once if it exits, or after `timeoutMs`. */
async function waitUntilReady(address: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const exited = new AbortController();
  const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
    exited.abort(new Error(`dev server exited early (code ${code}, signal ${signal})`));
  child.once('exit', onExit);
  try {
    const { default: pRetry } = await loadPRetry();
    await pRetry(
      async () => {
        if (!(await devServerAnswers(address))) {
          throw new Error(`dev server at ${address} did not answer within ${timeoutMs} ms`);
        }
      },
      { retries: Infinity, minTimeout: 250, factor: 1, maxRetryTime: timeoutMs, signal: exited.signal },
    );
  } finally {
    child.off('exit', onExit);
  }
}

/** Whether the dev server at `address` answers and has its default namespace yet. */
export async function devServerAnswers(address: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 1_000 });
    try {
      await connection.workflowService.getSystemInfo({});
      // The default namespace is created right after the frontend starts answering.
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
