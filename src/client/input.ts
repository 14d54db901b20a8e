/** The helpers' input checks: a malformed request is a `VerificationError`, never a raw zod or Prelude error. */
import { z } from 'zod';
import { describeZodError } from '../issues';
import { PreludeError } from '../prelude/errors';
import type { Target } from '../prelude/schemas';
import { normalizeTarget } from '../prelude/targets';
import { VerificationError } from './errors';

/** `value` parsed by `schema`, or `invalid_request` naming what is wrong. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new VerificationError('invalid_request', describeZodError(result.error, 'request'));
}

/** The target in canonical form, or `invalid_request`. */
export function normalize(target: Target): Target {
  try {
    return normalizeTarget(target);
  } catch (error) {
    if (error instanceof PreludeError) throw new VerificationError('invalid_request', error.message);
    throw error;
  }
}
