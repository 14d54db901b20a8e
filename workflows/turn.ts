/**
 * The turn a window's handlers take one at a time: sends, checks, cancel and expiry. Whoever holds it
 * reads and changes the window alone, so that an answer and the window's outcome always agree (a
 * check that verifies cannot be overtaken by the deadline, a cancel cannot land between a check's
 * call and its answer).
 *
 * A hand-off, not a flag awaited with `condition()`: the SDK resolves every condition that is true in
 * one pass, so two waiters freed by one release would both go ahead. Here the release itself picks
 * the next waiter, first come first served, and the turn never looks free in between.
 */
export class Turn {
  #taken = false;
  readonly #waiting: (() => void)[] = [];

  /** Whether someone holds the turn. */
  get taken(): boolean {
    return this.#taken;
  }

  /** Resolves once the caller holds the turn; the caller must `release()` it. */
  async take(): Promise<void> {
    if (!this.#taken) {
      this.#taken = true;
      return;
    }
    await new Promise<void>((handOver) => this.#waiting.push(handOver));
  }

  /** Gives the turn to the longest waiter, or frees it when nobody waits. */
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#taken = false;
  }

  /** Runs `step` in its turn. */
  async run<T>(step: () => Promise<T> | T): Promise<T> {
    await this.take();
    try {
      return await step();
    } finally {
      this.release();
    }
  }
}
