/**
 * The workflow modules of this package as the bundler sees them: the workflows' entry, and the modules
 * a worker loads once instead of once per workflow.
 */
import { windowInterceptorsModule } from './metrics';

/** The entry of this package's workflows. */
export function workflowsModule(): string {
  return require.resolve('../workflows');
}

/**
 * Loaded once per workflow thread (the bundler's `preloadModules`), where the SDK would otherwise
 * evaluate them again for every workflow it starts: the workflows, the window interceptors, and the
 * SDK's workflow API they import. A window's first task then runs none of their module code (about
 * 0.6 ms of CPU per window on the bench machine, and their copies in memory). They can be shared
 * because their module scope holds no state: message definitions, constants, functions, and proxies
 * that find the running workflow only when called.
 */
export function preloadedWorkflowModules(): string[] {
  return [workflowsModule(), windowInterceptorsModule()];
}
