/**
 * `prelude-temporal/worker`: what runs verification on a worker. Either the plugin, which adds it to
 * the team's own Worker and Client, or `createVerificationWorker`, a Worker of its own on a task
 * queue of its own; and the activities, for the team's own workflows.
 */
export { verificationPlugin, VerificationPlugin, type VerificationPluginOptions } from '../temporal-plugin';
export { connectWorker, createVerificationWorker, type VerificationWorkerOptions } from '../worker';
export { createActivities, type Activities } from '../../activities';
export { PreludeClient, PreludeError, type PreludeClientOptions } from '../prelude';
export { WorkerMetrics } from '../metrics';
