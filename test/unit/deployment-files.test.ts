/**
 * The deployment files must agree with the code: a variable renamed in temporal.config.ts, or a
 * search attribute added to the workflows, would otherwise break docker compose and the docs silently.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configVariables } from '../../temporal.config';
import { customSearchAttributes } from '../../workflows';

const root = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** `NAME:` keys of the compose file's `environment:` blocks, for the services built from this repo. */
function composeAppVariables(compose: string): string[] {
  const appServices = compose.split(/\n {2}(?=\w[\w-]*:\n)/).filter((block) => /\n {4}build: \./.test(block));
  return appServices.flatMap((block) => [...block.matchAll(/^ {6}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!));
}

describe('deployment files', () => {
  const compose = read('docker-compose.yml');

  it('compose passes only variables the configuration reads', () => {
    const known = new Set(configVariables());
    const used = composeAppVariables(compose);
    expect(used.length).toBeGreaterThan(5);
    expect(used.filter((name) => !known.has(name))).toEqual([]);
  });

  it('compose registers every custom search attribute the workflows set', () => {
    for (const attribute of customSearchAttributes) {
      expect(compose).toContain(`--name ${attribute.name} --type Keyword`);
    }
  });

  it('compose enables Update-with-Start on its Temporal server', () => {
    expect(compose).toMatch(/frontend\.enableExecuteMultiOperation:\n\s+- value: true/);
  });

  it('the README documents every configuration variable', () => {
    const readme = read('README.md');
    expect(configVariables().filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });
});
