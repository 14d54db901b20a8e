/**
 * p-retry, imported once per process. It ships only as an ES module and this package is CommonJS,
 * so it is loaded with a dynamic import; a fresh `import()` on every call pays the module loader's
 * lookup each time (about 45 µs), and the helpers and every send call it.
 */
type PRetryModule = typeof import('p-retry');

let loading: Promise<PRetryModule> | undefined;

/** The p-retry module (loaded on first use; a failed load is tried again on the next call). */
export function loadPRetry(): Promise<PRetryModule> {
  loading ??= import('p-retry').catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}
