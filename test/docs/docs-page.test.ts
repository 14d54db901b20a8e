/**
 * `/docs` as a reader meets it: Debian's Chromium loads the page from a running service, with the
 * network limited to that service, and every operation of the document shows up, rendered (not JSON
 * Schema text). Skipped, saying so, on a machine without /usr/bin/chromium.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { parseKeyRing } from '../../src/codec';
import { offlineService } from '../server/offline-service';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  console.warn(`SKIPPED the /docs browser test: no Chromium at ${chromiumPath} (apt-get install chromium)`);
}

(haveChromium ? describe : describe.skip)('/docs in headless Chromium', () => {
  let app: FastifyInstance;
  let url: string;
  let profile: string;

  beforeAll(async () => {
    // As `npm start` serves it: with the codec endpoints.
    app = offlineService({
      codec: {
        keyRing: parseKeyRing(`k1:${Buffer.alloc(32, 1).toString('base64')}`),
        tokens: [],
        corsOrigins: [],
      },
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    profile = mkdtempSync(join(tmpdir(), 'docs-chromium-'));
  });
  afterAll(async () => {
    await app?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('shows every operation of the document, loading nothing from elsewhere', async () => {
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const elsewhere: string[] = [];
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.route('**/*', (route) => {
        if (route.request().url().startsWith(url)) return route.continue();
        elsewhere.push(route.request().url());
        return route.abort();
      });
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${url}/docs`);
      await page.waitForSelector('.opblock', { timeout: 30_000 });

      const shown = await page.$$eval('.opblock', (blocks) =>
        blocks.map((block) => {
          const method = block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
          const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
          return `${method} ${path}`;
        }),
      );
      const document = (await (await fetch(`${url}/openapi.json`)).json()) as {
        paths: Record<string, object>;
      };
      const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
      );
      expect(shown.sort()).toEqual(operations.sort());
      expect(await page.title()).toBe('prelude-temporal API');
      const text = await page.textContent('body');
      expect(text).toContain('Send a code: open a window, or resend in the open one');
      expect(text).not.toContain('"$schema"');

      // An operation opens on its parameters, request body and every documented answer, rendered.
      await page.click('.opblock-post .opblock-summary-path[data-path="/verifications"]');
      const responses = await page.waitForSelector('.opblock.is-open .responses-table', { timeout: 10_000 });
      const statuses = await responses.$$eval('.response-col_status', (cells) =>
        cells.map((c) => c.textContent?.trim()),
      );
      expect(statuses).toEqual(
        expect.arrayContaining(['200', '202', '400', '401', '422', '429', '502', '503']),
      );
      expect(await page.textContent('.opblock.is-open')).toContain('idempotency-key');
      expect(elsewhere).toEqual([]);
      expect(errors).toEqual([]);

      const screenshot = join(tmpdir(), 'prelude-temporal-docs.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      const operation = join(tmpdir(), 'prelude-temporal-docs-operation.png');
      await (await page.$('.opblock.is-open'))!.screenshot({ path: operation });
      console.log(`/docs screenshots: ${screenshot}, ${operation}`);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
