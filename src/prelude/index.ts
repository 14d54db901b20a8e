/** The Prelude v2 API: HTTP client, wire schemas, errors, and webhook signatures and events. */
export * from './client';
export * from './errors';
export * from './schemas';
export * from './targets';
export * from './webhooks';
