/**
 * Connections to Temporal from configuration: the dev server on a laptop, a self-hosted cluster
 * with mTLS, or Temporal Cloud with an API key.
 */
import type { Interceptor } from '@grpc/grpc-js';
import { Client, Connection, defaultGrpcRetryOptions, type ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { retryInterceptor } from './grpc-retry';
import type { TemporalConfig } from '../temporal.config';

/** What every connection to Temporal shares, a client's or a worker's: address, TLS, API key. */
export function serverConnectionOptions(config: TemporalConfig) {
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

/**
 * The options of a client's connection (a worker's takes no gRPC interceptors): the SDK's retries,
 * made safe to close under.
 */
export function clientConnectionOptions(config: TemporalConfig): ConnectionOptions {
  return { ...serverConnectionOptions(config), interceptors: clientInterceptors() };
}

/** A Temporal client for backend code and the HTTP service. */
export async function connectClient(config: TemporalConfig, dataConverter?: DataConverter): Promise<Client> {
  const connection = await Connection.connect(clientConnectionOptions(config));
  return new Client({ connection, namespace: config.namespace, dataConverter });
}

/**
 * The SDK's retry decisions (`defaultGrpcRetryOptions()`), made safe when Temporal is unreachable
 * or the connection is closed. The SDK's own retry interceptor can end the process: it throws
 * "savedMessageNext is not a function" from a gRPC callback when a call's first attempt cannot be
 * created (a call made on a closed connection: an activity or a request handled as its worker or
 * service stops), and grpc-js throws "Channel has been shut down" from its retry timer when the
 * connection is closed while a call waits to be retried (a service stopped during a Temporal
 * outage). Ours (src/grpc-retry.ts) ends such a call as CANCELLED, an error its caller gets, and
 * ends a call cancelled while it waits to be retried instead of sending it again.
 */
function clientInterceptors(): Interceptor[] {
  return [retryInterceptor(defaultGrpcRetryOptions())];
}
