/**
 * A pass-through between the worker and the Prelude sandbox that records every call and can take
 * part of the API down: how a test makes Watch unreachable while Verify works, and sees the Watch
 * feedback and Notify sends a window makes after it closes (the sandbox's own call log holds only
 * Verify calls).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A call as the proxy saw it. */
export interface ProxiedCall {
  method: string;
  /** The path, e.g. `/v2/watch/feedback`. */
  path: string;
  /** The JSON body sent (undefined when there was none). */
  // Bodies are asserted field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** The status answered: the sandbox's, 503 when the path was down, 0 when it was stalled. */
  status: number;
}

/** A running proxy. */
export interface PreludeProxy {
  /** Prelude's base URL for the worker's client. */
  url: string;
  /** Every call, oldest first. */
  calls: ProxiedCall[];
  /**
   * Paths starting with one of these are answered 503 with Prelude's error body instead of being
   * forwarded (e.g. `['/v2/watch/']`: Watch is down). Empty: everything goes through.
   */
  down: string[];
  /** Paths starting with one of these are never answered: the caller's own timeout ends the call. */
  stalled: string[];
  /**
   * Paths starting with one of these are held until {@link release}, then forwarded whether their
   * caller still waits or not, as Prelude carries out a request it has received: a call in flight
   * for as long as a test needs.
   */
  held: string[];
  /** Forwards every held request, and holds no more. */
  release(): void;
  stop(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/** Starts a proxy in front of `upstream` (the sandbox's URL). */
export async function startPreludeProxy(upstream: string): Promise<PreludeProxy> {
  const releases: (() => void)[] = [];
  const proxy: Omit<PreludeProxy, 'url' | 'stop'> = {
    calls: [],
    down: [],
    stalled: [],
    held: [],
    release() {
      proxy.held = [];
      for (const release of releases.splice(0)) release();
    },
  };
  const server = createServer((request, response) => {
    void (async () => {
      const raw = await readBody(request);
      const path = (request.url ?? '/').split('?')[0]!;
      const record: ProxiedCall = {
        method: request.method ?? 'GET',
        path,
        body: raw ? (JSON.parse(raw) as unknown) : undefined,
        status: 0,
      };
      proxy.calls.push(record);
      if (proxy.stalled.some((prefix) => path.startsWith(prefix))) return;
      if (proxy.held.some((prefix) => path.startsWith(prefix))) {
        await new Promise<void>((resolve) => releases.push(resolve));
      }
      if (proxy.down.some((prefix) => path.startsWith(prefix))) {
        record.status = 503;
        response.writeHead(503, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            code: 'service_unavailable',
            message: 'the test took this part of the API down',
            type: 'internal_error',
            request_id: randomUUID(),
          }),
        );
        return;
      }
      try {
        const answer = await fetch(`${upstream}${request.url ?? '/'}`, {
          method: request.method,
          headers: {
            ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}),
            ...(raw ? { 'content-type': 'application/json' } : {}),
          },
          body: raw || undefined,
        });
        const text = await answer.text();
        record.status = answer.status;
        const retryAfter = answer.headers.get('retry-after');
        response.writeHead(answer.status, {
          'content-type': answer.headers.get('content-type') ?? 'application/json',
          ...(retryAfter ? { 'retry-after': retryAfter } : {}),
        });
        response.end(text);
      } catch {
        // The sandbox dropped the answer (or stopped): so does the proxy.
        response.destroy();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
