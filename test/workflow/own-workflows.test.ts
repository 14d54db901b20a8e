/**
 * The activities as a library: a user's own workflow, on its own worker, calls the Notify batch and
 * Watch events activities that the verification windows do not use, against the sandbox.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { loadConfig } from '../../temporal.config';
import { startStack, uniquePhoneNumber, type TestStack } from '../support/stack';

describe("the activities in a user's own workflow", () => {
  let stack: TestStack;
  let connection: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = `own-workflows-${randomUUID()}`;

  beforeAll(async () => {
    stack = await startStack();
    const { temporal } = loadConfig();
    connection = await NativeConnection.connect({ address: temporal.address });
    worker = await Worker.create({
      connection,
      namespace: temporal.namespace,
      taskQueue,
      workflowsPath: require.resolve('../fixtures/own-workflow'),
      activities: createActivities({ prelude: stack.prelude, client: stack.client }),
      dataConverter: stack.dataConverter,
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await stack?.stop();
  });

  const runCampaign = (args: unknown) =>
    stack.client.workflow.execute('campaignWorkflow', {
      taskQueue,
      workflowId: `campaign-${randomUUID()}`,
      args: [args],
    });

  it('sends one template to many recipients and reports signups to Watch', async () => {
    const recipients = [uniquePhoneNumber(), uniquePhoneNumber()];
    const result = await runCampaign({
      batch: {
        to: recipients,
        template_id: 'template_sandbox_order_shipped',
        variables: { order_id: 'B-7' },
      },
      events: {
        events: [
          {
            target: { type: 'phone_number', value: recipients[0] },
            label: 'onboarding.start',
            confidence: 'neutral',
          },
        ],
      },
    });
    expect(result).toEqual({ sent: 2, failed: 0 });
    for (const to of recipients) {
      const inbox = await fetch(`${stack.sandbox.url}/sandbox/messages?to=${encodeURIComponent(to)}`);
      const { messages } = (await inbox.json()) as { messages: { body: string }[] };
      expect(messages[0]?.body).toContain('B-7');
    }
  });

  it("fails the user's workflow, without retrying, when Prelude refuses the request", async () => {
    const failure = await runCampaign({
      batch: { to: [uniquePhoneNumber()], template_id: 'template_sandbox_order_shipped' },
      events: {
        events: [
          { target: { type: 'phone_number', value: '+33612345678' }, label: 'x', confidence: 'certain' },
        ],
      },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause?.cause;
    expect(cause).toMatchObject({ type: expect.stringMatching(/^Prelude\./), nonRetryable: true });
  });
});
