/**
 * Our workflow modules are loaded once per workflow thread (the bundler's `preloadModules`), not
 * once per workflow: in the bundle `npm run build` ships, and in a team's bundle through the plugin,
 * where the team's own modules stay theirs to preload.
 */
import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { verificationPlugin } from '../../src/temporal-plugin';
import { workflowBundlePath } from '../../src/worker';
import { preloadedWorkflowModules, workflowsModule } from '../../src/workflow-modules';

describe('the workflow modules a worker loads once', () => {
  it('are preloaded by the bundle npm run build ships (written by the test setup)', () => {
    const code = readFileSync(workflowBundlePath, 'utf8');
    const preload = /exports\.preloadModules = function preloadModules\(\) \{([^}]*)\}/.exec(code)?.[1];
    const preloaded = [...(preload ?? '').matchAll(/"(\.\/[^"]+)"\)/g)].map(([, id]) => id);
    expect(preloaded).toEqual(['./dist/workflows/index.js', './dist/src/metrics/workflow-interceptors.js']);
  });

  it("are added to a team's own preloads by the plugin, and the team's workflows are not preloaded", () => {
    const plugin = verificationPlugin({
      prelude: { apiKey: 'test-key' },
      keyRing: null,
      // Never called here: the activities only hold it.
      client: {} as Client,
    });
    const theirs = { workflowsPath: '/app/workflows.js', preloadModules: ['/app/lookup-table.js'] };
    const bundled = plugin.configureBundler(theirs);
    expect(bundled.preloadModules).toEqual(['/app/lookup-table.js', ...preloadedWorkflowModules()]);
    expect(bundled.preloadModules).toContain(workflowsModule());
    expect(bundled.preloadModules).not.toContain(theirs.workflowsPath);
    expect(bundled.preloadModules).not.toContain(bundled.workflowsPath);
  });
});
