/**
 * Prometheus metrics: the HTTP service's, the worker's domain metrics (windows, checks, deliveries,
 * Prelude calls) with what feeds them from inside the worker, the Temporal SDK's own worker metrics,
 * and the worker's `/metrics` endpoint.
 */
export * from './activity-interceptor';
export * from './labels';
export * from './metrics-server';
export * from './sdk-telemetry';
export * from './service-metrics';
export * from './window-sinks';
export * from './worker-metrics';

/** The workflow interceptor module (bundled into the workflow code, see `writeWorkflowBundle`). */
export function windowInterceptorsModule(): string {
  return require.resolve('./workflow-interceptors');
}
