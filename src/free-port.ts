/** Free ports, for servers started on the fly (the dev server, the worker's telemetry, tests). */
import { createServer } from 'node:net';

/** Asks the OS for a port nobody listens on at the moment. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether nothing listens on `host:port` right now. */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * Thrown when a server's port is taken: for the dev server, most often another `npm start` still
 * running. Here rather than beside the dev server so that the CLI can name it without loading it.
 */
export class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
}
