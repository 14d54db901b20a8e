/**
 * What the Prelude client suites share: a sandbox started in the test (with a distinctive API key),
 * tiny HTTP servers that answer what the sandbox never would, and the assertions that a failure is
 * one typed PreludeError carrying no key.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { PreludeClient, PreludeError } from '../../src/prelude';
import { startSandbox, type RunningSandbox } from '../../src/sandbox';
import { loadConfig } from '../../temporal.config';
import { captureSandboxKnobs } from '../support/sandbox-knobs';

/** The API key of every suite: distinctive, so a leak of it (or of its middle) is found anywhere. */
export const apiKey = 'prl_sk_LEAKCANARY_7f3a9c1e5b2d4068';
/** Parts of the key that must not show either (a key cut or re-encoded is still a leak). */
const keyParts = [apiKey, 'LEAKCANARY', Buffer.from(apiKey).toString('base64')];

/** A sandbox for one suite. */
export interface TestSandbox {
  sandbox: RunningSandbox;
  url: string;
  /** A client with {@link apiKey}, against this sandbox. */
  client(options?: { apiKey?: string; timeoutMs?: number }): PreludeClient;
  /** `PUT /sandbox/config` with camelCase knobs. */
  configure(knobs: Record<string, unknown>): Promise<void>;
  /** Puts every knob back as the sandbox started (for `afterEach`). */
  reset(): Promise<void>;
  /** The newest verification code the sandbox "sent" to a number. */
  latestCode(to: string): Promise<string>;
  /** Every message the sandbox "sent" to a number, newest first. */
  messages(to: string): Promise<{ code: string | null; body: string; channel: string }[]>;
  stop(): Promise<void>;
}

/** Starts a sandbox on a free port that accepts only {@link apiKey}. */
export async function startTestSandbox(env: Record<string, string> = {}): Promise<TestSandbox> {
  const config = loadConfig({
    SANDBOX_PORT: '0',
    SANDBOX_API_KEY: apiKey,
    SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
    SANDBOX_DELIVERY_DELAY_MS: '20',
    ...env,
  }).sandbox;
  const sandbox = await startSandbox(config);
  const reset = await captureSandboxKnobs(sandbox.url, config.apiKey);
  const control = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${sandbox.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const messages: TestSandbox['messages'] = async (to) =>
    (await control('GET', `/sandbox/messages?to=${encodeURIComponent(to)}`)).messages;
  return {
    sandbox,
    url: sandbox.url,
    client: (options = {}) =>
      new PreludeClient({
        apiKey: options.apiKey ?? apiKey,
        baseUrl: sandbox.url,
        timeoutMs: options.timeoutMs ?? 3_000,
      }),
    async configure(knobs) {
      await control('PUT', '/sandbox/config', knobs);
    },
    reset,
    messages,
    async latestCode(to) {
      const code = (await messages(to))[0]?.code;
      if (!code) throw new Error(`the sandbox sent no code to ${to}`);
      return code;
    },
    stop: () => sandbox.stop(),
  };
}

export { phoneTarget, uniqueNumber } from '../support/phones';

/** A request as one of our servers received it. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  raw: string;
}

/** A local HTTP server with a handler of our own (answers the sandbox would never give). */
export interface TestServer {
  url: string;
  received: ReceivedRequest[];
  stop(): Promise<void>;
}

/** Starts a server; `handle` gets the request with its whole body read. */
export async function startServer(
  handle: (request: ReceivedRequest, response: ServerResponse, raw: IncomingMessage) => void,
): Promise<TestServer> {
  const received: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const seen = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        raw: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(seen);
      handle(seen, response, request);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A server answering every request with one fixed answer. */
export function startFixedServer(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<TestServer> {
  return startServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** The base URL of a port nothing listens on (a server started, then stopped). */
export async function closedPortUrl(): Promise<string> {
  const server = await startFixedServer(200, {});
  await server.stop();
  return server.url;
}

/** The PreludeError a call fails with; fails the test if the call succeeds or throws anything else. */
export async function failure(call: Promise<unknown>): Promise<PreludeError> {
  const outcome = await call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a PreludeError, got ${inspect(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(PreludeError);
  return outcome.error as PreludeError;
}

/** The synchronous PreludeError `run` throws. */
export function thrown(run: () => unknown): PreludeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PreludeError);
    return error as PreludeError;
  }
  throw new Error('expected a PreludeError, nothing was thrown');
}

/** Every text a log line or a serialised error could be made of. */
export function renderings(value: unknown): string[] {
  const texts = [
    String(value),
    JSON.stringify(value) ?? '',
    inspect(value, { depth: 10 }),
    inspect(value, { depth: 10, showHidden: true, getters: true }),
  ];
  if (value instanceof Error) texts.push(value.stack ?? '', value.message);
  return texts;
}

/** Asserts that none of {@link renderings} of `value` carries the key or a piece of it. */
export function expectNoKey(value: unknown): void {
  for (const text of renderings(value)) {
    for (const part of keyParts) expect(text).not.toContain(part);
  }
}

/** Every console line written while `run` runs, with `run`'s result. */
export async function captureConsole<T>(run: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const spies = methods.map((method) =>
    jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map((arg) => (typeof arg === 'string' ? arg : inspect(arg, { depth: 10 }))).join(' '));
    }),
  );
  try {
    return { result: await run(), lines };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}
