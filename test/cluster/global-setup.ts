import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { temporalInstall } from '../../tools/cluster/temporal-server';

const root = join(__dirname, '..', '..');
const run = promisify(execFile);

/**
 * Builds `dist/` as `npm run build` does (the cluster runs the product's own entry points), and
 * finds or builds the pinned Temporal server once for every suite (about four minutes on a fresh
 * machine, then cached).
 */
export default async function globalSetup(): Promise<void> {
  await Promise.all([
    (async () => {
      await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
        cwd: root,
      });
      await run(process.execPath, ['dist/src/cli.js', 'bundle'], { cwd: root });
    })(),
    temporalInstall(),
  ]);
}
