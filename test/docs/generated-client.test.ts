/**
 * The README flow through a client generated from `/openapi.json` by an npm generator, as a team in
 * another stack would make one: openapi-typescript writes the types, openapi-fetch calls the running
 * service (sandbox, worker, dev server, service, all real). The types the generator writes are kept
 * in test/fixtures/service-api.ts, so that the flow below is type-checked against them
 * (`npm run typecheck`), and this test fails when the served document no longer generates them
 * (`npm run openapi:types` writes them again).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import createClient from 'openapi-fetch';
import type { paths } from '../fixtures/service-api';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';
import { generateServiceApi, serviceApiTypes } from './write-service-api';

const root = join(__dirname, '..', '..');
const token = 'a-token-of-the-generated-client';

describe('a client generated from /openapi.json', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ withServer: true, apiToken: token, policy: { resendCooldownSeconds: 30 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is what openapi-typescript generates from the served document', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'generated-client-'));
    try {
      const generated = join(dir, 'service-api.ts');
      await generateServiceApi(root, `${stack.serverUrl}/openapi.json`, generated);
      const kept = await readFile(join(root, serviceApiTypes), 'utf8');
      // When the document changed on purpose, `npm run openapi:types` writes the kept types again.
      expect(await readFile(generated, 'utf8')).toBe(kept);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('sends a code, is told when to resend, checks the code read from the inbox, and reads the verified window', async () => {
    const api = createClient<paths>({
      baseUrl: stack.serverUrl,
      headers: { authorization: `Bearer ${token}` },
    });
    const target = uniquePhoneTarget();

    const sent = await api.POST('/verifications', { body: { target } });
    // 200 (sent) or 202 (still sending at the deadline): the types tell the two apart.
    const opened = sent.data && 'attempts' in sent.data ? sent.data : undefined;
    expect([sent.response.status, opened?.status, opened?.attempts]).toEqual([200, 'success', 1]);

    // An error answer is typed too: its code, and when to ask again.
    const resent = await api.POST('/verifications', { body: { target } });
    expect([resent.response.status, resent.error?.code]).toEqual([429, 'premature_retry']);
    expect(
      resent.error && 'retry_after_seconds' in resent.error && resent.error.retry_after_seconds,
    ).toBeGreaterThan(0);

    const code = await stack.latestCode(target.value);
    const checked = await api.POST('/verifications/check', { body: { target, code } });
    expect([checked.response.status, checked.data?.status]).toEqual([200, 'success']);

    const window = await api.GET('/verifications/{id}', { params: { path: { id: opened!.id } } });
    expect([window.data?.status, window.data?.checks_used, window.data?.target.value]).toEqual([
      'verified',
      1,
      expect.stringContaining('•'),
    ]);
  });
});
