/** Every workflow the worker runs, and the messages clients send them. */
export { notificationWorkflow } from './notification';
export { verificationWorkflow } from './verification';
export { webhookIngestWorkflow } from './webhook-ingest';
export * from './webhook-ingest-messages';
export * from './verification-messages';
export * from './search-attributes';
export * from './notification-messages';
