/**
 * Personal data at rest, as the worker and helpers write it by default: a verification window's
 * history on the real dev server holds no phone number, no code and no failure text in clear, keys
 * rotate under running windows, and the Web UI's codec endpoints answer only their own credential.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import Fastify from 'fastify';
import { checkCode, startVerification, VerificationError } from '../../src/client';
import { codecServerRoutes, parseKeyRing, type KeyRing } from '../../src/codec';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

const newKey = () => randomBytes(32).toString('base64');

/** The history as Temporal stores it, read by a client without any key. */
async function storedHistory(windowId: string): Promise<temporal.api.history.v1.IHistory> {
  const plain = new Client({
    connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! }),
  });
  try {
    return await plain.workflow.getHandle(windowId).fetchHistory();
  } finally {
    await plain.connection.close();
  }
}

/**
 * Every payload's bytes in a history, decoded as text, plus the history's JSON less its numbers
 * (times, event and task IDs: digits a 6-digit code could match by chance).
 */
function readable(history: temporal.api.history.v1.IHistory): string {
  const json = JSON.stringify(history, (_key, value: unknown) =>
    typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value)) ? undefined : value,
  );
  const payloads = (json.match(/"data":"[^"]*"/g) ?? []).map((d) =>
    Buffer.from(d.slice(8, -1), 'base64').toString('latin1'),
  );
  return [json, ...payloads].join('\n');
}

const keyIdsIn = (history: temporal.api.history.v1.IHistory) =>
  new Set(
    (JSON.stringify(history).match(/"encryption-key-id":"[^"]*"/g) ?? []).map((m) =>
      Buffer.from(m.slice(21, -1), 'base64').toString(),
    ),
  );

describe('encryption at rest by default', () => {
  let stack: TestStack;
  const k1 = `k1:${newKey()}`;

  beforeAll(async () => {
    stack = await startStack({ keyRing: parseKeyRing(k1), policy: { maxChecks: 2 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // The cooldown a test turns comes back whether it passed or not.
  afterEach(() => stack.resetSandbox());

  it('keeps targets, codes and failure texts out of the stored history, across a key rotation', async () => {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, stack.options);
    expect(sent.windowId).toMatch(/^verification-[0-9a-f]{32}$/);
    const code = await stack.latestCode(target.value);
    const wrong = code === '000000' ? '111111' : '000000';
    await checkCode(stack.client, { target, code: wrong }, stack.options);

    // Rotate under the running window: k2 encrypts from now on, k1 still decrypts what it wrote.
    const rotated: KeyRing = parseKeyRing(`k2:${newKey()},${k1}`);
    await stack.restartWorker(rotated);
    // A send refused by Prelude ends in a failure whose text the history must not show in clear.
    await stack.configureSandbox({ minRetryDelaySeconds: 3600 });
    await expect(startVerification(stack.client, { target }, stack.options)).rejects.toThrow(
      VerificationError,
    );
    expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
      status: 'success',
    });

    const history = await storedHistory(sent.windowId);
    const text = readable(history);
    expect(text).not.toContain(target.value.slice(3));
    expect(text).not.toContain(code);
    expect(text).not.toContain(wrong);
    expect(text).not.toContain('Prelude refused');
    expect(keyIdsIn(history)).toEqual(new Set(['k1', 'k2']));
  });
});

describe('the codec endpoints', () => {
  const ring = parseKeyRing(`k1:${newKey()}`);
  const tokens = ['codec-token-current-0001', 'codec-token-previous-002'];
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const app = Fastify();
    await app.register(codecServerRoutes, {
      keyRing: ring,
      tokens,
      corsOrigins: ['http://127.0.0.1:8233'],
      localUiOrigin: 'http://127.0.0.1:8233',
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    close = () => app.close();
  });
  afterAll(() => close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const original = {
    metadata: { encoding: Buffer.from('json/plain').toString('base64') },
    data: Buffer.from('"+33612345678"').toString('base64'),
  };

  it('decode what encode made for a holder of either codec token', async () => {
    const encoded = await post(
      '/codec/encode',
      { payloads: [original] },
      { authorization: `Bearer ${tokens[0]}` },
    );
    expect(encoded.status).toBe(200);
    const encodedBody = await encoded.json();
    expect(JSON.stringify(encodedBody)).not.toContain(original.data);
    const decoded = await post('/codec/decode', encodedBody, { authorization: `Bearer ${tokens[1]}` });
    expect(await decoded.json()).toEqual({ payloads: [original] });
  });

  it('refuse a caller without the codec token, whatever other token it has', async () => {
    for (const headers of <Record<string, string>[]>[
      {},
      { authorization: 'Bearer the-service-api-token-1' },
      { authorization: tokens[0]! },
    ]) {
      const refused = await post('/codec/decode', { payloads: [original] }, headers);
      expect(refused.status).toBe(401);
      expect(await refused.json()).toEqual({ code: 'unauthorized', message: expect.any(String) });
    }
    const otherOrigin = await post(
      '/codec/decode',
      { payloads: [original] },
      { origin: 'http://evil.example' },
    );
    expect(otherOrigin.status).toBe(401);
  });

  it('let the local Web UI decode from loopback, and answer its CORS preflight', async () => {
    const fromUi = await post('/codec/decode', { payloads: [original] }, { origin: 'http://127.0.0.1:8233' });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');

    const preflight = await fetch(`${url}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);

    const malformed = await post(
      '/codec/decode',
      { payloads: 'no' },
      { authorization: `Bearer ${tokens[0]}` },
    );
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ code: 'invalid_request', message: expect.any(String) });
  });
});
