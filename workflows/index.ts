/** Every workflow the worker runs, and the messages clients send them. */
export { notificationWorkflow } from './notification';
export { verificationWorkflow } from './verification';
export * from './verification-messages';
export * from './search-attributes';
export * from './notification-messages';
export { targetLimitsWorkflow } from './target-limits';
export * from './target-limits-messages';
export * from './retry-policies';
