/**
 * Which of several concurrent calls ended first: how a test shows that a deadline or an abort ended
 * a call before the answer would have come, without measuring time against a fixed bound.
 */

/**
 * The names of `calls` in the order they settled (resolved or rejected). Await each call yourself
 * for its outcome: this only observes them.
 */
export async function settlingOrder(calls: Record<string, Promise<unknown>>): Promise<string[]> {
  const order: string[] = [];
  await Promise.all(
    Object.entries(calls).map(([name, call]) =>
      call.then(
        () => order.push(name),
        () => order.push(name),
      ),
    ),
  );
  return order;
}
