/**
 * The parts of the product a test needs, started for real: the Prelude sandbox on a free port, a
 * worker on its own task queue of the shared dev server, and a client with the helpers' options.
 */
import { returnAdmissionLeases } from '../../src/guards/leases';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { loadConfig } from '../../temporal.config';
import { verificationClientOptions, type VerificationClientOptions } from '../../src/client';
import { dataConverterFor, parseKeyRing, type KeyRing } from '../../src/codec';
import { clientConnectionOptions } from '../../src/connection';
import { PreludeClient } from '../../src/prelude';
import { startSandbox, type RunningSandbox } from '../../src/sandbox';
import type { CallRecord } from '../../src/sandbox/calls';
import type { DeliveryRecord } from '../../src/sandbox/webhooks';
import { closeGracefully } from '../../src/graceful-close';
import { startServer } from '../../src/server';
import { createVerificationWorker } from '../../src/worker';
import type { WindowPolicy } from '../../workflows/messages';
import { startPreludeProxy, type PreludeProxy } from './prelude-proxy';
import { captureSandboxKnobs } from './sandbox-knobs';

/** A running test stack. */
export interface TestStack {
  sandbox: RunningSandbox;
  prelude: PreludeClient;
  client: Client;
  options: VerificationClientOptions;
  taskQueue: string;
  /** The key ring payloads are encrypted with (absent in plaintext mode). */
  keyRing?: KeyRing;
  dataConverter: DataConverter;
  /** The HTTP service's URL, when started `withServer`. */
  serverUrl?: string;
  /** Changes sandbox knobs at runtime (`PUT /sandbox/config`). */
  configureSandbox(knobs: Record<string, unknown>): Promise<void>;
  /**
   * Puts the sandbox's knobs back as the stack started, and brings every part of the proxy's API
   * back up (for `afterEach`: what one test turns never reaches the next). The clock stays put.
   */
  resetSandbox(): Promise<void>;
  /** `POST /sandbox/clock/advance`: moves the sandbox's time (TTLs, cooldowns) forward. */
  advanceSandboxClock(seconds: number): Promise<void>;
  /** Every message the sandbox "sent" to a recipient, newest first. */
  messages(to: string): Promise<{ code: string | null; body: string; channel: string }[]>;
  /** The sandbox's webhook deliveries, newest first (`GET /sandbox/webhooks`). */
  webhookDeliveries(): Promise<DeliveryRecord[]>;
  /** The proxy the worker reaches Prelude through, when started `withProxy`. */
  proxy?: PreludeProxy;
  /**
   * Stops the worker and starts another on the same task queue whose worker and `client` use `ring`
   * (a key rotation); the HTTP service keeps the client it started with.
   */
  restartWorker(ring: KeyRing | undefined): Promise<void>;
  /** The Verify calls and Notify sends the sandbox carried out for a recipient, newest first (`GET /sandbox/calls`). */
  appliedCalls(to: string, operation?: CallRecord['operation']): Promise<CallRecord[]>;
  /** The newest code the sandbox "sent" to a target. */
  latestCode(to: string): Promise<string>;
  stop(): Promise<void>;
}

/** Options of {@link startStack}. */
export interface StackOptions {
  /** Sandbox settings as environment variables (e.g. `SANDBOX_WINDOW_SECONDS`). */
  sandboxEnv?: Record<string, string>;
  /** Other configuration variables, as a deployment sets them (e.g. `GUARD_COUNTRY_SENDS`). */
  env?: Record<string, string>;
  /** The admin routes' token (`SERVICE_ADMIN_TOKEN`); absent: not served. */
  adminToken?: string;
  /** Policy of every window the stack's helpers start. */
  policy?: Partial<WindowPolicy>;
  callbackUrl?: string;
  /** As in production by default: HMAC'd IDs and encrypted payloads; `plaintext` opts out. */
  privacy?: 'encrypted' | 'plaintext';
  /** The key ring (default: a fresh one), e.g. to restart a worker on a rotated ring. */
  keyRing?: KeyRing;
  /** How windows call Prelude (`VERIFY_ACTIVITY_MODE`); default `local`, as configured by default. */
  activityMode?: 'local' | 'remote';
  /** Start no worker (to see what a missing worker does). */
  withoutWorker?: boolean;
  callTimeoutMs?: number;
  /** Also start the HTTP service, wired as `npm start` wires it (webhooks from the sandbox to it). */
  withServer?: boolean;
  /** The service's bearer token. */
  apiToken?: string;
  /** Start fields HTTP callers may set (`SERVICE_ALLOW_OVERRIDES`). */
  allowOverrides?: string[];
  /**
   * The worker reaches Prelude through a recording proxy that can take paths down (see
   * ./prelude-proxy): to make Watch unreachable, or see the calls the sandbox does not log.
   */
  withProxy?: boolean;
}

