/**
 * Where this package lives on disk, for the files it ships beside its code (the prebuilt workflow
 * bundle, the Temporal CLI script). Neutral ground: the production worker and the dev-server
 * launcher both use it, neither through the other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The directory of this package's package.json, found from the running file. Works both from the
 * TypeScript sources (tests) and from the compiled `dist/` tree.
 */
export function packageRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'prelude-temporal') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package root of prelude-temporal not found above ${from}`);
    dir = parent;
  }
}
