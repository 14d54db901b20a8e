import type { FastifyInstance } from 'fastify';

/**
 * Stops an HTTP app in seconds, answering what is in flight. Fastify's `close()` stops accepting and
 * closes the keep-alive connections idle at that moment, once: a connection busy then (a caller's
 * request, a webhook being posted) stays open after its answer until its keep-alive timeout, 72 s,
 * and `close()` waits for it, so a SIGTERM would end in SIGKILL and Ctrl-C would seem to hang.
 * Here each connection is closed as soon as it goes idle, and after `graceMs` whatever is left.
 */
export async function closeGracefully(app: FastifyInstance, graceMs = 10_000): Promise<void> {
  const closing = app.close();
  const idleSweep = setInterval(() => app.server.closeIdleConnections(), 100);
  const deadline = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await closing;
  } finally {
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }
}
