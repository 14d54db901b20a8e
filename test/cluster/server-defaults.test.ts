/**
 * The cluster on the Temporal server's default dynamic config, as an operator who skipped
 * deploy/temporal/dynamicconfig.yaml would run it: `prelude-temporal setup` tells that eager
 * activities are off (and that the required settings are on by default on this version), and the
 * README flow still verifies a code.
 */
import type { Cluster } from '../../tools/cluster';
import { call, clusterForSuite, latestCode, phoneTarget } from './support';

describe('a cluster on the server’s default dynamic config', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await clusterForSuite({ dynamicConfigPath: null, workers: 1 });
  }, 300_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('is reported by setup: eager activities off, the required settings on', () => {
    expect(cluster.setupOutput).toMatch(/^system\.enableActivityEagerExecution: off \(slower\)/m);
    expect(cluster.setupOutput).toMatch(/^frontend\.enableExecuteMultiOperation: on/m);
    expect(cluster.setupOutput).toMatch(/^frontend\.enableUpdateWorkflowExecution: on/m);
    expect(cluster.setupOutput).not.toContain('the project cannot run here');
  });

  it('still verifies a code, sent on one service and checked on the other', async () => {
    const target = phoneTarget();
    const sent = await call(cluster, 0, 'POST', '/verifications', { target });
    expect(sent).toMatchObject({ status: 200, body: { status: 'success' } });
    const checked = await call(cluster, 1, 'POST', '/verifications/check', {
      target,
      code: await latestCode(cluster, target.value),
    });
    expect(checked).toMatchObject({ status: 200, body: { status: 'success' } });
  });
});
