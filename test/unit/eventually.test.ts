/**
 * The tests' one polling helper: it returns what the condition found, polls again on a miss or a
 * throw, and when time is up says what it waited for and what it saw last.
 */
import { eventually, StopWaiting } from '../support/eventually';

describe('eventually', () => {
  it('returns the first value that is not undefined, null or false, polling until then', async () => {
    let polls = 0;
    const found = await eventually(() => (++polls < 3 ? undefined : { polls }), {
      description: 'the third poll',
      intervalMs: 1,
    });
    expect(found).toEqual({ polls: 3 });
    // 0 and '' are values, not misses.
    expect(await eventually(() => 0, { description: 'zero' })).toBe(0);
  });

  it('polls again when the condition throws, as an expect that does not hold yet does', async () => {
    let polls = 0;
    const found = await eventually(
      async () => {
        polls += 1;
        expect(polls).toBeGreaterThan(2);
        return 'held';
      },
      { description: 'the expectation to hold', intervalMs: 1 },
    );
    expect(found).toBe('held');
  });

  it('times out naming what it waited for and the last value seen', async () => {
    await expect(
      eventually(() => ({ attempts: 1 }).attempts === 2 || undefined, {
        description: 'a second attempt',
        timeoutMs: 30,
        intervalMs: 5,
      }),
    ).rejects.toThrow(
      /^timed out after 30 ms \(\d+ polls\) waiting for a second attempt; the last poll returned: undefined$/,
    );
    await expect(eventually(() => false, { description: 'a flag', timeoutMs: 0 })).rejects.toThrow(
      'waiting for a flag; the last poll returned: false',
    );
  });

  it('times out with the last error when the condition kept throwing', async () => {
    const timeout = eventually(
      () => {
        throw new Error('the window is still open');
      },
      { description: 'the window to close', timeoutMs: 20, intervalMs: 5 },
    );
    await expect(timeout).rejects.toThrow(
      /waiting for the window to close; the last poll threw: Error: the window is still open$/,
    );
    await expect(timeout).rejects.toMatchObject({
      cause: expect.objectContaining({ message: 'the window is still open' }),
    });
  });

  it('stops at once when the condition throws StopWaiting', async () => {
    let polls = 0;
    await expect(
      eventually(
        () => {
          polls += 1;
          throw new StopWaiting('the process exited');
        },
        { description: 'a line of output', timeoutMs: 10_000 },
      ),
    ).rejects.toThrow('stopped waiting for a line of output: the process exited');
    expect(polls).toBe(1);
  });
});
