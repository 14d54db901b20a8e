/**
 * `npm start`'s own privacy keys: made on the first run, kept next to the dev server's state
 * (`.temporal/keys.json`, mode 0600, never committed), and reused, so that a restart finds the same
 * windows under the same IDs and can still decrypt their histories.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { describeZodError } from './issues';

const devKeysSchema = z.object({
  VERIFY_ID_KEY: z.string().min(16),
  PAYLOAD_CODEC_KEYS: z.string().min(1),
  CODEC_API_TOKEN: z.string().min(16),
});

/** The variables `npm start` fills in when they are not set. */
export type DevKeys = z.infer<typeof devKeysSchema>;

/**
 * The dev keys kept in `file`, made and written on the first call.
 *
 * @throws Error when the file exists but is not a keys file (it is never overwritten: it may be the
 *   only key to existing histories).
 */
export function loadOrCreateDevKeys(file: string): { keys: DevKeys; created: boolean } {
  if (existsSync(file)) {
    const parsed = devKeysSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success)
      throw new Error(`${file} is not a keys file: ${describeZodError(parsed.error, 'file')}`);
    return { keys: parsed.data, created: false };
  }
  const keys: DevKeys = {
    VERIFY_ID_KEY: randomBytes(32).toString('base64url'),
    PAYLOAD_CODEC_KEYS: `dev1:${randomBytes(32).toString('base64')}`,
    CODEC_API_TOKEN: randomBytes(24).toString('base64url'),
  };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { keys, created: true };
}

/** `env` with each dev key filled in where the variable is unset or blank (a set variable wins). */
export function withDevKeys(env: NodeJS.ProcessEnv, keys: DevKeys): NodeJS.ProcessEnv {
  const filled: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(keys)) {
    if (!filled[name]?.trim()) filled[name] = value;
  }
  return filled;
}
