/**
 * Records the workflow histories the replay test checks new workflow code against
 * (`npm run histories:record`). Each scenario runs on the real dev server and the sandbox, and its
 * history is written to test/fixtures/histories/<scenario>.json. Re-record only on purpose: after a
 * deliberate, versioned change to a workflow, never to make a failing replay pass.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import {
  cancelVerification,
  checkCode,
  getVerification,
  startNotification,
  startVerification,
} from '../../src/client';
import { packageRoot, startDevServer } from '../../src/devserver';
import { writeWorkflowBundle } from '../../src/worker';
import { startStack, uniquePhoneNumber, uniquePhoneTarget, type TestStack } from '../support/stack';

const undeliverable = '+33699999002';
const suspicious = '+33699999003';
const outDir = join(packageRoot(), 'test', 'fixtures', 'histories');

type Scenario = (stack: TestStack) => Promise<string>;

const scenarios: Record<string, Scenario> = {
  async 'verified-after-resend-and-wrong-code'(stack) {
    const target = uniquePhoneTarget();
    const policy = { watchFeedback: true, successTemplateId: 'template_sandbox_verified' };
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    await startVerification(stack.client, { target }, stack.options);
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    await checkCode(stack.client, { target, code: await stack.latestCode(target.value) }, stack.options);
    return sent.windowId;
  },
  async 'max-checks'(stack) {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target, policy: { maxChecks: 2 } }, stack.options);
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    await checkCode(stack.client, { target, code: '000001' }, stack.options);
    return sent.windowId;
  },
  async 'canceled-after-delivery-reports'(stack) {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, stack.options);
    await until(async () => {
      const state = await getVerification(stack.client, target, stack.options);
      return state.attempts[0]?.deliveryStatus === 'delivered';
    });
    await cancelVerification(stack.client, target, stack.options);
    return sent.windowId;
  },
  async expired(stack) {
    const target = uniquePhoneTarget();
    const sent = await startVerification(
      stack.client,
      { target, policy: { windowSeconds: 2 } },
      stack.options,
    );
    return sent.windowId;
  },
  async 'fallback-after-undeliverable'(stack) {
    const target = { type: 'phone_number' as const, value: undeliverable };
    const policy = { windowSeconds: 4, maxSends: 2, fallbackChannels: ['sms' as const, 'whatsapp' as const] };
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    return sent.windowId;
  },
  async 'blocked-by-fraud-check'(stack) {
    const target = { type: 'phone_number' as const, value: suspicious };
    const sent = await startVerification(
      stack.client,
      { target, policy: { fraudMode: 'enforce' } },
      stack.options,
    );
    return sent.windowId;
  },
  async 'notification-delivered'(stack) {
    const { notificationId } = await startNotification(
      stack.client,
      {
        to: uniquePhoneNumber(),
        template_id: 'template_sandbox_order_shipped',
        variables: { order_id: 'R-1' },
      },
      { taskQueue: stack.taskQueue, deliveryTimeoutSeconds: 30 },
    );
    return notificationId;
  },
};

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(100);
  }
}

async function main(): Promise<void> {
  process.env.TEST_WORKFLOW_BUNDLE = await writeWorkflowBundle(
    join(mkdtempSync(join(tmpdir(), 'prelude-temporal-')), 'workflows.js'),
  );
  const devServer = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ uiPort: false });
  if (devServer) process.env.TEMPORAL_ADDRESS = devServer.address;
  const stack = await startStack({
    withServer: true,
    sandboxEnv: { SANDBOX_UNDELIVERABLE_NUMBERS: undeliverable, SANDBOX_SUSPICIOUS_NUMBERS: suspicious },
  });
  try {
    for (const [name, run] of Object.entries(scenarios)) {
      const handle = stack.client.workflow.getHandle(await run(stack));
      await handle.result();
      const file = join(outDir, `${name}.json`);
      writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
      console.log(JSON.stringify({ scenario: name, workflowId: handle.workflowId, file }));
    }
    // One ingest run, from the webhooks the scenarios above caused.
    for await (const run of stack.client.workflow.list({
      query: `WorkflowType = 'webhookIngestWorkflow' AND TaskQueue = '${stack.taskQueue}'`,
    })) {
      const handle = stack.client.workflow.getHandle(run.workflowId, run.runId);
      const file = join(outDir, 'webhook-ingest.json');
      writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
      console.log(JSON.stringify({ scenario: 'webhook-ingest', workflowId: run.workflowId, file }));
      break;
    }
  } finally {
    await stack.stop();
    await devServer?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
