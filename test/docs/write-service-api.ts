/**
 * `npm run openapi:types`: writes test/fixtures/service-api.ts, the types openapi-typescript
 * generates from the document the service serves (see generated-client.test.ts).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { offlineService } from '../server/offline-service';

/** Where the kept types are, from the repository's root. */
export const serviceApiTypes = join('test', 'fixtures', 'service-api.ts');

/** Runs openapi-typescript on the document at `url`, writing the types to `output`. */
export async function generateServiceApi(root: string, url: string, output: string): Promise<void> {
  await promisify(execFile)(join(root, 'node_modules', '.bin', 'openapi-typescript'), [
    url,
    '--output',
    output,
  ]);
}

async function main(): Promise<void> {
  const root = process.cwd();
  const app = offlineService();
  try {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    await generateServiceApi(root, `${url}/openapi.json`, join(root, serviceApiTypes));
  } finally {
    await app.close();
  }
}

if (require.main === module) void main();
