/**
 * `prelude-temporal setup` as an operator runs it on a real server (the run's dev server): on a
 * fresh namespace it registers the namespace and the search attributes, after which the product's
 * own `worker` and `server` entry points verify a code with no other hand step; run again, it
 * changes nothing and says so. A missing namespace without `--create-namespace`, and bad options,
 * stop it with a clear message and a non-zero exit.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../temporal.config';
import { freePort } from '../../src/devserver';
import { startSandbox, type RunningSandbox } from '../../src/sandbox';
import type { SetupReport } from '../../src/setup';
import { customSearchAttributes } from '../../workflows/search-attributes';
import { runCli, waitForOutput, type CliProcess } from '../support/cli';
import { uniquePhoneTarget } from '../support/stack';

const cliPath = join(__dirname, '..', '..', 'dist', 'src', 'cli.js');

interface SetupRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `prelude-temporal setup <args>` against the run's server, on `namespace`. */
function setup(namespace: string, args: string[]): Promise<SetupRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, 'setup', ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS,
          TEMPORAL_NAMESPACE: namespace,
        },
        timeout: 90_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('prelude-temporal setup', () => {
  const namespace = `setup-${randomUUID().slice(0, 8)}`;
  let first: SetupRun;
  let second: SetupRun;

  beforeAll(async () => {
    first = await setup(namespace, ['--create-namespace', '--retention-days', '2', '--json']);
    second = await setup(namespace, ['--json']);
  }, 120_000);

  it('creates a fresh namespace and registers every search attribute the workflows set', () => {
    expect(first).toMatchObject({ code: 0 });
    const report = JSON.parse(first.stdout) as SetupReport;
    expect(report.namespace).toEqual({ name: namespace, created: true, retentionDays: 2 });
    expect(report.searchAttributes).toEqual(
      customSearchAttributes.map((key) => ({ name: key.name, type: key.type, created: true })),
    );
    expect(report.changed).toBe(true);
  });

  it('reports the server settings the project relies on, all on here', () => {
    const report = JSON.parse(first.stdout) as SetupReport;
    expect(report.settings.map(({ name, on }) => ({ name, on }))).toEqual([
      { name: 'frontend.enableExecuteMultiOperation', on: true },
      { name: 'frontend.enableUpdateWorkflowExecution', on: true },
      { name: 'system.enableActivityEagerExecution', on: true },
    ]);
    expect(report.ready).toBe(true);
  });

  it('run again, changes nothing and says so', async () => {
    expect(second).toMatchObject({ code: 0 });
    const report = JSON.parse(second.stdout) as SetupReport;
    expect(report.changed).toBe(false);
    expect(report.namespace.created).toBe(false);
    expect(report.searchAttributes.every((a) => !a.created)).toBe(true);
    const text = await setup(namespace, []);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('nothing to change: the server was set up already');
    expect(text.stdout).toContain('search attribute PreludeOutcome (KEYWORD): already registered');
  });

  it('is enough for the worker and the HTTP service to verify a code on that namespace', async () => {
    let sandbox: RunningSandbox | undefined;
    const parts: CliProcess[] = [];
    try {
      sandbox = await startSandbox(loadConfig({ SANDBOX_PORT: '0' }).sandbox);
      const port = await freePort();
      const serviceUrl = `http://127.0.0.1:${port}`;
      const env = {
        TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_TASK_QUEUE: `setup-${randomUUID()}`,
        VERIFY_ID_KEY: randomBytes(24).toString('base64url'),
        PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        PRELUDE_BASE_URL: sandbox.url,
        PRELUDE_CALLBACK_URL: `${serviceUrl}/webhooks/prelude`,
        METRICS_PORT: '0',
        PORT: String(port),
      };
      const cwd = mkdtempSync(join(tmpdir(), 'setup-command-'));
      const worker = runCli('worker', cwd, env);
      parts.push(worker);
      const server = runCli('server', cwd, env);
      parts.push(server);
      await waitForOutput(worker, 'worker polling');
      await waitForOutput(server, 'HTTP service:');

      const target = uniquePhoneTarget();
      const post = async (path: string, body: unknown) => {
        const response = await fetch(`${serviceUrl}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      expect(await post('/verifications', { target })).toMatchObject({
        status: 200,
        body: { status: 'success' },
      });
      const inbox = (await (
        await fetch(`${sandbox.url}/sandbox/messages?to=${encodeURIComponent(target.value)}`)
      ).json()) as { messages: { code: string }[] };
      expect(await post('/verifications/check', { target, code: inbox.messages[0]!.code })).toMatchObject({
        status: 200,
        body: { status: 'success' },
      });
    } finally {
      for (const part of parts) await part.stop();
      await sandbox?.stop();
    }
  }, 120_000);

  it('stops with a clear message on a namespace that does not exist, unless asked to create it', async () => {
    const missing = await setup(`missing-${randomUUID().slice(0, 8)}`, []);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(
      /namespace "missing-\w+" does not exist on this server: pass --create-namespace/,
    );
  });

  it('refuses bad options with a clear message', async () => {
    const badDays = await setup(namespace, ['--retention-days', 'soon']);
    expect(badDays.code).not.toBe(0);
    expect(badDays.stderr).toContain('retentionDays');
    const unknown = await setup(namespace, ['--create-namespaces']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--create-namespaces'");
  });
});
