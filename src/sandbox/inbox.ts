import type { SandboxClock } from './clock';
import { newId } from './ids';

/** A message the sandbox "sent": where a person or a test reads the code. */
export interface InboxMessage {
  id: string;
  to: string;
  channel: string;
  /** The verification code, for Verify messages. */
  code: string | null;
  body: string;
  verification_id: string | null;
  created_at: string;
}

/** Messages by recipient, newest first; bounded so a long benchmark cannot exhaust memory. */
export class Inbox {
  readonly #byRecipient = new Map<string, InboxMessage[]>();
  #count = 0;

  constructor(
    private readonly clock: SandboxClock,
    private readonly capacity = 100_000,
  ) {}

  /** Stores a message, stamped with the sandbox's time. */
  add(message: Omit<InboxMessage, 'id' | 'created_at'>): InboxMessage {
    const stored = { id: newId('msg'), created_at: this.clock.iso(), ...message };
    const list = this.#byRecipient.get(message.to) ?? [];
    list.unshift(stored);
    this.#byRecipient.set(message.to, list);
    if (++this.#count > this.capacity) this.clear();
    return stored;
  }

  /** Messages to one recipient, or to everyone, newest first. */
  list(to?: string): InboxMessage[] {
    if (to !== undefined) return this.#byRecipient.get(to) ?? [];
    return [...this.#byRecipient.values()].flat().sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  clear(): void {
    this.#byRecipient.clear();
    this.#count = 0;
  }
}
