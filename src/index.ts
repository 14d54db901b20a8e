/**
 * prelude-temporal: Prelude verification and Notify flows run durably on Temporal.
 *
 * Backend code mostly needs the helpers (`startVerification`, `checkCode`, `getVerification`,
 * `cancelVerification`, `startNotification`) and a worker (`createVerificationWorker`); the rest is
 * here for those who assemble their own deployment.
 */
export * from './client';
export { createVerificationWorker, writeWorkflowBundle, type VerificationWorkerOptions } from './worker';
export { buildServer, startServer, type ServerOptions } from './server';
export { startSandbox, type RunningSandbox } from './sandbox';
export { startDevServer, type DevServer, type DevServerOptions } from './devserver';
export { clientConnectionOptions, connectClient, connectWorker } from './connection';
export { dataConverterFor, EncryptionCodec, parseKeyRing } from './codec';
export { ConfigError, loadConfig, type Config } from '../temporal.config';
export {
  PreludeClient,
  PreludeError,
  normalizeTarget,
  parseWebhookEvent,
  verifyWebhookSignature,
  type Target,
  type WebhookEvent,
} from './prelude';
export { createActivities, type Activities } from '../activities';
export * from '../workflows';
