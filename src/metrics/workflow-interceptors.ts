/**
 * Workflow interceptors that report a verification window's life to the metrics: opened, each check's
 * answer, each delivery report, and its final state once closed. Bundled into the workflow code (it
 * runs in the sandbox): it only reads what the window's handlers take and give, and passes it to
 * sinks outside the sandbox, live only — never while history replays — so it adds no command and
 * changes nothing a replay checks.
 */
import {
  ApplicationFailure,
  proxySinks,
  workflowInfo,
  type Next,
  type SignalInput,
  type UpdateInput,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import type { DeliveryStatusReport, VerificationInput, VerificationState } from '../../workflows/messages';
import type { LabelledTarget } from './labels';
import type { WindowMetricsSinks } from './window-sinks';

const { windowMetrics } = proxySinks<WindowMetricsSinks>();

/** Whether this is the live run (a replay has already been counted). */
const live = () => !workflowInfo().unsafe.isReplaying;

/** A check's refusal by the window, by the failure's type (e.g. `invalid_code`). */
const refusalOf = (error: unknown) => (error instanceof ApplicationFailure && error.type) || 'failed';

/**
 * Observes a handler's promise without changing when it settles: the workflow's commands (an update's
 * completion, the run's) must come in the order they always did, or replays of existing histories fail.
 * An `await` around `next()` would settle the handler a microtask later than before.
 */
function observe<T>(
  promise: Promise<T>,
  onValue: (value: T) => void,
  onError: (error: unknown) => void,
): Promise<T> {
  // Counting never fails a window: a throw here would be an unhandled rejection in the workflow.
  const quietly = (count: () => void) => {
    try {
      count();
    } catch {
      return;
    }
  };
  promise.then(
    (value) => quietly(() => onValue(value)),
    (error: unknown) => quietly(() => onError(error)),
  );
  return promise;
}

class WindowMetricsInterceptor implements WorkflowInboundCallsInterceptor {
  #target: LabelledTarget | undefined;
  readonly #reportsSeen = new Set<string>();

  execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>) {
    this.#target = (input.args[0] as VerificationInput | undefined)?.target;
    if (live() && this.#target) windowMetrics.opened(this.#target);
    return observe(
      next(input),
      (result) => {
        if (!live()) return;
        const { target, outcome, attempts, closedAt } = result as VerificationState;
        windowMetrics.closed({ target, outcome, attempts, closedAt });
      },
      () => undefined,
    );
  }

  validateUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'validateUpdate'>): void {
    try {
      next(input);
    } catch (error) {
      if (input.name === 'checkCode') this.#checked(refusalOf(error), input.updateId);
      throw error;
    }
  }

  handleUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>) {
    if (input.name !== 'checkCode') return next(input);
    return observe(
      next(input),
      (result) => this.#checked((result as { status: string }).status, input.updateId),
      (error) => this.#checked(refusalOf(error), input.updateId),
    );
  }

  handleSignal(input: SignalInput, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>) {
    if (input.signalName === 'deliveryStatus') {
      const report = input.args[0] as DeliveryStatusReport | undefined;
      // A redelivered report changes nothing in the window: it is not counted again either.
      if (report && !this.#reportsSeen.has(report.eventId)) {
        this.#reportsSeen.add(report.eventId);
        if (live() && this.#target)
          windowMetrics.deliveryReported(this.#target, report.status, report.eventId);
      }
    }
    return next(input);
  }

  #checked(answer: string, updateId: string): void {
    if (live() && this.#target) windowMetrics.checked(this.#target, answer, updateId);
  }
}

/** The interceptors of each workflow run: verification windows only. */
export const interceptors: WorkflowInterceptorsFactory = () =>
  workflowInfo().workflowType === 'verificationWorkflow' ? { inbound: [new WindowMetricsInterceptor()] } : {};
