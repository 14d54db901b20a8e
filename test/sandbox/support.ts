/**
 * A sandbox started for one suite, and a tiny HTTP client for it that returns status, headers and
 * JSON body — the wire format is what these suites assert.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSandbox, type RunningSandbox } from '../../src/sandbox';
import { loadConfig } from '../../temporal.config';
import { captureSandboxKnobs } from '../support/sandbox-knobs';

/** An answer as a client sees it. */
export interface Answer {
  status: number;
  headers: Headers;
  // Bodies are JSON asserted field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** A running sandbox with helpers. */
export interface TestSandbox {
  sandbox: RunningSandbox;
  url: string;
  /** Calls the sandbox with a bearer token (`token: null` sends none). */
  call(method: string, path: string, body?: unknown, options?: { token?: string | null }): Promise<Answer>;
  /** `PUT /sandbox/config`. */
  configure(knobs: Record<string, unknown>): Promise<void>;
  /** Puts every knob back as the sandbox started (for `afterEach`); the clock stays where it is. */
  reset(): Promise<void>;
  /** The newest message the sandbox sent to a recipient. */
  latestMessage(to: string): Promise<{ code: string | null; body: string; channel: string } | undefined>;
  /** `POST /sandbox/clock/advance`: moves the sandbox's time forward; answers the clock. */
  advanceClock(seconds: number): Promise<{ now: string; nowMs: number; offsetMs: number }>;
  /** `GET /sandbox/calls?to=…`: the Verify calls and Notify sends about a target the sandbox carried out, newest first. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  calls(to: string): Promise<any[]>;
  stop(): Promise<void>;
}

/** Starts a sandbox on a free port with some environment settings. */
export async function startTestSandbox(env: Record<string, string> = {}): Promise<TestSandbox> {
  const config = loadConfig({ SANDBOX_PORT: '0', SANDBOX_MIN_RETRY_DELAY_SECONDS: '0', ...env }).sandbox;
  const sandbox = await startSandbox(config);
  const reset = await captureSandboxKnobs(sandbox.url, config.apiKey);
  const call: TestSandbox['call'] = async (method, path, body, options = {}) => {
    const token = options.token === undefined ? 'test-token' : options.token;
    const response = await fetch(`${sandbox.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
  return {
    sandbox,
    url: sandbox.url,
    call,
    async configure(knobs) {
      const answer = await call('PUT', '/sandbox/config', knobs);
      if (answer.status !== 200) throw new Error(`config refused: ${JSON.stringify(answer.body)}`);
    },
    reset,
    async latestMessage(to) {
      const answer = await call('GET', `/sandbox/messages?to=${encodeURIComponent(to)}`);
      return answer.body.messages[0];
    },
    async advanceClock(seconds) {
      const answer = await call('POST', '/sandbox/clock/advance', { seconds });
      if (answer.status !== 200) throw new Error(`clock refused: ${JSON.stringify(answer.body)}`);
      return answer.body;
    },
    async calls(to) {
      return (await call('GET', `/sandbox/calls?to=${encodeURIComponent(to)}`)).body.calls;
    },
    stop: () => sandbox.stop(),
  };
}

export { phoneTarget, uniqueNumber } from '../support/phones';

/** A webhook as a receiver got it. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  raw: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  event: any;
}

/** An HTTP receiver for webhooks; `answer` decides the status of each delivery (200 by default). */
export async function startReceiver(answer: (received: ReceivedWebhook) => number = () => 200) {
  const received: ReceivedWebhook[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const webhook = { headers: request.headers, raw, event: JSON.parse(raw) };
      received.push(webhook);
      response.statusCode = answer(webhook);
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
