/** Payload encryption at rest (AES-256-GCM with key rotation) and the Web UI's codec endpoints. */
export * from './codec-server';
export * from './encryption-codec';
export * from './key-ring';
