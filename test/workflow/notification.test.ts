/**
 * Notify messages followed to delivery: the send, the sandbox's signed message webhooks through the
 * HTTP service and the ingest, and the run's outcome.
 */
import {
  getNotification,
  notificationResult,
  startNotification,
  VerificationError,
  type NotificationClientOptions,
} from '../../src/client';
import { startStack, uniquePhoneNumber, type TestStack } from '../support/stack';

const failingNumber = '+33699999001';

async function inboxOf(stack: TestStack, to: string): Promise<{ body: string }[]> {
  const response = await fetch(`${stack.sandbox.url}/sandbox/messages?to=${encodeURIComponent(to)}`);
  return ((await response.json()) as { messages: { body: string }[] }).messages;
}

describe('notification runs', () => {
  let stack: TestStack;
  let options: NotificationClientOptions;

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      sandboxEnv: { SANDBOX_UNDELIVERABLE_NUMBERS: failingNumber, SANDBOX_DELIVERY_DELAY_MS: '50' },
    });
    options = {
      taskQueue: stack.taskQueue,
      deliveryTimeoutSeconds: 30,
      callTimeoutMs: stack.options.callTimeoutMs,
    };
  });
  afterAll(async () => {
    await stack?.stop();
  });
  afterEach(() => stack.resetSandbox());

  it('sends a templated message and ends delivered once the webhook says so', async () => {
    const to = uniquePhoneNumber();
    const { notificationId } = await startNotification(
      stack.client,
      { to, template_id: 'template_sandbox_order_shipped', variables: { order_id: 'A-1042' } },
      options,
    );
    const done = await notificationResult(stack.client, notificationId);
    expect(done).toMatchObject({ outcome: 'delivered', messageId: expect.stringMatching(/^tx_/) });
    expect(done.reports.map((r) => r.status)).toEqual(expect.arrayContaining(['created', 'delivered']));
    expect((await inboxOf(stack, to))[0]?.body).toContain('A-1042');
    await expect(getNotification(stack.client, notificationId, options)).resolves.toMatchObject({
      outcome: 'delivered',
    });
  });

  it('ends failed with the reason when the message cannot be delivered', async () => {
    const { notificationId } = await startNotification(
      stack.client,
      { to: failingNumber, template_id: 'template_sandbox_verified' },
      options,
    );
    const done = await notificationResult(stack.client, notificationId);
    expect(done.outcome).toBe('failed');
    expect(done.failure?.code).toBe('unknown_recipient');
  });

  it('ends rejected, with Prelude’s reason, when Notify refuses the send', async () => {
    const to = uniquePhoneNumber();
    const { notificationId } = await startNotification(
      stack.client,
      { to, template_id: 'template_that_does_not_exist' },
      options,
    );
    const done = await notificationResult(stack.client, notificationId);
    expect(done.outcome).toBe('rejected');
    expect(done.failure?.message).toMatch(/template/i);
    expect(await inboxOf(stack, to)).toEqual([]);
  });

  it('sends a message once for one idempotency key', async () => {
    const to = uniquePhoneNumber();
    const request = { to, template_id: 'template_sandbox_verified', idempotencyKey: `welcome-${to}` };
    const first = await startNotification(stack.client, request, options);
    const second = await startNotification(stack.client, request, options);
    expect(second.notificationId).toBe(first.notificationId);
    await notificationResult(stack.client, first.notificationId);
    expect(await inboxOf(stack, to)).toHaveLength(1);
  });

  it('sends a message once when the answer to its send is lost: the webhook names it', async () => {
    const to = uniquePhoneNumber();
    await stack.configureSandbox({ dropNextAnswers: { 'notify.send': 1 } });
    const { notificationId } = await startNotification(
      stack.client,
      { to, template_id: 'template_sandbox_verified' },
      options,
    );
    const done = await notificationResult(stack.client, notificationId);

    // The sandbox carried out one send, whose answer it lost; the run knows its message all the same.
    const sends = await stack.appliedCalls(to, 'notify.send');
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ dropped: true, answer: { correlation_id: notificationId } });
    expect(await inboxOf(stack, to)).toHaveLength(1);
    expect(done).toMatchObject({ outcome: 'delivered', messageId: sends[0]!.answer.id });
  });

  it('sends again at once when Prelude answered the send with an error: one message', async () => {
    const to = uniquePhoneNumber();
    await stack.configureSandbox({ failNextCalls: { 'notify.send': 1 } });
    const started = Date.now();
    const { notificationId } = await startNotification(
      stack.client,
      { to, template_id: 'template_sandbox_verified' },
      options,
    );
    const done = await notificationResult(stack.client, notificationId);
    expect(done.outcome).toBe('delivered');
    expect(await inboxOf(stack, to)).toHaveLength(1);
    // A 500 means Prelude took nothing: no wait for a webhook before the next attempt.
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('refuses a malformed request without starting anything', async () => {
    await expect(
      startNotification(
        stack.client,
        { to: '0612345678', template_id: 'template_sandbox_verified' },
        options,
      ),
    ).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(getNotification(stack.client, 'notification-nope', options)).rejects.toBeInstanceOf(
      VerificationError,
    );
  });
});

describe('notification runs without delivery reports', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack(); // no service: nobody receives the sandbox's webhooks
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('end timed_out when no final status arrives in time', async () => {
    const { notificationId } = await startNotification(
      stack.client,
      { to: uniquePhoneNumber(), template_id: 'template_sandbox_verified', deliveryTimeoutSeconds: 1 },
      { taskQueue: stack.taskQueue, deliveryTimeoutSeconds: 30, callTimeoutMs: stack.options.callTimeoutMs },
    );
    const done = await notificationResult(stack.client, notificationId);
    expect(done).toMatchObject({ outcome: 'timed_out', messageId: expect.stringMatching(/^tx_/) });
  });
});
