/**
 * The log of Verify calls and Notify sends the sandbox carried out, answered or not: how a test sees
 * that a call whose answer was dropped (see `dropNextAnswers` in ./settings) still took effect.
 *
 * - `GET /sandbox/calls` (optional `?to=<target value>&operation=verification.create|verification.check|notify.send`)
 *   → `{ "calls": CallRecord[] }`, newest first
 * - `DELETE /sandbox/calls` → 204
 */
import type { Target } from '../prelude';
import type { SandboxClock } from './clock';
import { newId } from './ids';
import type { DroppableOperation } from './settings';

/**
 * A Verify create or check, or a Notify send (its `to` as a phone target), the sandbox carried out
 * (`GET /sandbox/calls`): what it answered, or would have answered when the answer was dropped.
 */
export interface CallRecord {
  id: string;
  operation: DroppableOperation;
  target: Target;
  /** Sandbox time (see `GET /sandbox/clock`) the request arrived, before any simulated latency. */
  receivedAt: string;
  /** Sandbox time the call was carried out. */
  at: string;
  /** The HTTP status of the answer. */
  status: number;
  /** The answer's JSON body. */
  answer: Record<string, unknown>;
  /** Whether the answer was lost (the connection was closed instead). */
  dropped: boolean;
}

/** Verify calls and Notify sends, newest first; bounded so a long benchmark cannot exhaust memory. */
export class CallLog {
  #records: CallRecord[] = [];

  constructor(
    private readonly clock: SandboxClock,
    private readonly capacity = 10_000,
  ) {}

  add(call: Omit<CallRecord, 'id' | 'at'>): CallRecord {
    const record = { id: newId('call'), at: this.clock.iso(), ...call };
    this.#records.unshift(record);
    if (this.#records.length > this.capacity) this.#records.pop();
    return record;
  }

  /** Calls about one target value and/or of one operation, newest first. */
  list(filter: { to?: string; operation?: string } = {}): CallRecord[] {
    return this.#records.filter(
      (r) =>
        (filter.to === undefined || r.target.value === filter.to) &&
        (filter.operation === undefined || r.operation === filter.operation),
    );
  }

  clear(): void {
    this.#records = [];
  }
}
