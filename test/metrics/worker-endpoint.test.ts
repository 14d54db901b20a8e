/**
 * The worker's `/metrics` as an operator scrapes it: `npm run worker`'s own process (the CLI, so the
 * Temporal SDK's runtime exports its metrics) on METRICS_PORT, behind METRICS_TOKEN, serving the domain
 * metrics and the SDK's in one page after a real verification. Then every query of the Grafana
 * dashboard and of the README's "Monitoring" section must name a metric these pages (or the service's)
 * actually export.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/devserver';
import { runCli, waitForOutput, type CliProcess } from '../support/cli';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, workerProcessEnv, type TestStack } from '../support/stack';

const root = join(__dirname, '..', '..');
const metricsToken = 'a-long-enough-metrics-token';

/** Every metric name a Prometheus text page exports, histogram series included. */
function exportedNames(page: string): Set<string> {
  const names = new Set<string>();
  for (const line of page.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      names.add(name);
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
    } else if (line && !line.startsWith('#')) {
      names.add(/^[^{\s]+/.exec(line)![0]);
    }
  }
  return names;
}

/** The metric names a PromQL expression reads (ours and the Temporal SDK's). */
const metricsIn = (expression: string) => expression.match(/\b(?:prelude_)?temporal_[a-z0-9_]+/g) ?? [];

describe('the worker’s /metrics', () => {
  let stack: TestStack;
  let worker: CliProcess;
  let metricsUrl: string;
  let workerPage: string;
  let servicePage: string;
  const target = uniquePhoneTarget();

  const scrape = async (token?: string) =>
    fetch(metricsUrl, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  beforeAll(async () => {
    stack = await startStack({ withServer: true, withoutWorker: true });
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    worker = runCli('worker', mkdtempSync(join(tmpdir(), 'worker-metrics-')), {
      ...workerProcessEnv(stack),
      PRELUDE_CALLBACK_URL: `${stack.serverUrl}/webhooks/prelude`,
      METRICS_PORT: String(port),
      METRICS_TOKEN: metricsToken,
    });
    await waitForOutput(worker, 'worker polling');

    const post = (path: string, body: unknown) =>
      fetch(`${stack.serverUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then((response) => response.json() as Promise<Record<string, unknown>>);
    expect(await post('/verifications', { target })).toMatchObject({ status: 'success' });
    expect(
      await post('/verifications/check', { target, code: await stack.latestCode(target.value) }),
    ).toMatchObject({
      status: 'success',
    });
    workerPage = await eventually(
      async () => {
        const page = await (await scrape(metricsToken)).text();
        return page.includes('prelude_temporal_windows_closed_total{outcome="verified"') && page;
      },
      {
        description: 'the verified window counted on the worker’s /metrics page',
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\nworker output:\n${worker.output()}`, { cause: error });
    });
    servicePage = await (await fetch(`${stack.serverUrl}/metrics`)).text();
  }, 120_000);
  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  it('serves the domain metrics and the Temporal SDK’s in one page, behind METRICS_TOKEN', async () => {
    expect(worker.output()).toContain(`worker metrics: ${metricsUrl}`);
    expect((await scrape()).status).toBe(401);
    expect((await scrape('a-wrong-token-of-enough-length')).status).toBe(401);
    const answer = await scrape(metricsToken);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);

    expect(workerPage).toMatch(
      /prelude_temporal_windows_closed_total\{outcome="verified",channel="sms",country="FR"\} 1/,
    );
    expect(workerPage).toMatch(
      /prelude_temporal_prelude_requests_total\{operation="createVerification",result="ok"\} \d/,
    );
    // The Temporal SDK's worker metrics, exported by its runtime.
    expect(workerPage).toMatch(/^temporal_worker_start\{/m);
    expect(workerPage).toMatch(/^temporal_workflow_task_schedule_to_start_latency_bucket\{/m);
    expect(workerPage).toMatch(/^temporal_worker_task_slots_available\{/m);
    // Node's own.
    expect(workerPage).toMatch(/^process_resident_memory_bytes /m);

    const code = await stack.latestCode(target.value);
    for (const secret of [target.value.slice(3), code]) expect(workerPage).not.toContain(secret);
  });

  it('answers anything but GET /metrics with a JSON 404', async () => {
    const answer = await fetch(metricsUrl.replace('/metrics', '/'));
    expect(answer.status).toBe(404);
    expect(await answer.json()).toMatchObject({ code: 'not_found' });
  });

  it('names, in every dashboard and README query, only metrics the code exports', () => {
    const exported = new Set([...exportedNames(workerPage), ...exportedNames(servicePage)]);
    const dashboard = JSON.parse(
      readFileSync(join(root, 'deploy', 'grafana', 'dashboards', 'prelude-temporal.json'), 'utf8'),
    ) as {
      panels: { title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
      templating: { list: { query?: unknown }[] };
    };
    const queries = [
      ...dashboard.panels.flatMap((panel) =>
        (panel.targets ?? []).map((t) => [panel.title, t.expr] as const),
      ),
      ...dashboard.templating.list.map((v) => ['variable', JSON.stringify(v.query ?? '')] as const),
    ];
    expect(queries.length).toBeGreaterThan(20);
    const unknown = queries.flatMap(([title, expr]) =>
      metricsIn(expr)
        .filter((name) => !exported.has(name))
        .map((name) => `${title}: ${name}`),
    );
    expect(unknown).toEqual([]);
    // Every panel reads the provisioned data source.
    const datasource = readFileSync(
      join(root, 'deploy/grafana/provisioning/datasources/prometheus.yml'),
      'utf8',
    );
    const uid = /uid: (\S+)/.exec(datasource)![1];
    expect(
      dashboard.panels.filter((p) => p.targets && p.datasource?.uid !== uid).map((p) => p.title),
    ).toEqual([]);

    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const monitoring = readme.slice(
      readme.indexOf('## Monitoring'),
      readme.indexOf('\n## ', readme.indexOf('## Monitoring') + 5),
    );
    const promql = [...monitoring.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(promql.length).toBeGreaterThanOrEqual(2);
    expect(promql.flatMap(metricsIn).filter((name) => !exported.has(name))).toEqual([]);
    // The metrics the README's table lists are exported too.
    const listed = [...monitoring.matchAll(/^\| `((?:prelude_)?temporal_[a-z0-9_]+)`/gm)].map((m) => m[1]!);
    expect(listed.length).toBeGreaterThan(10);
    expect(listed.filter((name) => !exported.has(name))).toEqual([]);
  });
});
