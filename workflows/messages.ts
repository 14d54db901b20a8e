/**
 * What clients and workflows share: the messages (updates, signals, queries) and their payload
 * types, workflow ID prefixes and the search attributes. Clients import them from here; the
 * workflows entry (`./index.ts`) exports workflow functions only, so a worker's workflows file can
 * `export *` from it.
 */
export * from './verification-messages';
export * from './notification-messages';
export * from './target-limits-messages';
export * from './search-attributes';
