import type { Server } from 'node:http';

/**
 * Stops an HTTP server in seconds, answering what is in flight. Node's `close()` (and Fastify's,
 * which calls it) stops accepting and closes the keep-alive connections idle at that moment, once: a
 * connection busy then (a caller's request, a webhook being posted, a scrape) stays open after its
 * answer until its keep-alive timeout (72 s under Fastify), and `close()` waits for it, so a SIGTERM
 * would end in SIGKILL and Ctrl-C would seem to hang. Here each connection is closed as soon as it
 * goes idle, and after `graceMs` whatever is left.
 *
 * @param close how the server's owner closes it (Fastify's `app.close()`); `server.close()` by default.
 */
export async function closeGracefully(
  server: Server,
  close: () => Promise<void> = () => new Promise((resolve) => server.close(() => resolve())),
  graceMs = 10_000,
): Promise<void> {
  const closing = close();
  const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
  const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closing;
  } finally {
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }
}
