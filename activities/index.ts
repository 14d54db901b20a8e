/**
 * Every activity the worker registers, built from its dependencies so tests can pass real ones
 * (a Prelude client pointed at the sandbox).
 */
import type { Client } from '@temporalio/client';
import type { PreludeClient } from '../src/prelude';
import { createLimitsActivities } from './limits';
import { createNotifyActivities } from './notify';
import { createSendActivities } from './send';
import { createVerifyActivities } from './verify';
import { createWatchActivities } from './watch';

export * from './limits';
export * from './notify';
export * from './send';
export * from './verify';
export * from './watch';
export { toActivityFailure } from './failures';
export { watchForStalls } from './stall-fence';

/** What the activities need. */
export interface ActivityDependencies {
  prelude: PreludeClient;
  /** The webhook URL Prelude should post to (`PRELUDE_CALLBACK_URL`). */
  callbackUrl?: string;
  /** The Temporal client the limits activities reach the per-target entity with. */
  client: Client;
}

/** Builds all activities. */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createVerifyActivities(deps),
    ...createWatchActivities(deps),
    ...createNotifyActivities(deps),
    ...createLimitsActivities(deps),
    ...createSendActivities(deps),
  };
}

/** All activities, as the workflows proxy them. */
export type Activities = ReturnType<typeof createActivities>;
