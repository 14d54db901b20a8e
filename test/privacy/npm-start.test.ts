/**
 * Private by default, checked where a user would look: `npm start`'s own processes run the README's
 * flow over HTTP, then every workflow ID, search attribute and history event on the dev server, every
 * HTTP answer and every line the processes printed are searched for the phone number, the e-mail
 * address, the device signals and the codes. The same flow with `PRIVACY_MODE=plaintext` must find
 * them, so the search is shown able to fail.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { runCli, stackPorts, waitForOutput, type CliProcess } from '../support/cli';
import { eventually } from '../support/eventually';
import { uniquePhoneNumber } from '../support/stack';

const running = 'prelude-temporal is running';

/** What a run of the flow leaves behind, and what it must not show. */
interface FlowRun {
  secrets: string[];
  answers: string[];
  windowIds: { phone: string; email: string };
  /** The code sent to the e-mail address, whose window was canceled before any check. */
  unusedCode: string;
}

/** The README's flow: send to a phone and an e-mail address, a wrong code, the right one, webhooks, a cancel. */
async function readmeFlow(env: Record<string, string>): Promise<FlowRun> {
  const service = `http://127.0.0.1:${env.PORT}`;
  const sandbox = `http://127.0.0.1:${env.SANDBOX_PORT}`;
  const answers: string[] = [];
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${service}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    answers.push(text);
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
  };
  const codeFor = async (to: string) => {
    const inbox = await fetch(`${sandbox}/sandbox/messages?to=${encodeURIComponent(to)}`);
    return ((await inbox.json()) as { messages: { code: string }[] }).messages[0]!.code;
  };

  const phone = { type: 'phone_number', value: uniquePhoneNumber() };
  const email = { type: 'email_address', value: `ada.${Date.now()}@example.com` };
  const signals = { ip: '203.0.113.77', device_id: 'device-4f1c9a7e' };
  const sent = await call('POST', '/verifications', { target: phone, signals });
  expect(sent).toMatchObject({ status: 200, body: { status: 'success' } });
  const code = await codeFor(phone.value);
  const wrong = 'ZQ7X9K';
  expect(await call('POST', '/verifications/check', { target: phone, code: wrong })).toMatchObject({
    status: 200,
    body: { status: 'failure' },
  });
  expect(await call('POST', '/verifications/check', { target: phone, code })).toMatchObject({
    status: 200,
    body: { status: 'success' },
  });
  const phoneWindow = String(sent.body.id);
  await eventually(
    async () => {
      const state = await call('GET', `/verifications/${phoneWindow}`);
      const attempts = state.body.attempts as { delivery_status?: string }[];
      return attempts[0]?.delivery_status === 'delivered';
    },
    // Generous: the report goes sandbox → service → ingest run → window, each a process of its own
    // on a shared machine, and a delivery the service missed is redelivered after 1 s, 2 s, 4 s…
    { description: 'a delivery report reaching the window', timeoutMs: 60_000, intervalMs: 100 },
  );

  const other = await call('POST', '/verifications', { target: email });
  expect(other).toMatchObject({ status: 200, body: { status: 'success' } });
  const emailCode = await codeFor(email.value);
  const emailWindow = String(other.body.id);
  expect(await call('DELETE', `/verifications/${emailWindow}`)).toMatchObject({
    status: 200,
    body: { status: 'canceled' },
  });
  return {
    secrets: [
      phone.value,
      phone.value.slice(3),
      email.value,
      code,
      emailCode,
      wrong,
      signals.ip,
      signals.device_id,
    ],
    answers,
    windowIds: { phone: phoneWindow, email: emailWindow },
    unusedCode: emailCode,
  };
}

/** Everything the dev server holds: workflow IDs, search attributes, and every history as text. */
async function temporalContents(address: string): Promise<string> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const texts: string[] = [];
  try {
    for await (const execution of client.workflow.list()) {
      texts.push(execution.workflowId, JSON.stringify(execution.searchAttributes));
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      texts.push(historyText(history));
    }
  } finally {
    await connection.close();
  }
  expect(texts.length).toBeGreaterThan(6);
  return texts.join('\n');
}

/** A history's JSON less its numbers (times and IDs a 6-digit code could match), plus its payloads as text. */
function historyText(history: unknown): string {
  const json = JSON.stringify(history, (_key, value: unknown) =>
    typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value)) ? undefined : value,
  );
  const payloads = (json.match(/"data":"[^"]*"/g) ?? []).map((d) =>
    Buffer.from(d.slice(8, -1), 'base64').toString('latin1'),
  );
  return [json, ...payloads].join('\n');
}

