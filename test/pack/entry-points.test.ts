/**
 * The package's entry points as built (`dist/`, which the suite's global setup compiles), each loaded
 * in a fresh process: what it costs a backend, and what it exports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCost } from '../../bench/load-probe';

const root = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The file an entry of the exports map loads. */
const entryFile = (entry: string) => join(root, manifest.exports[entry].default);

const exportedNames = async (entry: string): Promise<Record<string, string>> => {
  const module = (await import(entryFile(entry))) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(module)
      .filter(([name]) => name !== 'default' && name !== '__esModule')
      .map(([name, value]) => [name, typeof value]),
  );
};

it('loads the backend helpers without Fastify, the sandbox, @temporalio/worker or the Prelude HTTP client', async () => {
  const { files } = await loadCost([entryFile('.')], root);
  const loaded = (part: string) => files.filter((file) => file.includes(part));
  expect(loaded('/node_modules/fastify/')).toEqual([]);
  expect(loaded('/node_modules/@temporalio/worker/')).toEqual([]);
  expect(loaded('/node_modules/axios/')).toEqual([]);
  // The configuration reads the sandbox's table of variables (`sandbox/config.js`), not the sandbox.
  expect(loaded('/dist/src/sandbox/')).toEqual([expect.stringMatching(/\/dist\/src\/sandbox\/config\.js$/)]);
  expect(loaded('/dist/src/server/')).toEqual([]);
});

it('exports only workflow functions from prelude-temporal/workflows, so a workflows file can export * from it', async () => {
  const names = await exportedNames('./workflows');
  expect(Object.keys(names).length).toBeGreaterThan(0);
  for (const [name, type] of Object.entries(names))
    expect([name, type]).toEqual([expect.stringMatching(/Workflow$/), 'function']);
});

it.each(Object.keys(manifest.exports).filter((entry) => entry !== './package.json'))(
  'exports from %s only what the README documents',
  async (entry) => {
    const undocumented = Object.keys(await exportedNames(entry)).filter(
      (name) => !new RegExp(`\\b${name}\\b`).test(readme),
    );
    expect(undocumented).toEqual([]);
  },
);
