/**
 * The bare baselines' activities: the same two Prelude calls the project's window makes, on the
 * same PreludeClient, with nothing around them (no lifecycle mapping, no metadata, no cancellation).
 */
import type { PreludeClient, Target } from '../src/prelude';

/** Builds the bare activities around a Prelude client. */
export function createBareActivities(prelude: PreludeClient) {
  return {
    async bareCreate(target: Target) {
      return prelude.verification.create({ target });
    },
    async bareCheck(target: Target, code: string) {
      return prelude.verification.check({ target, code });
    },
  };
}

/** The bare activities, as the bare workflows proxy them. */
export type BareActivities = ReturnType<typeof createBareActivities>;
