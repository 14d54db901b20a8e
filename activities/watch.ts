import type { EventsRequest, PredictRequest, PredictResponse, PreludeClient, Target } from '../src/prelude';
import { runActivityCall } from './failures';

/** Input of {@link WatchActivities.predictTarget}. */
export interface PredictTargetInput {
  target: Target;
  correlationId: string;
  signals?: PredictRequest['signals'];
  dispatchId?: string;
}

/** Input of {@link WatchActivities.sendWatchFeedback}. */
export interface WatchFeedbackInput {
  target: Target;
  correlationId: string;
  /** `verification.started` when a code went out, `verification.completed` when it was verified. */
  types: ('verification.started' | 'verification.completed')[];
}

/** Builds the Watch activities around a Prelude client. */
export function createWatchActivities({ prelude }: { prelude: PreludeClient }) {
  return {
    /** Asks Watch whether a target looks legitimate before any code is sent. */
    async predictTarget(input: PredictTargetInput): Promise<PredictResponse> {
      return runActivityCall((signal) =>
        prelude.watch.predict(
          {
            target: input.target,
            ...(input.signals ? { signals: input.signals } : {}),
            ...(input.dispatchId ? { dispatch_id: input.dispatchId } : {}),
            metadata: { correlation_id: input.correlationId },
          },
          { signal },
        ),
      );
    },

    /** Tells Watch how a verification went, so its counters learn from it. */
    async sendWatchFeedback(input: WatchFeedbackInput): Promise<void> {
      await runActivityCall((signal) =>
        prelude.watch.sendFeedbacks(
          {
            feedbacks: input.types.map((type) => ({
              target: input.target,
              type,
              metadata: { correlation_id: input.correlationId },
            })),
          },
          { signal },
        ),
      );
    },

    /** Reports events about users (e.g. a confirmed fraud) to Watch. */
    async dispatchWatchEvents(input: EventsRequest): Promise<void> {
      await runActivityCall((signal) => prelude.watch.dispatchEvents(input, { signal }));
    },
  };
}

/** The Watch activities. */
export type WatchActivities = ReturnType<typeof createWatchActivities>;
