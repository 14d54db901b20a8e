/**
 * The HTTP service built as production builds it, with a Temporal client that never connects: for
 * what needs no Temporal (schemas, errors before a route's handler, docs, metrics, headers).
 */
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { verificationClientOptions } from '../../src/client';
import { clientConnectionOptions } from '../../src/connection';
import { buildServer, type ServerOptions } from '../../src/server';
import { loadConfig } from '../../temporal.config';

/** A service whose client points at a port nobody listens on. */
export function offlineService(options: Partial<ServerOptions> = {}): FastifyInstance {
  const config = loadConfig({ PRIVACY_MODE: 'plaintext', VERIFY_ID_KEY: 'an-id-key-for-offline-tests' });
  return buildServer({
    client: new Client({
      connection: Connection.lazy(clientConnectionOptions({ ...config.temporal, address: '127.0.0.1:1' })),
    }),
    // A route that does reach Temporal answers 503 unavailable soon.
    verification: { ...verificationClientOptions(config), callTimeoutMs: 500 },
    bodyLimitBytes: config.service.bodyLimitBytes,
    ...options,
  });
}

/** An answer as the tests read it. */
export interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any -- answers are read field by field
}

const listening = new WeakMap<FastifyInstance, Promise<string>>();

/**
 * One request over a real socket (the service listens on a free loopback port on first use):
 * Fastify's `inject` needs a module jest's CommonJS runtime cannot load.
 */
export async function request(
  app: FastifyInstance,
  init: { method: string; url: string; headers?: Record<string, string>; payload?: string },
): Promise<Answer> {
  let base = listening.get(app);
  if (!base) {
    base = app.listen({ host: '127.0.0.1', port: 0 });
    listening.set(app, base);
  }
  const response = await fetch(`${await base}${init.url}`, {
    method: init.method,
    headers: init.headers,
    body: init.payload,
  });
  const body = await response.text();
  return {
    statusCode: response.status,
    headers: Object.fromEntries(response.headers),
    body,
    json: () => JSON.parse(body),
  };
}
