/**
 * An activity interceptor that measures every call to Prelude: how long it took, whether Prelude
 * answered, refused it by its lifecycle rules or failed (and how), and what it answered to sends.
 * It reads the activities' inputs and results as they are, after decryption, and keeps nothing of
 * them but label values (a country, a status).
 */
import { performance } from 'node:perf_hooks';
import { ApplicationFailure, CancelledFailure, type Context } from '@temporalio/activity';
import type {
  ActivityInboundCallsInterceptor,
  ActivityInterceptors,
  ActivityInterceptorsFactory,
} from '@temporalio/worker';
import { innerPredictOf, reservationFailed } from '../../activities/send';
import { stalledType } from '../../activities/stall-fence';
import type { LabelledTarget } from './labels';
import type { WorkerMetrics } from './worker-metrics';

/** The activities that call Prelude; the others (limits, webhook ingest) are Temporal's own business. */
const preludeOperations: ReadonlySet<string> = new Set([
  'createVerification',
  'checkVerification',
  'readCheckHistory',
  'predictTarget',
  'sendWatchFeedback',
  'dispatchWatchEvents',
  'sendNotification',
  'sendNotificationBatch',
]);

/** How a Prelude activity ended, as a label: its failure type is `Prelude.<kind>` (see activities/failures.ts). */
function errorKind(error: unknown): string {
  if (error instanceof CancelledFailure) return 'canceled';
  if (error instanceof ApplicationFailure && error.type?.startsWith('Prelude.')) {
    return error.type.slice('Prelude.'.length);
  }
  return 'unexpected';
}

/**
 * Activities that make a Prelude call after a step of their own, by the call they make and how to
 * find its outcome in their input and result (none when the first step ended them: no call).
 */
const composedOperations: Record<
  string,
  { operation: string; input(args: unknown[]): unknown; outcome(result: unknown): unknown }
> = {
  reserveAndCreateVerification: {
    operation: 'createVerification',
    input: (args) => (args[0] as { create?: unknown } | undefined)?.create,
    outcome: (result) => (result as { created?: unknown } | undefined)?.created,
  },
};

type ActivityExecute = NonNullable<ActivityInboundCallsInterceptor['execute']>;

/** Builds the interceptor for each activity execution. */
export function preludeCallMetrics(metrics: WorkerMetrics): ActivityInterceptorsFactory {
  return (ctx: Context): ActivityInterceptors => {
    const composed = composedOperations[ctx.info.activityType];
    const operation = composed?.operation ?? ctx.info.activityType;
    if (!preludeOperations.has(operation)) return {};
    // A predict made inside the send is a Prelude call of its own, counted as such.
    const countInnerPredict = () => {
      const predict = composed ? innerPredictOf(ctx) : undefined;
      if (!predict) return;
      const outcome = predict.error === undefined ? 'ok' : 'error';
      const kind = predict.error === undefined ? undefined : errorKind(predict.error);
      metrics.preludeCall('predictTarget', outcome, predict.seconds, kind);
    };
    return {
      inbound: {
        async execute(input, next) {
          try {
            return await measured(input, next);
          } finally {
            countInnerPredict();
          }
        },
      },
    };

    /** The activity's own Prelude call, measured. */
    async function measured(...[input, next]: Parameters<ActivityExecute>): Promise<unknown> {
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        const result = await next(input);
        if (composed && composed.outcome(result) === undefined) return result;
        const outcome = (composed ? composed.outcome(result) : result) as {
          kind?: string;
          code?: string;
          response?: { status?: string };
        };
        const refused = outcome?.kind === 'refused';
        metrics.preludeCall(operation, refused ? 'refused' : 'ok', seconds());
        if (operation === 'createVerification') {
          const args = composed ? [composed.input(input.args)] : input.args;
          const target = (args[0] as { target?: LabelledTarget } | undefined)?.target;
          metrics.sendAnswered(target, (refused ? outcome.code : outcome?.response?.status) ?? 'other');
        }
        return result;
      } catch (error) {
        // Its first step failed, or the worker had stalled (activities/stall-fence.ts): Prelude was
        // not called.
        if (error instanceof ApplicationFailure) {
          if (error.type === stalledType || (composed && error.type === reservationFailed)) throw error;
        }
        metrics.preludeCall(operation, 'error', seconds(), errorKind(error));
        throw error;
      }
    }
  };
}
