/**
 * A turn the window's handlers take one at a time: sends (another is refused while one is under way)
 * and checks (each waits for the one before, so that it sees the budget and the outcome it left).
 *
 * Not async-mutex's `Mutex`: its `runExclusive` starts its work a microtask after the call, where a
 * `condition` resumes three microtasks after it, and settles a microtask after its work, where a
 * handler settles when its own body does. Those microtasks order an update's commands against those
 * of the main loop and of other handlers woken in the same workflow task (a timer canceled because a
 * delivery report came in with a check's answer, say), and the recorded histories of running windows
 * fix that order: replaying them with a `Mutex` fails as non-deterministic. A turn is awaited, taken
 * and released in its holder's own steps, so every command stays where the histories have it.
 *
 * Known flaw, kept on purpose: waiters that find the turn free in the same step (two checks arriving
 * in one workflow task, or freed by the same release) all go ahead, as the flags this replaces let
 * them. Histories of running windows record such checks running side by side; serialising them
 * needs a `patched()` branch, which adds a marker to every new window's history.
 */
import { condition } from '@temporalio/workflow';

export class Turn {
  #taken = false;

  /** Whether someone holds the turn. */
  get taken(): boolean {
    return this.#taken;
  }

  /** Resolves once nobody holds the turn; the waiter then takes it with `take()`. */
  whenFree(): Promise<void> {
    return condition(() => !this.#taken);
  }

  /** Takes the turn (for a send, at once: its validator has refused it while the turn is taken). */
  take(): void {
    this.#taken = true;
  }

  release(): void {
    this.#taken = false;
  }
}
