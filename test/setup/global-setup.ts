import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../src/devserver';
import { writeWorkflowBundle } from '../../src/worker';

declare global {
  var __temporalDevServer: DevServer | undefined;
}

/**
 * Starts one headless, in-memory dev server for the run (unless TEMPORAL_ADDRESS names one already)
 * and bundles the workflows once, so that each suite's workers start in milliseconds.
 * Test workers are forked after this and inherit the variables set here.
 */
export default async function globalSetup(): Promise<void> {
  const bundling = writeWorkflowBundle(
    join(mkdtempSync(join(tmpdir(), 'prelude-temporal-')), 'workflows.js'),
  );
  if (!process.env.TEMPORAL_ADDRESS) {
    const server = await startDevServer({ uiPort: false });
    globalThis.__temporalDevServer = server;
    process.env.TEMPORAL_ADDRESS = server.address;
  }
  process.env.TEST_WORKFLOW_BUNDLE = await bundling;
}
