/**
 * The README's layout table is a map a new contributor trusts: every path it names exists, and every
 * source file of the tree falls under one of its rows.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(__dirname, '..', '..');
const sourceDirs = ['workflows', 'activities', 'src', 'scripts', 'bench', 'deploy', 'test'];

function layoutPaths(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Layout'));
  const table = section.slice(0, section.indexOf('\n## ') > 0 ? section.indexOf('\n## ') : undefined);
  const firstCells = table
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.split('|')[1]!);
  return firstCells.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
}

/** A row's path as a test on a file's path: a folder covers what is below it, `*` one name's part. */
function covers(path: string, file: string): boolean {
  if (path.endsWith('/')) return file.startsWith(path);
  const pattern = new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  return pattern.test(file);
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesBelow(path) : [relative(root, path)];
  });
}

describe("the README's layout table", () => {
  const paths = layoutPaths();

  it('names paths that exist', () => {
    expect(paths.length).toBeGreaterThan(10);
    const files = sourceDirs.flatMap((dir) => filesBelow(join(root, dir)));
    const missing = paths.filter(
      (path) =>
        !(path.includes('*') ? files.some((file) => covers(path, file)) : existsSync(join(root, path))),
    );
    expect(missing).toEqual([]);
  });

  it('covers every source file of the tree', () => {
    const uncovered = sourceDirs
      .flatMap((dir) => filesBelow(join(root, dir)))
      .filter((file) => !paths.some((path) => covers(path, file)));
    expect(uncovered).toEqual([]);
  });
});
