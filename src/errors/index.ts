/** The error table: failure type → error code → HTTP status → description. */
export * from './table';
