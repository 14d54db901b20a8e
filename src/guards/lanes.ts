/**
 * At most a few updates in flight per guard shard from this process. Temporal refuses an update to
 * a workflow that already has `history.maxInFlightUpdates` (10 by default, Temporal Cloud's too)
 * in flight, with RESOURCE_EXHAUSTED, which the client backs off from for seconds: under a burst,
 * a shard would answer in seconds or not at all. Queued here instead, the updates go in as the
 * earlier ones complete, and the server batches those that arrive together into one workflow task.
 */

/** Updates in flight per shard from one process: below the server's limit, with room for a second process. */
export const updatesInFlightPerShard = 5;

interface Lane {
  active: number;
  waiting: (() => void)[];
}

const lanes = new Map<string, Lane>();

/** Runs `fn` when fewer than {@link updatesInFlightPerShard} calls to `key` are in flight. */
export async function inLane<T>(key: string, fn: () => Promise<T>): Promise<T> {
  let lane = lanes.get(key);
  if (!lane) {
    lane = { active: 0, waiting: [] };
    lanes.set(key, lane);
  }
  if (lane.active >= updatesInFlightPerShard)
    await new Promise<void>((resolve) => lane!.waiting.push(resolve));
  lane.active += 1;
  try {
    return await fn();
  } finally {
    lane.active -= 1;
    const next = lane.waiting.shift();
    if (next) next();
    else if (lane.active === 0) lanes.delete(key);
  }
}
