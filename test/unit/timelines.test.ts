/**
 * The guard entities count by binary search over ascending times: against the plain filter they
 * replace, on random lists with repeated times, the counts, the earliest counted and what pruning
 * keeps are the same.
 */
import {
  ascending,
  countAfter,
  dropUntil,
  earliestAfter,
  earliestOf,
  firstAfter,
  latestOf,
  liveLists,
  removeAt,
} from '../../workflows/timelines';

/** A deterministic pseudo-random sequence (xorshift), so that a failure replays. */
function random(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('timelines', () => {
  it('counts, finds the earliest and prunes exactly as a filter does, on 500 random lists', () => {
    const next = random(19);
    for (let run = 0; run < 500; run++) {
      const length = Math.floor(next() * 60);
      // Few distinct values: many repeated times, as sends within one millisecond.
      const times = ascending(Array.from({ length }, () => Math.floor(next() * 40)));
      for (let cutoff = -1; cutoff <= 41; cutoff++) {
        const kept = times.filter((t) => t > cutoff);
        expect(countAfter(times, cutoff)).toBe(kept.length);
        expect(earliestAfter(times, cutoff)).toBe(kept.length > 0 ? Math.min(...kept) : undefined);
        expect(times.slice(firstAfter(times, cutoff))).toEqual(kept);
        const pruned = [...times];
        expect(dropUntil(pruned, cutoff)).toBe(kept.length > 0);
        expect(pruned).toEqual(kept);
      }
    }
  });

  it('sorts what arrives out of order by its time, and leaves a sorted list as it is', () => {
    const seen = [
      { key: 'b', at: 30 },
      { key: 'a', at: 10 },
      { key: 'c', at: 20 },
    ];
    expect(ascending(seen, (s) => s.at).map((s) => s.key)).toEqual(['a', 'c', 'b']);
    expect(seen.map((s) => s.key)).toEqual(['b', 'a', 'c']);
    expect(ascending([1, 2, 2, 5])).toEqual([1, 2, 2, 5]);
    expect(countAfter(undefined, 0)).toBe(0);
  });

  it('reads many lists by their ends: the latest, the earliest, and how many are still live', () => {
    const lists = [[3, 9], [], [1, 4], [12]];
    expect(latestOf(lists)).toBe(12);
    expect(earliestOf(lists)).toBe(1);
    expect(liveLists(lists, 8)).toBe(2);
    expect(liveLists(lists, 12)).toBe(0);
    const seen = [[{ at: 5 }], [{ at: 2 }, { at: 7 }]];
    expect(latestOf(seen, (s) => s.at)).toBe(7);
    expect(earliestOf(seen, (s) => s.at)).toBe(2);
    expect(latestOf([])).toBe(-Infinity);
    expect(earliestOf([[]])).toBe(Infinity);
  });

  it('removes one entry at a time, the one that matches, and leaves the rest ascending', () => {
    const next = random(7);
    for (let round = 0; round < 200; round++) {
      const times = ascending(Array.from({ length: Math.floor(next() * 30) }, () => Math.floor(next() * 20)));
      const time = Math.floor(next() * 22);
      const expected = [...times];
      const found = expected.indexOf(time);
      if (found >= 0) expected.splice(found, 1);
      expect(removeAt(times, time)).toBe(found >= 0);
      expect(times).toEqual(expected);
    }
    const seen = [
      { key: 'a', at: 1 },
      { key: 'b', at: 2 },
      { key: 'c', at: 2 },
    ];
    const removeC = () =>
      removeAt(
        seen,
        2,
        (s) => s.key === 'c',
        (s) => s.at,
      );
    expect(removeC()).toBe(true);
    expect(removeC()).toBe(false);
    expect(seen.map((s) => s.key)).toEqual(['a', 'b']);
  });
});
