/**
 * `POST /webhooks/prelude` at its edges, over HTTP against the real stack: everything that is not
 * a signed Prelude event is refused with a 4xx `{ code, message }` and signals nothing (the window it
 * names has no signal with its event ID); a signed event is applied to its window once, however
 * often it comes; a signed event for a window that has ended, or for none of ours, is acknowledged
 * and changes nothing. (The fuzz suite beside this one throws random requests at the same route;
 * these are the cases it must never get wrong, named.)
 */
import { constants, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { cancelVerificationById, getVerificationById, startVerification } from '../../src/client';
import { deliveryStatusSignal, windowIdPrefix, type DeliveryStatusReport } from '../../workflows/messages';
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

function deliveryEvent(
  id: string,
  correlationId: string,
  verificationId = 'vrf_edge',
  { status = 'delivered', time = new Date().toISOString() } = {},
) {
  return JSON.stringify({
    id,
    type: 'verify.delivery_status',
    created_at: time,
    payload: {
      id: 'dls_edge',
      attempt_id: `att_${id}`,
      verification_id: verificationId,
      status,
      time,
      metadata: { correlation_id: correlationId },
    },
  });
}

/** An open window of the stack's, with its Prelude verification ID. */
interface Window {
  id: string;
  verificationId: string;
}

async function openWindow(stack: TestStack): Promise<Window> {
  const sent = await startVerification(stack.client, { target: uniquePhoneTarget() }, stack.options);
  if (sent.status !== 'success' || !sent.verificationId) throw new Error(`no window opened: ${sent.status}`);
  return { id: sent.windowId, verificationId: sent.verificationId };
}

/**
 * How many `deliveryStatus` signals in a run's history carry an event ID (decoded: payloads are
 * encrypted). A signal is in the history once Temporal has taken it: no waiting needed.
 */
async function signalsCarrying(stack: TestStack, workflowId: string, eventId: string): Promise<number> {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  let count = 0;
  for (const event of history.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName !== deliveryStatusSignal.name) continue;
    let payloads = (signal.input?.payloads ?? []) as Payload[];
    for (const codec of [...(stack.dataConverter.payloadCodecs ?? [])].reverse())
      payloads = await codec.decode(payloads);
    const report = payloads[0] && defaultPayloadConverter.fromPayload<DeliveryStatusReport>(payloads[0]);
    if (report?.eventId === eventId) count += 1;
  }
  return count;
}

/** The window's attempts a webhook named `attemptId`. */
async function attemptsNamed(stack: TestStack, windowId: string, attemptId: string) {
  const state = await getVerificationById(stack.client, windowId, stack.options);
  return state.attempts.filter((attempt) => attempt.attemptId === attemptId);
}

const errorBody = { code: expect.any(String), message: expect.any(String) };