/** Log lines less their numbers (timestamps, durations). */
const logText = (output: string) => output.replace(/\d{7,}/g, '#');

const found = (haystack: string, secrets: string[]) => secrets.filter((secret) => haystack.includes(secret));

describe('npm start, private by default', () => {
  let cli: CliProcess | undefined;
  afterEach(async () => {
    await cli?.stop();
    cli = undefined;
  });

  it('shows no number, address, signal or code anywhere, and a restart finds its windows', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'npm-start-'));
    const env = { ...(await stackPorts()), SANDBOX_DELIVERY_DELAY_MS: '50' };
    cli = runCli('start', cwd, env);
    await waitForOutput(cli, running);
    const run = await readmeFlow(env);
    expect(run.windowIds.phone).toMatch(/^verification-[0-9a-f]{32}$/);

    const stored = await temporalContents(env.TEMPORAL_ADDRESS);
    const firstOutput = cli.output();
    expect(found(stored, run.secrets)).toEqual([]);
    expect(found(run.answers.join('\n'), run.secrets)).toEqual([]);
    expect(found(logText(firstOutput), run.secrets)).toEqual([]);
    expect(firstOutput).toContain('made development keys');
    expect(statSync(join(cwd, '.temporal', 'keys.json')).mode & 0o777).toBe(0o600);
    expect(await cli.stop()).toBe(0);

    // Same keys, same state: the window the first start opened answers under the same ID.
    cli = runCli('start', cwd, env);
    await waitForOutput(cli, running);
    expect(cli.output()).toContain('using the development keys');
    const again = await fetch(`http://127.0.0.1:${env.PORT}/verifications/${run.windowIds.phone}`);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: run.windowIds.phone, status: 'verified' });

    // A second stack on the same Temporal port stops instead of joining this one's task queue.
    const second = runCli('start', mkdtempSync(join(tmpdir(), 'npm-start-2-')), {
      ...(await stackPorts()),
      TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS,
    });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`${env.TEMPORAL_ADDRESS} is already taken`);
    expect(second.output()).not.toContain(running);
    // Three `npm start`s and the README's flow: minutes, not seconds, on a loaded machine.
  }, 180_000);

  it('with PRIVACY_MODE=plaintext, warns at start and stores the same data in clear', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'npm-start-plain-'));
    const env = { ...(await stackPorts()), SANDBOX_DELIVERY_DELAY_MS: '50', PRIVACY_MODE: 'plaintext' };
    cli = runCli('start', cwd, env);
    await waitForOutput(cli, running);
    expect(cli.output()).toContain('WARNING: PRIVACY_MODE=plaintext');
    const run = await readmeFlow(env);
    expect(run.windowIds.phone).toBe(`verification-${run.secrets[0]}`);
    const stored = await temporalContents(env.TEMPORAL_ADDRESS);
    // Everything but the canceled window's code, which was never typed and so never reached Temporal.
    const typed = run.secrets.filter((secret) => secret !== run.unusedCode);
    expect(found(stored, run.secrets)).toEqual(typed);
  }, 120_000);
});

describe('production entry points', () => {
  const keys = {
    VERIFY_ID_KEY: 'an-id-key-for-this-test',
    PAYLOAD_CODEC_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
  };

  it('npm run worker waits for a Temporal that is not up yet, saying so, instead of exiting', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'worker-waits-'));
    const worker = runCli('worker', cwd, {
      ...(await stackPorts()),
      ...keys,
      PRELUDE_BASE_URL: 'http://127.0.0.1:9',
    });
    try {
      await waitForOutput(worker, 'does not answer (attempt 2');
      expect(worker.output()).not.toContain(keys.VERIFY_ID_KEY);
    } finally {
      await worker.stop();
    }
  });

  it.each(['worker', 'server'])(
    'without keys, npm run %s exits non-zero, naming the missing keys and how to make them',
    async (command) => {
      const cwd = mkdtempSync(join(tmpdir(), `no-keys-${command}-`));
      const cli = runCli(command, cwd, { ...(await stackPorts()), PRELUDE_BASE_URL: 'http://127.0.0.1:9' });
      const code = await cli.exited;
      expect(code).not.toBe(0);
      expect(cli.output()).toMatch(/VERIFY_ID_KEY: required/);
      expect(cli.output()).toMatch(/PAYLOAD_CODEC_KEYS: required/);
      expect(cli.output()).toContain("require('crypto').randomBytes(32)");
    },
  );
});
