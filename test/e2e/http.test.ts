/**
 * The mission end to end, as a user meets it over HTTP: the service, the worker, the real dev
 * server and the Prelude sandbox posting signed webhooks back to the service.
 */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { EncryptionCodec } from '../../src/codec';
import { runServer } from '../../src/stack';
import { loadConfig } from '../../temporal.config';
import { targetKeySearchAttribute } from '../../workflows/search-attributes';
import { sendGuardWorkflow } from '../../workflows/send-guard';
import { targetLimitsWorkflow } from '../../workflows/target-limits';
import { windowIdPrefix } from '../../workflows/verification-messages';
import { expectDocumented } from '../docs/openapi-conformance';
import { api, strip } from '../support/api';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** Signs a body as Prelude does. */
function signature(body: string): string {
  const signed = sign('sha256', Buffer.from(body), {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  return `rsassa-pss-sha256=${signed.toString('base64')}`;
}

/**
 * The window once a `delivered` report has come in through the webhooks: about its first attempt,
 * or (`anyAttempt`) about any. The sandbox redelivers a refused webhook after 1, 2, 4, 8… s, so the
 * wait covers a few of those; when it times out, it says what the window and the sandbox's newest
 * deliveries looked like.
 */
async function deliveredReport(stack: TestStack, windowId: string, { anyAttempt = false } = {}) {
  try {
    return await eventually(
      async () => {
        const { body } = await api(stack, 'GET', `/verifications/${encodeURIComponent(windowId)}`);
        const attempts: { delivery_status?: string }[] = body.attempts ?? [];
        const delivered = anyAttempt ? attempts : attempts.slice(0, 1);
        if (delivered.some((attempt) => attempt.delivery_status === 'delivered')) return body;
        throw new Error(`window ${JSON.stringify({ status: body.status, attempts: body.attempts })}`);
      },
      { description: 'the delivered report in the window', timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (error) {
    const deliveries = (await stack.webhookDeliveries()).slice(0, 6);
    throw new Error(
      `${(error as Error).message}; the sandbox's newest deliveries: ${JSON.stringify(deliveries)}`,
      {
        cause: error,
      },
    );
  }
}

/** How many signals in a window's history carry an event ID (decoded: payloads are encrypted). */
async function signalsCarrying(stack: TestStack, windowId: string, eventId: string): Promise<number> {
  const history = await stack.client.workflow.getHandle(windowId).fetchHistory();
  const codec = new EncryptionCodec(stack.keyRing!);
  const signalled = await Promise.all(
    (history.events ?? []).flatMap(
      (e) =>
        e.workflowExecutionSignaledEventAttributes?.input?.payloads?.map((p) =>
          codec.decode([p as Payload]),
        ) ?? [],
    ),
  );
  return signalled.filter(([p]) =>
    Buffer.from(p?.data ?? [])
      .toString()
      .includes(eventId),
  ).length;
}

describe('HTTP service end to end', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      sandboxEnv: { SANDBOX_WEBHOOK_PRIVATE_KEY: privateKeyPem },
      policy: { resendCooldownSeconds: 30 },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('sends, checks and shows a window over HTTP, with delivery statuses from webhooks', async () => {
    const target = uniquePhoneTarget();
    const since = new Date(Date.now() - 1_000).toISOString();
    const started = await api(stack, 'POST', '/verifications', { target });
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({
      status: 'success',
      attempts: 1,
      verification_id: expect.stringMatching(/^vrf_/),
    });

    const delivered = await deliveredReport(stack, started.body.id);
    expect(delivered.target.value).not.toContain(target.value.slice(3, -2));
    expect(delivered.attempts[0].attempt_id).toMatch(/^att_/);

    const code = await stack.latestCode(target.value);
    const checked = await api(stack, 'POST', '/verifications/check', { target, code });
    expect(strip(checked)).toEqual({
      status: 200,
      body: expect.objectContaining({ status: 'success', id: started.body.id }),
    });
    const { body: final } = await api(stack, 'GET', `/verifications/${encodeURIComponent(started.body.id)}`);
    expect(final.status).toBe('verified');

    // The whole verification, its delivery webhooks included, ran as two executions of its own: the
    // window and the target's limits entity. Nothing runs per webhook event. The send passed one
    // send guard shard, an entity shared by every send to its country's shard (not per verification).
    const startedHere = `TaskQueue = '${stack.taskQueue}' AND StartTime >= '${since}'`;
    const guards = `WorkflowType = '${sendGuardWorkflow.name}'`;
    const ownExecutions = `${startedHere} AND WorkflowType != '${sendGuardWorkflow.name}'`;
    const executions = await eventually(
      async () => {
        const { count } = await stack.client.workflow.count(ownExecutions);
        return count >= 2 && count;
      },
      { description: 'the window and its limits entity in the visibility listing', timeoutMs: 15_000 },
    );
    expect(executions).toBe(2);
    expect((await stack.client.workflow.count(`${startedHere} AND ${guards}`)).count).toBeLessThanOrEqual(1);
    expect(final.attempts[0].delivery_status).toBe('delivered');
  });

  it('answers 429 premature_retry with retry_after_seconds for a resend inside the cooldown', async () => {
    const target = uniquePhoneTarget();
    await api(stack, 'POST', '/verifications', { target });
    const again = await api(stack, 'POST', '/verifications', { target });
    expect(again.status).toBe(429);
    expect(again.body).toMatchObject({ code: 'premature_retry', retry_after_seconds: expect.any(Number) });
  });

  it('answers a send Prelude fails at every attempt 503 with nothing_sent, and the retry sends', async () => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ failNextCalls: { 'verification.create': 3 } });
    const failed = await api(stack, 'POST', '/verifications', { target });
    expect(failed.status).toBe(503);
    expect(failed.body).toEqual({
      code: 'prelude_unavailable',
      message: expect.any(String),
      nothing_sent: true,
    });
    expect(await stack.appliedCalls(target.value, 'verification.create')).toEqual([]);
    const retried = await api(stack, 'POST', '/verifications', { target });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ status: 'success', attempts: 1 });
  });

  it('refuses bad input with 400 and a JSON { code, message }', async () => {
    const badPhone = await api(stack, 'POST', '/verifications', {
      target: { type: 'phone_number', value: '0612' },
    });
    expect(badPhone.status).toBe(400);
    expect(badPhone.body).toEqual({ code: 'invalid_request', message: expect.any(String) });

    const target = uniquePhoneTarget();
    await api(stack, 'POST', '/verifications', { target });
    const badCode = await api(stack, 'POST', '/verifications/check', { target, code: '1' });
    expect(strip(badCode)).toEqual({
      status: 400,
      body: { code: 'invalid_code', message: expect.any(String) },
    });

    const notJson = await api(stack, 'POST', '/verifications', '{"target":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe('invalid_request');
  });

  it('answers 404 for an unknown window and cancels an open one', async () => {
    expect((await api(stack, 'GET', '/verifications/verification-nobody')).status).toBe(404);
    const target = uniquePhoneTarget();
    const { body } = await api(stack, 'POST', '/verifications', { target });
    const canceled = await api(stack, 'DELETE', `/verifications/${encodeURIComponent(body.id)}`);
    expect(canceled).toMatchObject({ status: 200, body: { status: 'canceled' } });
  });

  it('forgets a target: its windows, closed and open, are deleted', async () => {
    const target = uniquePhoneTarget();
    const first = await api(stack, 'POST', '/verifications', { target });
    await api(stack, 'DELETE', `/verifications/${first.body.id}`);
    const second = await api(stack, 'POST', '/verifications', { target });
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.status).toBe('success');
    // Any attempt: Prelude's verification is still open, so the reopened window's send is a retry
    // there, and a late report about the canceled run's attempt can be recorded on this run (README,
    // "Webhooks").
    await deliveredReport(stack, second.body.id, { anyAttempt: true });
    const key = String(first.body.id).slice(windowIdPrefix.length);
    const filed =
      `(WorkflowId = '${first.body.id}' OR ${targetKeySearchAttribute.name} = '${key}') ` +
      `AND WorkflowType != '${targetLimitsWorkflow.name}'`;
    const filedRuns = async () => {
      const runs: { workflowId: string; runId: string }[] = [];
      for await (const run of stack.client.workflow.list({ query: filed })) runs.push(run);
      return runs;
    };
    const before = await eventually(
      async () => {
        const runs = await filedRuns();
        return runs.length >= 2 ? runs : undefined;
      },
      {
        description: 'both windows in the visibility listing',
        timeoutMs: 15_000,
        intervalMs: 200,
      },
    );

    const forgotten = await api(stack, 'POST', '/verifications/forget', { target });
    expect(strip(forgotten)).toEqual({
      status: 200,
      body: { status: 'forgotten', target_key: key, deleted: expect.any(Number) },
    });
    expect(forgotten.body.deleted).toBeGreaterThanOrEqual(2);
    // The answer comes once the executions are gone from Temporal's store (visibility follows).
    expect((await api(stack, 'GET', `/verifications/${first.body.id}`)).status).toBe(404);
    // Every run that was filed is gone from Temporal's store (its visibility listing follows later).
    // A run still there, as the timeout error shows it; undefined once it is gone.
    const stillThere = async ({ workflowId, runId }: { workflowId: string; runId: string }) =>
      stack.client.workflow
        .getHandle(workflowId, runId)
        .describe()
        .then(
          ({ type, status, closeTime, historyLength }) =>
            `${type} ${runId} ${status.name} closed ${closeTime?.toISOString() ?? 'no'}, ${historyLength} events`,
          (error: unknown) => {
            if (error instanceof WorkflowNotFoundError) return undefined;
            throw error;
          },
        );
    await eventually(
      async () => {
        const left = (await Promise.all(before.map(stillThere))).filter(Boolean);
        if (left.length > 0) throw new Error(`still there: ${left.join('; ')}`);
        return true;
      },
      {
        description: 'every filed run deleted from Temporal’s store',
        // About 5 s on the dev server as `startDevServer` configures it (see its transfer-queue setting).
        timeoutMs: 45_000,
        intervalMs: 200,
      },
    );
    expect(
      (await api(stack, 'POST', '/verifications/forget', { target: { type: 'phone_number' } })).status,
    ).toBe(400);
  }, 150_000);

  it('applies a redelivered webhook event once', async () => {
    const target = uniquePhoneTarget();
    const { body: window } = await api(stack, 'POST', '/verifications', { target });
    const event = {
      id: `evt_redelivered${Date.now()}`,
      type: 'verify.delivery_status',
      created_at: new Date().toISOString(),
      payload: {
        id: 'dls_01jnh4zwabf1grfsaq955ej3mt',
        attempt_id: 'att_3v9s0v9gzt8hws0cp753q4gj0c',
        verification_id: window.verification_id,
        target,
        status: 'in_transit',
        time: '2999-01-01T00:00:00.000Z',
        price: { amount: 0.009, currency: 'EUR' },
        carrier_information: { mcc: '208', mnc: '10' },
        metadata: { correlation_id: window.id },
      },
    };
    const body = JSON.stringify(event);
    const post = () =>
      fetch(`${stack.serverUrl}/webhooks/prelude`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-webhook-signature': signature(body) },
        body,
      }).then(async (r) => {
        const answer = { status: r.status, body: (await r.json()) as unknown };
        await expectDocumented('POST', '/webhooks/prelude', answer.status, answer.body);
        return answer;
      });

    const accepted = {
      status: 200,
      body: { status: 'accepted', event_id: event.id, disposition: 'applied' },
    };
    expect(await post()).toEqual(accepted);
    const ours = async () => {
      const { body } = await api(stack, 'GET', `/verifications/${encodeURIComponent(window.id)}`);
      return (body.attempts as { attempt_id?: string }[]).filter(
        (a) => a.attempt_id === event.payload.attempt_id,
      );
    };
    const once = await eventually(
      async () => {
        const attempts = await ours();
        return attempts.length > 0 && attempts;
      },
      {
        description: 'the report in the window',
      },
    );
    expect(once).toEqual([expect.objectContaining({ delivery_status: 'in_transit' })]);
    // Delivered again: signalled again, and the window, which knows the event ID, changes nothing.
    expect(await post()).toEqual(accepted);
    // Signals taken while the window's task runs are written to its history once that task ends.
    await eventually(async () => (await signalsCarrying(stack, window.id, event.id)) === 2, {
      description: 'both deliveries in the window’s history',
    });
    expect(await ours()).toEqual(once);
  });

  it('refuses a bad signature, a malformed event and an oversized body, and signals nothing', async () => {
    const target = uniquePhoneTarget();
    const { body: window } = await api(stack, 'POST', '/verifications', { target });
    const event = JSON.stringify({
      id: 'evt_refused000000000000000001',
      type: 'verify.attempt',
      payload: { metadata: { correlation_id: window.id } },
      created_at: 'x',
    });
    const send = (body: string, sig?: string) =>
      fetch(`${stack.serverUrl}/webhooks/prelude`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(sig ? { 'x-webhook-signature': sig } : {}) },
        body,
      });

    const tampered = signature(event).replace(/.{4}$/, 'AAA=');
    expect((await send(event, tampered)).status).toBe(401);
    expect((await send(event)).status).toBe(401);
    const garbage = '{"not":"an event"}';
    const malformed = await send(garbage, signature(garbage));
    expect(malformed.status).toBe(400);
    const malformedBody: unknown = await malformed.json();
    expect(malformedBody).toMatchObject({ code: 'invalid_event' });
    await expectDocumented('POST', '/webhooks/prelude', 400, malformedBody);
    const huge = JSON.stringify({ padding: 'x'.repeat(200_000) });
    const oversized = await send(huge, signature(huge));
    expect(oversized.status).toBe(413);
    const oversizedBody: unknown = await oversized.json();
    expect(oversizedBody).toMatchObject({ code: 'payload_too_large' });
    await expectDocumented('POST', '/webhooks/prelude', 413, oversizedBody);

    expect(await signalsCarrying(stack, window.id, 'evt_refused000000000000000001')).toBe(0);
  });
});

