/**
 * With a key ring configured, a verification window's history on the real dev server holds no
 * phone number and no code in clear, while clients with the key read everything.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import Fastify from 'fastify';
import { checkCode, getVerification, startVerification } from '../../src/client';
import { codecServerRoutes, dataConverterFor, parseKeyRing } from '../../src/codec';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

const ring = parseKeyRing(`k1:${randomBytes(32).toString('base64')}`);

describe('encryption at rest', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ dataConverter: dataConverterFor(ring) });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps targets and codes out of the stored history', async () => {
    const target = uniquePhoneTarget();
    // With an ID key, the workflow ID and search attributes (which no codec touches) hold an HMAC.
    const options = { ...stack.options, idKey: 'an-id-key-for-this-test' };
    const sent = await startVerification(stack.client, { target }, options);
    const code = await stack.latestCode(target.value);
    await checkCode(stack.client, { target, code }, options);
    expect((await getVerification(stack.client, target, options)).target).toEqual(target);

    const plain = new Client({
      connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! }),
    });
    const history = await plain.workflow.getHandle(sent.windowId).fetchHistory();
    await plain.connection.close();
    const serialized = JSON.stringify(history);
    const payloadBytes = (history.events ?? [])
      .flatMap((e) => JSON.stringify(e).match(/"data":"[^"]*"/g) ?? [])
      .map((d) => Buffer.from(d.slice(8, -1), 'base64').toString('latin1'))
      .join('\n');
    const national = target.value.slice(3);
    expect(serialized).not.toContain(national);
    expect(payloadBytes).not.toContain(national);
    expect(payloadBytes).not.toContain(code);
    expect(serialized).toContain(Buffer.from('binary/encrypted').toString('base64'));
  });

  it('serves the Web UI codec endpoints: decode what encode made, CORS preflight answered', async () => {
    const app = Fastify();
    await app.register((scope) =>
      codecServerRoutes(scope, { keyRing: ring, corsOrigins: ['http://127.0.0.1:8233'] }),
    );
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const post = (path: string, body: unknown) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const original = {
      metadata: { encoding: Buffer.from('json/plain').toString('base64') },
      data: Buffer.from('"+33612345678"').toString('base64'),
    };
    const encoded = await post('/codec/encode', { payloads: [original] });
    expect(encoded.status).toBe(200);
    const encodedBody = await encoded.json();
    expect(JSON.stringify(encodedBody)).not.toContain(original.data);
    const decoded = await post('/codec/decode', encodedBody);
    expect(await decoded.json()).toEqual({ payloads: [original] });

    const preflight = await fetch(`${url}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');

    const malformed = await post('/codec/decode', { payloads: 'no' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: 'invalid_request' });
    await app.close();
  });
});
