/**
 * Every workflow the worker runs, and nothing else: this is the bundle's entry (`workflowsPath`), and
 * the Temporal bundler registers every function exported here as a workflow type. Messages and other
 * shared values live in `./messages.ts`.
 */
export { notificationWorkflow } from './notification';
export { verificationWorkflow } from './verification';
export { targetLimitsWorkflow } from './target-limits';
export { sendGuardWorkflow } from './send-guard';
