/**
 * How window events leave the workflow sandbox for the metrics: workflow code cannot touch a
 * registry (it must stay deterministic), so the window interceptor calls these sinks, which the
 * worker runs outside the sandbox, and never while it replays history.
 */
import type { InjectedSinks } from '@temporalio/worker';
import type { Sinks } from '@temporalio/workflow';
import type { LabelledTarget } from './labels';
import type { ClosedWindow, WorkerMetrics } from './worker-metrics';

/** The sinks the window interceptor calls. */
export interface WindowMetricsSinks extends Sinks {
  windowMetrics: {
    opened(target: LabelledTarget): void;
    /** `updateId`: the same check seen twice (see {@link windowMetricsSinks}) counts once. */
    checked(target: LabelledTarget, answer: string, updateId: string): void;
    deliveryReported(target: LabelledTarget, status: string, eventId: string): void;
    closed(window: ClosedWindow): void;
  };
}

/** The keys seen lately, so that each counts once; the oldest are forgotten beyond `size`. */
class Seen {
  readonly #keys = new Set<string>();
  constructor(private readonly size: number) {}

  /** Whether `key` was seen already; remembers it. */
  check(key: string): boolean {
    if (this.#keys.has(key)) return true;
    this.#keys.add(key);
    if (this.#keys.size > this.size) this.#keys.delete(this.#keys.values().next().value!);
    return false;
  }
}

/**
 * The worker side of {@link WindowMetricsSinks}: each call lands in `metrics`. A workflow task that
 * failed or timed out after its sinks ran is run again, not replayed, and calls them again: each run's
 * opening and closing, each check (by update ID) and each report (by event ID) counts once.
 */
export function windowMetricsSinks(metrics: WorkerMetrics): InjectedSinks<WindowMetricsSinks> {
  const seen = new Seen(50_000);
  return {
    windowMetrics: {
      opened: {
        fn: ({ runId }, target) => {
          if (!seen.check(`opened:${runId}`)) metrics.windowOpened(target);
        },
      },
      checked: {
        fn: ({ runId }, target, answer, updateId) => {
          if (!seen.check(`checked:${runId}:${updateId}`)) metrics.checked(target, answer);
        },
      },
      deliveryReported: {
        fn: ({ runId }, target, status, eventId) => {
          if (!seen.check(`report:${runId}:${eventId}`)) metrics.deliveryReported(target, status);
        },
      },
      closed: {
        fn: ({ runId }, window) => {
          if (!seen.check(`closed:${runId}`)) metrics.windowClosed(window);
        },
      },
    },
  };
}
