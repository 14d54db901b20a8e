/**
 * Connections to Temporal from configuration: the dev server on a laptop, a self-hosted cluster
 * with mTLS, or Temporal Cloud with an API key.
 */
import { InterceptingCall, Metadata, status, type Interceptor } from '@grpc/grpc-js';
import {
  Client,
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  type ConnectionOptions,
} from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
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
 * The SDK's retries, made safe to close under. The SDK sends a failed call again from a timer; when
 * the connection is closed before the timer fires (a service stopped while Temporal is unreachable,
 * a worker stopped while an activity's call waits to be retried), grpc-js throws "Channel has been
 * shut down" from that timer, an uncaught exception that ends the process. Below the retries, a call
 * that cannot be created ends as CANCELLED instead, which is not retried: its caller gets the error.
 */
function clientInterceptors(): Interceptor[] {
  return [makeGrpcRetryInterceptor(defaultGrpcRetryOptions()), endCallsThatCannotStart];
}

const endCallsThatCannotStart: Interceptor = (options, nextCall) => {
  try {
    return new InterceptingCall(nextCall(options));
  } catch (error) {
    const details = error instanceof Error ? error.message : String(error);
    return new InterceptingCall({
      start: (_metadata, listener) =>
        process.nextTick(() =>
          listener?.onReceiveStatus?.({ code: status.CANCELLED, details, metadata: new Metadata() }),
        ),
      sendMessage: () => undefined,
      sendMessageWithContext: () => undefined,
      halfClose: () => undefined,
      startRead: () => undefined,
      cancelWithStatus: () => undefined,
      getPeer: () => '',
      getAuthContext: () => null,
    });
  }
};
