import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Per server, its connections that have carried no request yet (see {@link trackUnusedConnections}). */
const unusedConnections = new WeakMap<Server, Set<Socket>>();

/**
 * Keeps count of a server's connections that have not sent a request yet, so that
 * {@link closeGracefully} can close them. Node's `closeIdleConnections()` leaves them open: it counts
 * a connection busy until its first request's headers come (that is how `headersTimeout` applies),
 * so `close()` waited for a client's spare connection — undici opens one after an aborted request,
 * browsers preconnect — for the whole grace. Call it when the server is created.
 */
export function trackUnusedConnections(server: Server): void {
  if (unusedConnections.has(server)) return;
  const unused = new Set<Socket>();
  unusedConnections.set(server, unused);
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  server.on('request', (request: { socket: Socket }) => unused.delete(request.socket));
}

/**
 * Stops an HTTP server in seconds, answering what is in flight. Node's `close()` (and Fastify's,
 * which calls it) stops accepting and closes the keep-alive connections idle at that moment, once: a
 * connection busy then (a caller's request, a webhook being posted, a scrape) stays open after its
 * answer until its keep-alive timeout (72 s under Fastify), and `close()` waits for it, so a SIGTERM
 * would end in SIGKILL and Ctrl-C would seem to hang. Here each connection is closed as soon as it
 * goes idle, a connection that never sent a request at once (when the server tracks them), and after
 * `graceMs` whatever is left.
 *
 * @param close how the server's owner closes it (Fastify's `app.close()`); `server.close()` by default.
 */
export async function closeGracefully(
  server: Server,
  close: () => Promise<void> = () => new Promise((resolve) => server.close(() => resolve())),
  graceMs = 10_000,
): Promise<void> {
  const closing = close();
  const sweep = () => {
    server.closeIdleConnections();
    for (const socket of unusedConnections.get(server) ?? []) socket.destroy();
  };
  sweep();
  const idleSweep = setInterval(sweep, 100);
  const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closing;
  } finally {
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }
}
