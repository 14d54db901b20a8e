/**
 * The worker's `/metrics` endpoint: its domain metrics and the Temporal SDK's, in one Prometheus text
 * page on `METRICS_HOST:METRICS_PORT`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { bearerMatches } from '../server/auth';
import { closeGracefully, trackUnusedConnections } from '../graceful-close';

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Where Core serves the SDK's metrics, appended to the page. */
  sdkMetricsUrl?: string;
  /** When set, the bearer token a scraper must send (`METRICS_TOKEN`). */
  token?: string;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` until closed. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    answer(options, request, response).catch(() => {
      if (!response.headersSent) json(response, 500, 'internal', 'metrics could not be collected');
      else response.destroy();
    });
  });
  trackUnusedConnections(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () => closeGracefully(server),
  };
}

async function answer(options: MetricsServerOptions, request: IncomingMessage, response: ServerResponse) {
  const path = (request.url ?? '').split('?')[0];
  if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
    return json(response, 404, 'not_found', 'metrics are at GET /metrics');
  }
  if (options.token && !bearerMatches(request.headers.authorization, [options.token])) {
    return json(response, 401, 'unauthorized', 'a valid METRICS_TOKEN bearer is required');
  }
  const pages = [await options.registry.metrics()];
  if (options.sdkMetricsUrl) pages.push(await sdkMetrics(options.sdkMetricsUrl));
  response.writeHead(200, { 'content-type': options.registry.contentType });
  response.end(request.method === 'HEAD' ? undefined : pages.map((page) => page.trimEnd()).join('\n') + '\n');
}

/** Core's page; empty when it cannot be read (the domain metrics are served regardless). */
async function sdkMetrics(url: string): Promise<string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return response.ok ? await response.text() : '';
  } catch {
    return '';
  }
}

function json(response: ServerResponse, status: number, code: string, message: string) {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify({ code, message }));
}
