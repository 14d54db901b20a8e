/**
 * Bare Temporal workflows of the same shape as the project's verification window, as baselines for
 * `npm run bench`: an Update-with-Start whose handler runs a create activity, then an Update whose
 * handler runs a check activity, and the run ends. `bareWindow` uses regular activities (what plain
 * Temporal costs), `bareLocalWindow` local ones (the floor). `bareBoundWindow` sends on a local
 * activity that starts a per-target record before the create, and checks on a regular one, after
 * `bareAdmission` admitted the send: the least Temporal code that does what the project must (see the
 * bench's `bound` scenario). `bareStart` does nothing: the cost of starting a workflow, which the
 * webhook ingest is compared with.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineUpdate,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Target } from '../src/prelude';
import type { BareActivities } from './bare-activities';

/** Runs the create activity; answers Prelude's status. */
export const bareSendUpdate = defineUpdate<string>('bareSend');
/** Runs the check activity with a code; answers Prelude's status. */
export const bareCheckUpdate = defineUpdate<string, [string]>('bareCheck');

// The project's lifecycle calls get a 15 s start-to-close and at most 3 attempts; so do these.
const activityOptions = { startToCloseTimeout: '15 seconds', retry: { maximumAttempts: 3 } } as const;
const regular = proxyActivities<BareActivities>(activityOptions);
const local = proxyLocalActivities<BareActivities>(activityOptions);

async function window(
  bareCreate: BareActivities['bareCreate'],
  bareCheck: BareActivities['bareCheck'],
  target: Target,
): Promise<string> {
  let checked: string | undefined;
  setHandler(bareSendUpdate, async () => (await bareCreate(target)).status);
  setHandler(bareCheckUpdate, async (code) => (checked = (await bareCheck(target, code)).status));
  // Like the project's window: the run ends once the check's answer has gone back to the caller.
  await condition(() => checked !== undefined && allHandlersFinished());
  return checked!;
}

/** The window's shape with regular activities: the Temporal baseline. */
export async function bareWindow(target: Target): Promise<string> {
  return window(regular.bareCreate, regular.bareCheck, target);
}

/** The window's shape with local activities: the floor. */
export async function bareLocalWindow(target: Target): Promise<string> {
  return window(local.bareCreate, local.bareCheck, target);
}

/**
 * The send on a local activity that records it per target first, the check on a regular one (a
 * crash cannot lose its answer).
 */
export async function bareBoundWindow(target: Target): Promise<string> {
  return window(local.bareRecordAndCreate, regular.bareCheck, target);
}

/** Admits one send when fewer than the budget (its argument) were admitted; answers the count. */
export const bareAdmitUpdate = defineUpdate<number, [number]>('bareAdmit');

/**
 * The least durable admission decision: an entity shared by many sends that counts what it admits
 * and refuses past a budget in its update's validator (a refusal writes nothing), as a send guard
 * shard does with its timelines.
 */
export async function bareAdmission(admittedBefore = 0): Promise<void> {
  let admitted = admittedBefore;
  setHandler(bareAdmitUpdate, () => ++admitted, {
    validator: (budget) => {
      if (admitted >= budget) throw new Error('over the budget');
    },
  });
  await condition(() => workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await continueAsNew<typeof bareAdmission>(admitted);
}

/** A workflow that only starts and ends. */
export async function bareStart(): Promise<void> {}