describe('webhook edge cases', () => {
  let stack: TestStack;
  /** The window the refused events name: none of them may reach it. */
  let window: Window;
  const json = { 'content-type': 'application/json' };

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      sandboxEnv: {
        SANDBOX_WEBHOOK_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
    window = await openWindow(stack);
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

  it('refuses a missing, malformed or wrong signature with 401 and signals nothing', async () => {
    const id = eventId();
    const body = deliveryEvent(id, window.id, window.verificationId);
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
    expect(await signalsCarrying(stack, window.id, id)).toBe(0);
    expect(await attemptsNamed(stack, window.id, `att_${id}`)).toEqual([]);

    // The same event signed is applied: the refusals above were what kept it out.
    const signed = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
    expect(signed).toEqual({
      status: 200,
      body: { status: 'accepted', event_id: id, disposition: 'applied' },
    });
    // A signal that arrives while the window's task is running is written when the task completes.
    await eventually(async () => (await signalsCarrying(stack, window.id, id)) === 1, {
      description: 'the signed event signalled to the window once',
    });
  });

  it('refuses a signed body that is not JSON, not an event, or has an unusable ID, with 400', async () => {
    for (const body of ['not json', '{"id":', '\u0000', '[]', 'null', '{"not":"an event"}']) {
      const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ ...errorBody, code: expect.stringMatching(/^invalid_(json|event)$/) });
    }
    const unusable = ['evt with space', 'evt_\u202e', 'x'.repeat(256)];
    for (const id of unusable) {
      const body = deliveryEvent(id, window.id, window.verificationId);
      const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
      expect(answer).toEqual({ status: 400, body: { ...errorBody, code: 'invalid_event' } });
    }
    for (const id of unusable) expect(await signalsCarrying(stack, window.id, id)).toBe(0);
  });

  it('refuses a body over the limit with 413 and a content type other than JSON with 415', async () => {
    const huge = JSON.stringify({ padding: 'x'.repeat(200_000) });
    const oversized = await post(stack, { ...json, 'x-webhook-signature': signature(huge) }, huge);
    expect(oversized).toEqual({ status: 413, body: { ...errorBody, code: 'payload_too_large' } });

    const id = eventId();
    const body = deliveryEvent(id, window.id, window.verificationId);
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
    expect(await signalsCarrying(stack, window.id, id)).toBe(0);
    // The JSON type with parameters is JSON.
    const charset = await post(
      stack,
      { 'content-type': 'application/json; charset=utf-8', 'x-webhook-signature': signature(body) },
      body,
    );
    expect(charset).toEqual({
      status: 200,
      body: { status: 'accepted', event_id: id, disposition: 'applied' },
    });
    // A signal that arrives while the window's task is running is written when the task completes.
    await eventually(async () => (await signalsCarrying(stack, window.id, id)) === 1, {
      description: 'the signed event signalled to the window once',
    });
  });

  it('applies a window’s event once: a redelivery of its event ID changes nothing', async () => {
    const own = await openWindow(stack);
    const id = eventId();
    const sentAt = new Date().toISOString();
    const body = deliveryEvent(id, own.id, own.verificationId, { time: sentAt });
    const deliver = (bytes: string) =>
      post(stack, { ...json, 'x-webhook-signature': signature(bytes) }, bytes);
    const accepted = { status: 200, body: { status: 'accepted', event_id: id, disposition: 'applied' } };

    expect(await deliver(body)).toEqual(accepted);
    const applied = await eventually(
      async () => {
        const [attempt, ...more] = await attemptsNamed(stack, own.id, `att_${id}`);
        return attempt?.deliveryStatus === 'delivered' && more.length === 0 && attempt;
      },
      { description: 'the event applied to its window' },
    );
    expect(applied).toMatchObject({ deliveryStatus: 'delivered', deliveryUpdatedAt: sentAt });

    // Prelude's redelivery (the same bytes), then the same event ID with a later, different report:
    // each is taken (200), neither is applied again.
    expect(await deliver(body)).toEqual(accepted);
    const altered = deliveryEvent(id, own.id, own.verificationId, {
      status: 'undeliverable',
      time: new Date(Date.parse(sentAt) + 60_000).toISOString(),
    });
    expect(await deliver(altered)).toEqual(accepted);
    // Signals taken while the window's task runs are written to its history once that task ends.
    await eventually(async () => (await signalsCarrying(stack, own.id, id)) === 3, {
      description: 'the three deliveries in the window’s history',
    });
    // A window takes its signals in order: once a later event is in, it has seen all three.
    const marker = eventId();
    const after = deliveryEvent(marker, own.id, own.verificationId);
    expect(await deliver(after)).toMatchObject({ status: 200, body: { disposition: 'applied' } });
    await eventually(async () => (await attemptsNamed(stack, own.id, `att_${marker}`)).length === 1, {
      description: 'a later event applied to the window',
    });
    expect(await attemptsNamed(stack, own.id, `att_${id}`)).toEqual([applied]);
  });

  it('acknowledges a signed event for a window that has ended, and it changes nothing', async () => {
    const ended = await openWindow(stack);
    await cancelVerificationById(stack.client, ended.id, stack.options);
    await stack.client.workflow.getHandle(ended.id).result();
    const id = eventId();
    const body = deliveryEvent(id, ended.id, ended.verificationId);
    const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
    expect(answer).toEqual({
      status: 200,
      body: { status: 'accepted', event_id: id, disposition: 'run_closed' },
    });
    expect(await signalsCarrying(stack, ended.id, id)).toBe(0);

    // A window ID of ours that never ran: the same answer, and no run appears.
    const nobody = `${windowIdPrefix}${randomBytes(16).toString('hex')}`;
    const other = eventId();
    const forNobody = deliveryEvent(other, nobody);
    expect(await post(stack, { ...json, 'x-webhook-signature': signature(forNobody) }, forNobody)).toEqual({
      status: 200,
      body: { status: 'accepted', event_id: other, disposition: 'run_closed' },
    });
    await expect(stack.client.workflow.getHandle(nobody).describe()).rejects.toThrow(WorkflowNotFoundError);
  });

  /** A signed event naming `correlationId` is answered 200 as naming no window, and signals nothing. */
  const expectAcknowledgedAsNoWindow = async (correlationId: string) => {
    const id = eventId();
    const body = deliveryEvent(id, correlationId, window.verificationId);
    const answer = await post(stack, { ...json, 'x-webhook-signature': signature(body) }, body);
    expect(answer).toEqual({
      status: 200,
      body: { status: 'accepted', event_id: id, disposition: 'unknown_target' },
    });
    expect(await signalsCarrying(stack, window.id, id)).toBe(0);
  };

  it('acknowledges a signed event that names no window of ours, and signals nothing', async () => {
    // Another system's ID, and our window's target key without the prefix: neither is a window ID.
    for (const correlationId of ['order-1234', window.id.slice(windowIdPrefix.length)]) {
      await expectAcknowledgedAsNoWindow(correlationId);
    }
    await expect(stack.client.workflow.getHandle('order-1234').describe()).rejects.toThrow(
      WorkflowNotFoundError,
    );
  });

  it('acknowledges a signed event whose correlation ID is not well-formed Unicode (no run can have it)', async () => {
    // A lone surrogate, as the HTTP fuzz found: Temporal refuses such a workflow ID, and a 5xx would
    // have Prelude deliver the event again for ever.
    for (const correlationId of [`${windowIdPrefix}\udfff`, `${window.id}\ud800`]) {
      await expectAcknowledgedAsNoWindow(correlationId);
    }
  });
});
