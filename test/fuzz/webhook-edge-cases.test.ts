/**
 * `POST /webhooks/prelude` at its edges, over HTTP against the real stack: everything that is not
 * a signed Prelude event is refused with a 4xx `{ code, message }` and starts nothing; a signed
 * event for no window is acknowledged and changes nothing; an ingest run about a window carries
 * the window's target key, so forgetting a target finds it. (The fuzz suite beside this one throws
 * random requests at the same route; these are the cases it must never get wrong, named.)
 */
import { constants, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ingestWorkflowId, targetKeySearchAttribute, windowIdPrefix } from '../../workflows/messages';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

function signature(body: Buffer | string): string {
  const signed = sign('sha256', Buffer.from(body), {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  return `rsassa-pss-sha256=${signed.toString('base64')}`;
}

/** Posts exactly these headers and bytes (fetch would add a content type of its own). */
function post(
  stack: TestStack,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(`${stack.serverUrl}/webhooks/prelude`);
  const bytes = body === undefined ? undefined : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: url.pathname,
        headers: { ...headers, ...(bytes ? { 'content-length': String(bytes.length) } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

const eventId = () => `evt_${randomBytes(13).toString('hex')}`;

function deliveryEvent(id: string, correlationId: string, verificationId = 'vrf_edge') {
  return JSON.stringify({
    id,
    type: 'verify.delivery_status',
    created_at: new Date().toISOString(),
    payload: {
      id: 'dls_edge',
      attempt_id: `att_${id}`,
      verification_id: verificationId,
      status: 'delivered',
      time: new Date().toISOString(),
      metadata: { correlation_id: correlationId },
    },
  });
}

async function started(stack: TestStack, id: string): Promise<boolean> {
  try {
    await stack.client.workflow.getHandle(ingestWorkflowId(id)).describe();
    return true;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

const errorBody = { code: expect.any(String), message: expect.any(String) };

describe('webhook edge cases', () => {
  let stack: TestStack;
  const json = { 'content-type': 'application/json' };

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      sandboxEnv: {
        SANDBOX_WEBHOOK_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses an empty or missing body with 400, even under a well-formed signature', async () => {
    const empty = await post(stack, { ...json, 'x-webhook-signature': signature('') }, '');
    expect(empty).toEqual({ status: 400, body: { ...errorBody, code: 'empty_body' } });
    const missing = await post(stack, { 'x-webhook-signature': signature('') });
    expect(missing).toEqual({ status: 400, body: { ...errorBody, code: 'empty_body' } });
  });

  it('refuses a missing, malformed or wrong signature with 401 and starts nothing', async () => {
    const id = eventId();
    const body = deliveryEvent(id, `${windowIdPrefix}${randomBytes(16).toString('hex')}`);
    const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrong = `rsassa-pss-sha256=${sign('sha256', Buffer.from(body), {
      key: otherKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    }).toString('base64')}`;
    for (const header of [undefined, '', 'rsassa-pss-sha256=', 'sha256=abc', 'rsassa-pss-sha256=!!', wrong]) {
      const answer = await post(
        stack,
        { ...json, ...(header === undefined ? {} : { 'x-webhook-signature': header }) },
        body,
      );
      expect(answer).toEqual({ status: 401, body: { ...errorBody, code: 'invalid_signature' } });
    }
    // Signed, then changed on the way.
    const tampered = await post(
      stack,
      { ...json, 'x-webhook-signature': signature(body) },
      body.replace('delivered', 'undeliverable'),
    );
    expect(tampered).toEqual({ status: 401, body: { ...errorBody, code: 'invalid_signature' } });
    expect(await started(stack, id)).toBe(false);
  });

  it('refuses a signed body that is not JSON, not an event, or has an unusable ID, with 400', async () => {
    for (const body of ['not json', '{"id":', '\u0000', '[]', 'null', '{"not":"an event"}']) {
      const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ ...errorBody, code: expect.stringMatching(/^invalid_(json|event)$/) });
    }
    for (const id of ['evt with space', 'evt_\u202e', 'x'.repeat(256)]) {
      const body = deliveryEvent(id, 'nobody');
      const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
      expect(answer).toEqual({ status: 400, body: { ...errorBody, code: 'invalid_event' } });
    }
  });

  it('refuses a body over the limit with 413 and a content type other than JSON with 415', async () => {
    const huge = JSON.stringify({ padding: 'x'.repeat(200_000) });
    const oversized = await post(stack, { ...json, 'x-webhook-signature': signature(huge) }, huge);
    expect(oversized).toEqual({ status: 413, body: { ...errorBody, code: 'payload_too_large' } });

    const id = eventId();
    const body = deliveryEvent(id, 'nobody');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/vnd.api+json']) {
      const answer = await post(
        stack,
        { 'content-type': type, 'x-webhook-signature': signature(body) },
        body,
      );
      expect(answer).toEqual({ status: 415, body: { ...errorBody, code: 'unsupported_media_type' } });
    }
    const untyped = await post(stack, { 'x-webhook-signature': signature(body) }, body);
    expect(untyped.status).toBe(415);
    expect(await started(stack, id)).toBe(false);
    // The JSON type with parameters is JSON.
    const charset = await post(
      stack,
      { 'content-type': 'application/json; charset=utf-8', 'x-webhook-signature': signature(body) },
      body,
    );
    expect(charset).toEqual({ status: 200, body: { status: 'accepted', event_id: id } });
  });

  it('acknowledges a signed event for no window, and it changes nothing', async () => {
    const nobody = `${windowIdPrefix}${randomBytes(16).toString('hex')}`;
    const id = eventId();
    const body = deliveryEvent(id, nobody);
    const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
    expect(answer).toEqual({ status: 200, body: { status: 'accepted', event_id: id } });
    const ingest = await stack.client.workflow.getHandle(ingestWorkflowId(id)).result();
    expect(ingest).toMatchObject({ eventId: id, disposition: 'window_closed', workflowId: nobody });
    await expect(stack.client.workflow.getHandle(nobody).describe()).rejects.toThrow(WorkflowNotFoundError);
  });

  it('files the ingest run of a window’s event under the window’s target key', async () => {
    const start = await fetch(`${stack.serverUrl}/verifications`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ target: uniquePhoneTarget() }),
    });
    const window = (await start.json()) as { id: string; verification_id: string };
    const key = window.id.slice(windowIdPrefix.length);
    const id = eventId();
    const body = deliveryEvent(id, window.id, window.verification_id);
    expect(await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body)).toMatchObject({
      status: 200,
    });

    const handle = stack.client.workflow.getHandle(ingestWorkflowId(id));
    expect((await handle.result()) as unknown).toMatchObject({
      disposition: 'applied',
      workflowId: window.id,
    });
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(targetKeySearchAttribute)).toBe(key);
    // And visibility finds it by that key (eventually).
    const query = `WorkflowType = 'webhookIngestWorkflow' AND ${targetKeySearchAttribute.name} = '${key}'`;
    const found = await eventually(
      async () => {
        const listed: string[] = [];
        for await (const wf of stack.client.workflow.list({ query })) listed.push(wf.workflowId);
        return listed.includes(ingestWorkflowId(id)) && listed;
      },
      { description: 'the ingest run listed under the target key', timeoutMs: 10_000, intervalMs: 250 },
    );
    expect(found).toContain(ingestWorkflowId(id));

    // An event whose correlation ID names no window of ours carries no key.
    const other = eventId();
    const notOurs = deliveryEvent(other, 'order-1234');
    await post(stack, { ...json, 'x-webhook-signature': signature(notOurs) }, notOurs);
    const otherDescription = await stack.client.workflow.getHandle(ingestWorkflowId(other)).describe();
    expect(otherDescription.typedSearchAttributes.get(targetKeySearchAttribute)).toBeUndefined();
  });
});