describe('HTTP service with a bearer token', () => {
  let stack: TestStack;
  const token = 'a-long-enough-test-token';

  beforeAll(async () => {
    stack = await startStack({ withServer: true, apiToken: token });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses callers without the token and serves those with it', async () => {
    const target = uniquePhoneTarget();
    const anonymous = await api(stack, 'POST', '/verifications', { target });
    expect(strip(anonymous)).toEqual({
      status: 401,
      body: { code: 'unauthorized', message: expect.any(String) },
    });
    const wrong = await api(stack, 'POST', '/verifications', { target }, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    const allowed = await api(
      stack,
      'POST',
      '/verifications',
      { target },
      { authorization: `Bearer ${token}` },
    );
    expect(allowed.status).toBe(200);
    expect((await api(stack, 'GET', '/healthz')).status).toBe(200);
    expect((await api(stack, 'GET', '/readyz')).body).toEqual({ status: 'ready' });
  });
});

describe('fallback on an undeliverable number', () => {
  let stack: TestStack;
  const target = uniquePhoneTarget();

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      sandboxEnv: { SANDBOX_UNDELIVERABLE_NUMBERS: target.value },
      policy: { fallbackChannels: ['sms', 'whatsapp', 'voice'], resendCooldownSeconds: 0, maxSends: 3 },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('resends on the next channel when an attempt is reported undeliverable, within the send budget', async () => {
    const { body: window } = await api(stack, 'POST', '/verifications', { target });
    const state = await eventually(
      async () => {
        const { body } = await api(stack, 'GET', `/verifications/${encodeURIComponent(window.id)}`);
        return body.attempts?.length === 3 ? body : undefined;
      },
      { description: 'three attempts, two of them fallbacks', timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(state.attempts.map((a: { channel: string }) => a.channel)).toEqual(['sms', 'whatsapp', 'voice']);
    expect(state.attempts.map((a: { trigger: string }) => a.trigger)).toEqual([
      'initial',
      'fallback',
      'fallback',
    ]);
    expect(state.sends_left).toBe(0);
  });
});

describe('HTTP service started from configuration against the sandbox', () => {
  it('verifies webhooks with the sandbox’s own key when no key is configured', async () => {
    const stack = await startStack({ sandboxEnv: { SANDBOX_WEBHOOK_PRIVATE_KEY: privateKeyPem } });
    const server = await runServer(
      loadConfig({
        TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS,
        TEMPORAL_TASK_QUEUE: stack.taskQueue,
        PRELUDE_BASE_URL: stack.sandbox.url,
        PORT: '0',
        VERIFY_ID_KEY: stack.options.idKey!,
        PAYLOAD_CODEC_KEYS: `t1:${stack.keyRing!.keys.t1!.toString('base64')}`,
      }),
      { client: stack.client },
    );
    try {
      const body = JSON.stringify({
        id: `evt_keyless${Date.now()}`,
        type: 'verify.event_from_a_newer_api',
        created_at: new Date().toISOString(),
        payload: {},
      });
      const response = await fetch(`${server.url}/webhooks/prelude`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-webhook-signature': signature(body) },
        body,
      });
      // 503 `webhook_key_missing` without a key, 401 with the wrong one.
      expect(response.status).toBe(200);
    } finally {
      await server.stop();
      await stack.stop();
    }
  });
});
