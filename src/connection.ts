/**
 * Connections to Temporal from configuration: the dev server on a laptop, a self-hosted cluster
 * with mTLS, or Temporal Cloud with an API key.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalConfig } from '../temporal.config';

function connectionOptions(config: TemporalConfig) {
  return {
    address: config.address,
    ...(config.apiKey ? { apiKey: config.apiKey } : {}),
    ...(config.tls
      ? { tls: { clientCertPair: { crt: Buffer.from(config.tls.cert), key: Buffer.from(config.tls.key) } } }
      : config.apiKey
        ? { tls: true }
        : {}),
  };
}

/** A Temporal client for backend code and the HTTP service. */
export async function connectClient(config: TemporalConfig, dataConverter?: DataConverter): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(config));
  return new Client({ connection, namespace: config.namespace, dataConverter });
}

/** The connection a worker polls with. */
export function connectWorker(config: TemporalConfig): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(config));
}