/** Starts the sandbox, a worker and a client. */
export async function startStack(stackOptions: StackOptions = {}): Promise<TestStack> {
  const config = loadConfig({
    TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS,
    SANDBOX_PORT: '0',
    SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
    ...stackOptions.sandboxEnv,
    ...stackOptions.env,
  });
  const sandbox = await startSandbox(config.sandbox);
  const restoreKnobs = await captureSandboxKnobs(sandbox.url, config.sandbox.apiKey);
  const proxy = stackOptions.withProxy ? await startPreludeProxy(sandbox.url) : undefined;
  const prelude = new PreludeClient({
    apiKey: config.sandbox.apiKey ?? 'test-key',
    baseUrl: proxy?.url ?? sandbox.url,
    timeoutMs: 5_000,
  });
  const taskQueue = `verify-${randomUUID()}`;
  const plaintext = stackOptions.privacy === 'plaintext';
  const keyRing = plaintext
    ? undefined
    : (stackOptions.keyRing ?? parseKeyRing(`t1:${randomBytes(32).toString('base64')}`));
  const dataConverter = dataConverterFor(keyRing);
  // As the service and the worker connect: the same retries, safe to close under.
  const connection = await Connection.connect(clientConnectionOptions(config.temporal));
  const client = new Client({ connection, dataConverter });
  const options: VerificationClientOptions = {
    ...verificationClientOptions({ ...config, privacy: { ...config.privacy, mode: 'plaintext' } }),
    idKey: plaintext ? null : randomBytes(24).toString('base64url'),
    taskQueue,
    callTimeoutMs: stackOptions.callTimeoutMs ?? 20_000,
    calls: { mode: stackOptions.activityMode ?? 'local', attemptTimeoutMs: 6_000 },
  };
  options.policy = {
    ...options.policy,
    windowSeconds: 60,
    resendCooldownSeconds: 0,
    ...stackOptions.policy,
  };

  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  if (stackOptions.withServer) {
    server = await startServer({
      client,
      verification: options,
      apiToken: stackOptions.apiToken,
      adminToken: stackOptions.adminToken,
      allowOverrides: stackOptions.allowOverrides,
      webhookPublicKey: sandbox.publicKeyPem,
      bodyLimitBytes: config.service.bodyLimitBytes,
      host: '127.0.0.1',
      port: 0,
    });
  }
  const callbackUrl = stackOptions.callbackUrl ?? (server ? `${server.url}/webhooks/prelude` : undefined);

  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let workerConnection: NativeConnection | undefined;
  const runWorker = async (workerClient: Client, workerDataConverter: DataConverter) => {
    workerConnection = await NativeConnection.connect({ address: config.temporal.address });
    worker = await createVerificationWorker({
      connection: workerConnection,
      namespace: config.temporal.namespace,
      taskQueue,
      client: workerClient,
      prelude,
      callbackUrl,
      dataConverter: workerDataConverter,
      workflowBundle: process.env.TEST_WORKFLOW_BUNDLE,
    });
    running = worker.run();
  };
  const stopWorker = async () => {
    worker?.shutdown();
    await running;
    await workerConnection?.close();
    worker = undefined;
  };
  if (!stackOptions.withoutWorker) await runWorker(client, dataConverter);

  const stack: TestStack = {
    sandbox,
    prelude,
    client,
    options,
    taskQueue,
    keyRing,
    dataConverter,
    serverUrl: server?.url,
    proxy,
    async resetSandbox() {
      await restoreKnobs();
      if (proxy) {
        proxy.down = [];
        proxy.stalled = [];
        proxy.release();
      }
    },
    async advanceSandboxClock(seconds) {
      const response = await fetch(`${sandbox.url}/sandbox/clock/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seconds }),
      });
      if (!response.ok) throw new Error(`sandbox clock refused: ${await response.text()}`);
    },
    async webhookDeliveries() {
      const response = await fetch(`${sandbox.url}/sandbox/webhooks`);
      return ((await response.json()) as { deliveries: DeliveryRecord[] }).deliveries;
    },
    async messages(to) {
      const response = await fetch(`${sandbox.url}/sandbox/messages?to=${encodeURIComponent(to)}`);
      return (
        (await response.json()) as { messages: { code: string | null; body: string; channel: string }[] }
      ).messages;
    },
    async configureSandbox(knobs) {
      const response = await fetch(`${sandbox.url}/sandbox/config`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(knobs),
      });
      if (!response.ok) throw new Error(`sandbox config refused: ${await response.text()}`);
    },
    async appliedCalls(to, operation) {
      const query = new URLSearchParams({ to, ...(operation ? { operation } : {}) });
      const response = await fetch(`${sandbox.url}/sandbox/calls?${query}`);
      if (!response.ok) throw new Error(`GET /sandbox/calls: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { calls: CallRecord[] }).calls;
    },
    async latestCode(to) {
      const response = await fetch(`${sandbox.url}/sandbox/messages?to=${encodeURIComponent(to)}`);
      const { messages } = (await response.json()) as { messages: { code: string }[] };
      const code = messages[0]?.code;
      if (!code) throw new Error(`the sandbox sent no code to ${to}`);
      return code;
    },
    async restartWorker(ring) {
      await stopWorker();
      stack.keyRing = ring;
      stack.dataConverter = dataConverterFor(ring);
      stack.client = new Client({ connection, dataConverter: stack.dataConverter });
      await runWorker(stack.client, stack.dataConverter);
    },
    async stop() {
      if (server) {
        await closeGracefully(server.app.server, () => server.app.close());
      }
      // As the service does when it stops: no lease is left to flush after the connection closes.
      await returnAdmissionLeases(stack.client);
      await stopWorker();
      await connection.close();
      await proxy?.stop();
      await sandbox.stop();
    },
  };
  return stack;
}

/**
 * The environment of `npm run worker` (the CLI's own process, test/support/cli.ts) serving this
 * stack's task queue: the same Temporal, keys and sandbox as the stack's own worker. Encrypted
 * stacks only: the worker refuses to start without keys.
 */
export function workerProcessEnv(stack: TestStack): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!,
    TEMPORAL_TASK_QUEUE: stack.taskQueue,
    VERIFY_ID_KEY: stack.options.idKey!,
    PAYLOAD_CODEC_KEYS: `t1:${stack.keyRing!.keys.t1!.toString('base64')}`,
    PRELUDE_BASE_URL: stack.sandbox.url,
  };
}

/** A phone number no other test uses. */
export function uniquePhoneNumber(): string {
  return `+3361${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
}

/** A phone target no other test uses. */
export function uniquePhoneTarget(): { type: 'phone_number'; value: string } {
  return { type: 'phone_number', value: uniquePhoneNumber() };
}
