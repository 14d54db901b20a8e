/** Helpers for backend code: start, check, inspect and cancel verification windows. */
export * from './errors';
export { targetKey, windowId, windowIdPattern } from './ids';
export * from './schemas';
export * from './verification';
export * from './notification';
export * from './forget';
