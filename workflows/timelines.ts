/**
 * Times in ascending order, as an entity appends them (workflow time never goes back), read by
 * binary search: counting what lies inside a period costs the same for ten entries as for a hundred
 * thousand, so an entity's every update does not grow with the traffic it has counted.
 */

const itself = (time: number) => time;

/**
 * The index of the first of `items`, ascending by `timeOf`, later than `cutoff` (`items.length` when
 * none is).
 */
export function firstAfter<T = number>(
  items: readonly T[],
  cutoff: number,
  timeOf: (item: T) => number = itself as (item: T) => number,
): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (timeOf(items[middle]!) > cutoff) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** How many of ascending `times` are later than `cutoff`. */
export function countAfter(times: readonly number[] | undefined, cutoff: number): number {
  return times ? times.length - firstAfter(times, cutoff) : 0;
}

/** The earliest of ascending `times` later than `cutoff`, if any is. */
export function earliestAfter(times: readonly number[] | undefined, cutoff: number): number | undefined {
  return times?.[firstAfter(times, cutoff)];
}

/** Drops, in place, the `items` (ascending by `timeOf`) up to `cutoff`; whether any is left. */
export function dropUntil<T = number>(
  items: T[],
  cutoff: number,
  timeOf: (item: T) => number = itself as (item: T) => number,
): boolean {
  const first = firstAfter(items, cutoff, timeOf);
  if (first > 0) items.splice(0, first);
  return items.length > 0;
}

/** `items` ascending by `timeOf`: what an earlier run handed over is sorted once, on arrival. */
export function ascending<T = number>(
  items: readonly T[],
  timeOf: (item: T) => number = itself as (item: T) => number,
): T[] {
  const sorted = [...items];
  for (let i = 1; i < sorted.length; i++) {
    if (timeOf(sorted[i]!) < timeOf(sorted[i - 1]!)) return sorted.sort((a, b) => timeOf(a) - timeOf(b));
  }
  return sorted;
}

/** How many of `lists` (each ascending by `timeOf`) hold a time later than `cutoff`. */
export function liveLists<T = number>(
  lists: Iterable<readonly T[]>,
  cutoff: number,
  timeOf: (item: T) => number = itself as (item: T) => number,
): number {
  let live = 0;
  for (const list of lists) if (list.length > 0 && timeOf(list.at(-1)!) > cutoff) live += 1;
  return live;
}

/** The latest time of `lists` (each ascending by `timeOf`): their last items'. */
export function latestOf<T = number>(
  lists: Iterable<readonly T[]>,
  timeOf: (item: T) => number = itself as (item: T) => number,
): number {
  let latest = -Infinity;
  for (const list of lists) if (list.length > 0) latest = Math.max(latest, timeOf(list.at(-1)!));
  return latest;
}

/** The earliest time of `lists` (each ascending by `timeOf`): their first items'. */
export function earliestOf<T = number>(
  lists: Iterable<readonly T[]>,
  timeOf: (item: T) => number = itself as (item: T) => number,
): number {
  let earliest = Infinity;
  for (const list of lists) if (list.length > 0) earliest = Math.min(earliest, timeOf(list[0]!));
  return earliest;
}

/**
 * Removes, in place, one of `items` (ascending by `timeOf`) at exactly `time` that `matches`;
 * whether one was found.
 */
export function removeAt<T = number>(
  items: T[],
  time: number,
  matches: (item: T) => boolean = () => true,
  timeOf: (item: T) => number = itself as (item: T) => number,
): boolean {
  for (let i = firstAfter(items, time - 1, timeOf); i < items.length && timeOf(items[i]!) === time; i++) {
    if (matches(items[i]!)) {
      items.splice(i, 1);
      return true;
    }
  }
  return false;
}

/**
 * Inserts, in place, `item` into `items` ascending by `timeOf`, after any at the same time: a time
 * reported late (a lease's admission) lands where a binary search expects it.
 */
export function insertAscending<T = number>(
  items: T[],
  item: T,
  timeOf: (item: T) => number = itself as (item: T) => number,
): void {
  items.splice(firstAfter(items, timeOf(item), timeOf), 0, item);
}
