/**
 * The recent request IDs an entity keeps to deduplicate requests asked twice (a retried call), the
 * oldest dropped past a bound so its history stays small across continue-as-new.
 */

/** Keeps an ID among the recent ones, the oldest dropped past `kept`. */
export function remember(recent: string[], id: string, kept: number): void {
  recent.push(id);
  if (recent.length > kept) recent.shift();
}
