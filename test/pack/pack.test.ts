/**
 * The package as a team installs it: packed with `npm pack`, installed from the tarball into a scratch
 * app outside the repo (test/fixtures/scratch-app: its own package.json, workflow, worker and
 * node:http handler), once with the lowest and once with the highest `@temporalio/*` the package
 * supports. The app runs against the suite's dev server and a sandbox from `prelude-temporal/testing`.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Connection, Client } from '@temporalio/client';
import { runNode, waitForOutput } from '../support/cli';
import { eventually } from '../support/eventually';
import { uniqueNumber } from '../support/phones';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const sdkPackages = Object.keys(manifest.peerDependencies).filter((name) => name.startsWith('@temporalio/'));
const tsc = require.resolve('typescript/bin/tsc');

/** The lowest supported SDK is the floor of the peer range, the highest the one the repo pins. */
const peerRanges = new Set(sdkPackages.map((name) => manifest.peerDependencies[name]));
const lowest = String([...peerRanges][0]).replace(/^\^/, '');
const highest = manifest.devDependencies['@temporalio/client'];

/** What tsc said about the app: nothing when it type-checks. */
interface TypeCheck {
  ok: boolean;
  output: string;
}

/** A scratch app: its directory, and tsc's word on it under each module resolution. */
interface ScratchApp {
  dir: string;
  typeChecks: { node16: TypeCheck; bundler: TypeCheck };
}

const typeCheck = (dir: string, project: string): Promise<TypeCheck> =>
  run(process.execPath, [tsc, '-p', project], { cwd: dir }).then(
    ({ stdout }) => ({ ok: true, output: stdout }),
    (error: { stdout?: string }) => ({ ok: false, output: error.stdout ?? String(error) }),
  );

const scratchDirs: string[] = [];
const apps = new Map<string, Promise<ScratchApp>>();
let tarball: string;
let packed: string[];
let client: Client;

async function installApp(sdkVersion: string): Promise<ScratchApp> {
  const dir = mkdtempSync(join(tmpdir(), `prelude-temporal-app-${sdkVersion}-`));
  scratchDirs.push(dir);
  cpSync(join(__dirname, '..', 'fixtures', 'scratch-app'), dir, { recursive: true });
  const dependencies = {
    'prelude-temporal': `file:${tarball}`,
    ...Object.fromEntries(sdkPackages.map((name) => [name, sdkVersion])),
    '@types/node': manifest.devDependencies['@types/node'],
  };
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'scratch-app', private: true, dependencies }),
  );
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'], {
    cwd: dir,
    timeout: 240_000,
  });
  // Both at once; the node16 one also compiles the app to dist/, which the run tests start.
  const [node16, bundler] = await Promise.all([
    typeCheck(dir, 'tsconfig.json'),
    typeCheck(dir, 'tsconfig.bundler.json'),
  ]);
  return { dir, typeChecks: { node16, bundler } };
}

beforeAll(async () => {
  const packDir = mkdtempSync(join(tmpdir(), 'prelude-temporal-pack-'));
  scratchDirs.push(packDir);
  // The suite's global setup has built dist/ already; `prepare` would build it again.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], {
    cwd: root,
  });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(packDir, info!.filename);
  packed = info!.files.map((file) => file.path);
  for (const version of new Set([lowest, highest])) {
    const installing = installApp(version);
    // Awaited by its own describe block; until then a failure must not count as unhandled.
    installing.catch(() => undefined);
    apps.set(version, installing);
  }
  client = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }) });
}, 60_000);

afterAll(async () => {
  await client?.connection.close();
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

it('supports one range of @temporalio/* for every SDK package it uses, and tests its floor', () => {
  expect(peerRanges.size).toBe(1);
  expect(lowest).toMatch(/^1\.\d+\.\d+$/);
  for (const name of sdkPackages) expect(manifest.devDependencies[name]).toBe(highest);
});

it('packs the compiled code and nothing a user does not need', () => {
  const unexpected = packed.filter(
    (path) =>
      !/^dist\/(src|workflows|activities)\/.*\.(js|d\.ts)$/.test(path) &&
      !['dist/temporal.config.js', 'dist/temporal.config.d.ts', 'scripts/temporal-cli.sh'].includes(path) &&
      !['package.json', 'README.md'].includes(path),
  );
  expect(unexpected).toEqual([]);
  expect(packed).toContain('dist/src/entries/worker.js');
});

describe.each([
  ['lowest', lowest],
  ['highest', highest],
])('a scratch app on the %s supported @temporalio/* (%s)', (_, sdkVersion) => {
  let app: ScratchApp;
  beforeAll(async () => {
    app = await apps.get(sdkVersion)!;
  }, 240_000);

  it('type-checks with tsc under moduleResolution node16 and bundler', () => {
    const clean = { ok: true, output: '' };
    expect(app.typeChecks).toEqual({ node16: clean, bundler: clean });
  });

  it.each([
    ['through the plugin, in its own worker', 'plugin', 'binary/encrypted'],
    ['on their own task queue, in a second worker of the same process', 'own-queue', 'json/plain'],
  ])(
    "runs our workflows beside its own %s; its own handler verifies a code read from the sandbox's inbox",
    async (_how, mode, orderEncoding) => {
      const process_ = runNode([join('dist', 'main.js'), mode], app.dir, {
        TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!,
        VERIFY_ID_KEY: randomBytes(32).toString('base64url'),
        PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TEMPORAL_TASK_QUEUE: `pack-verify-${randomUUID()}`,
        ORDERS_TASK_QUEUE: `pack-orders-${randomUUID()}`,
      });
      try {
        await waitForOutput(process_, '"sandboxUrl"');
        const ready = process_
          .output()
          .split('\n')
          .find((line) => line.includes('"sandboxUrl"'))!;
        const { url, sandboxUrl } = JSON.parse(ready) as { url: string; sandboxUrl: string };
        const post = async (path: string, body: unknown) => {
          const answer = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body) });
          expect(answer.status).toBe(200);
          return answer.json();
        };

        const phone = uniqueNumber();
        const sent = (await post('/signup', { phone })) as { windowId: string };
        expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
        const inboxUrl = `${sandboxUrl}/sandbox/messages?to=${encodeURIComponent(phone)}`;
        const inbox = (await (await fetch(inboxUrl)).json()) as { messages: { code: string }[] };
        const code = inbox.messages[0]?.code;
        expect(await post('/signup/check', { phone, code })).toMatchObject({
          status: 'success',
          windowId: sent.windowId,
        });
        const order = (await post('/orders', { item: 'book' })) as { workflowId: string; result: string };
        expect(order.result).toBe('reserved book');

        for (const workflowId of [sent.windowId, order.workflowId]) {
          await eventually(
            async () => (await client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
            { description: `${workflowId} completed` },
          );
        }
        // What the README says the plugin's codec does to the team's own workflows.
        const history = await client.workflow.getHandle(order.workflowId).fetchHistory();
        const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
        expect(Buffer.from(input?.metadata?.encoding ?? []).toString()).toBe(orderEncoding);

        // Stops on SIGINT (workers drained, connections closed, sandbox stopped) and exits cleanly.
        expect(await process_.stop()).toBe(0);
      } finally {
        await process_.stop();
      }
    },
    90_000,
  );
});
