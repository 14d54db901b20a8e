/**
 * Two public OpenAPI linters, with their own recommended rules, on the document `/openapi.json`
 * serves: teams in other languages generate clients from it, and a finding of either is something a
 * generator or a reader trips on.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseKeyRing } from '../../src/codec';
import { offlineService, request } from '../server/offline-service';

const run = promisify(execFile);
const bin = (name: string) => join(__dirname, '..', '..', 'node_modules', '.bin', name);

/**
 * A linter's JSON report. Both exit non-zero when they find something, which is the report, not a
 * failure of the run; a run that printed no report fails with what it said instead.
 */
async function report(command: string, args: string[]): Promise<unknown> {
  // Redocly reports usage over the network unless told not to.
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const { stdout, stderr } = await run(command, args, { env }).catch(
    (error: { stdout?: string; stderr?: string }) => ({
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  );
  const start = stdout.search(/[[{]/);
  if (start < 0) throw new Error(`${command} printed no report: ${stderr}`);
  return JSON.parse(stdout.slice(start));
}

/** Spectral's severities, by number. */
const severityNames = ['error', 'warning', 'info', 'hint'];

describe('the OpenAPI document, linted', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openapi-lint-'));
    file = join(dir, 'openapi.json');
    // As `npm start` serves it: with the Web UI's codec endpoints.
    const app = offlineService({
      adminToken: 'an-admin-token-for-tests',
      codec: {
        keyRing: parseKeyRing(`k1:${Buffer.alloc(32, 1).toString('base64')}`),
        tokens: [],
        corsOrigins: [],
      },
    });
    try {
      await writeFile(file, (await request(app, { method: 'GET', url: '/openapi.json' })).body);
    } finally {
      await app.close();
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("has no error and no warning under Redocly's recommended rules", async () => {
    const { problems } = (await report(bin('redocly'), [
      'lint',
      file,
      '--extends',
      'recommended',
      '--format',
      'json',
    ])) as {
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    const lines = problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    expect(lines).toEqual([]);
  }, 120_000);

  it("has no finding under Spectral's spectral:oas rules", async () => {
    const results = (await report(bin('spectral'), [
      'lint',
      file,
      '--ruleset',
      join(__dirname, 'spectral.yaml'),
      '--format',
      'json',
      '--quiet',
    ])) as {
      code: string;
      severity: number;
      message: string;
      path: string[];
    }[];
    const lines = results.map(
      (r) => `${severityNames[r.severity]} ${r.code} at ${r.path.join('.')}: ${r.message}`,
    );
    expect(lines).toEqual([]);
  }, 120_000);
});
