/**
 * The sandbox's notion of time: real time plus an offset that `POST /sandbox/clock/advance` moves
 * forward, so window expiry, retry cooldowns and rate-limit spans can be tested without waiting.
 * Everything the engines decide or stamp (window TTL, retry delay, per-number rate limit, Notify's
 * `expires_at` / `schedule_at` checks, inbox and webhook times) reads it; the timers the sandbox
 * arms itself (delivery reports, webhook redelivery) run on real time.
 *
 * - `GET /sandbox/clock` → `{ "now": ISO 8601, "nowMs": epoch ms, "offsetMs": ms ahead of real time }`
 * - `POST /sandbox/clock/advance` with `{ "seconds": n }` or `{ "ms": n }` (n ≥ 0, at most a year)
 *   → the same shape, after the move; 400 `invalid_clock_advance` otherwise. There is no way back.
 */

/** Where the engines read the time from. Time only moves forward. */
export class SandboxClock {
  #offsetMs = 0;

  /** The sandbox's time, in milliseconds since the epoch. */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /** The sandbox's time as an ISO 8601 string. */
  iso(): string {
    return new Date(this.now()).toISOString();
  }

  /** How far ahead of real time the sandbox is, in milliseconds. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Moves the sandbox's time forward by `ms` milliseconds (≥ 0). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('the clock only moves forward');
    this.#offsetMs += ms;
  }

  /** What `GET /sandbox/clock` shows. */
  toJSON(): { now: string; nowMs: number; offsetMs: number } {
    const now = this.now();
    return { now: new Date(now).toISOString(), nowMs: now, offsetMs: this.#offsetMs };
  }
}
