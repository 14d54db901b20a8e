/**
 * A sandbox's runtime knobs (`/sandbox/config`) as a suite found them, put back after each test, so
 * a knob one test turns (an error rate, a latency, a listed number) never leaks into the next one,
 * even when that test fails half-way. The sandbox's clock only moves forward: suites that advance
 * it assert relative times.
 */

/** Puts the sandbox's knobs back as they were when {@link captureSandboxKnobs} read them. */
export type RestoreKnobs = () => Promise<void>;

/**
 * Reads the sandbox's knobs now. The sandbox shows only whether an API key is set, never the key:
 * pass the key it was started with, if any, so that it can be set back.
 */
export async function captureSandboxKnobs(sandboxUrl: string, apiKey?: string): Promise<RestoreKnobs> {
  const response = await fetch(`${sandboxUrl}/sandbox/config`);
  if (!response.ok) throw new Error(`GET /sandbox/config: ${response.status} ${await response.text()}`);
  const {
    apiKeySet,
    dropNextAnswers: _pendingDrops,
    failNextCalls: _pendingFailures,
    cutNextCalls: _pendingCuts,
    ...knobs
  } = (await response.json()) as Record<string, unknown> & { apiKeySet: boolean };
  if (apiKeySet && apiKey === undefined) {
    throw new Error('the sandbox has an API key: pass it, so that it can be restored');
  }
  const initial = {
    ...knobs,
    apiKey: apiKeySet ? apiKey : null,
    // Answers still to drop, and calls still to fail, are cancelled (0 cancels an operation's count).
    dropNextAnswers: { 'verification.create': 0, 'verification.check': 0 },
    failNextCalls: { 'verification.create': 0, 'verification.check': 0 },
    cutNextCalls: { 'verification.create': 0, 'verification.check': 0 },
  };
  return async () => {
    const put = await fetch(`${sandboxUrl}/sandbox/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(initial),
    });
    if (!put.ok) throw new Error(`restoring the sandbox's knobs: ${put.status} ${await put.text()}`);
  };
}
