import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../src/devserver';
import { workflowBundlePath } from '../../src/worker';

declare global {
  var __temporalDevServer: DevServer | undefined;
}

const root = join(__dirname, '..', '..');
const run = promisify(execFile);

/**
 * Builds `dist/` as `npm run build` does (the CLI suites run the product's own entry points, and
 * its prebuilt workflow bundle lets each suite's workers start in milliseconds), and starts one
 * headless, in-memory dev server for the run (unless TEMPORAL_ADDRESS names one already).
 * Test workers are forked after this and inherit the variables set here.
 */
export default async function globalSetup(): Promise<void> {
  const building = (async () => {
    await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
    });
    await run(process.execPath, ['dist/src/cli.js', 'bundle'], { cwd: root });
  })();
  // Awaited below; a build that fails first must not surface as an unhandled rejection meanwhile.
  building.catch(() => undefined);
  if (!process.env.TEMPORAL_ADDRESS) {
    const server = await startDevServer({ uiPort: false });
    globalThis.__temporalDevServer = server;
    process.env.TEMPORAL_ADDRESS = server.address;
  }
  try {
    await building;
  } catch (error) {
    // Jest runs no teardown after a failed setup: the dev server would outlive the run, ports and all.
    await globalThis.__temporalDevServer?.stop();
    throw error;
  }
  process.env.TEST_WORKFLOW_BUNDLE = workflowBundlePath;
}
