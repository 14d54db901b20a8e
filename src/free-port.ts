/** Free ports, for servers started on the fly (the dev server, the worker's telemetry, tests). */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/**
 * `count` distinct ports nobody listens on, drawn at once below the OS's ephemeral range: a port the
 * OS hands out for listening (port 0) comes from that range, where the machine's own outgoing
 * connections (a test's gRPC channels, a server's database pool) take local ports too, and one of
 * them can take the port before the server that was given it binds it. Below 32768 as well: the
 * Temporal server keeps its membership ports as a smallint.
 */
export async function freeListenPorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const below = ephemeralPortsStart();
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = lowestListenPort + randomInt(below - lowestListenPort);
    if (!ports.has(port) && (await portIsFree(host, port))) ports.add(port);
  }
  return [...ports];
}

/** Where listening ports are drawn from: above the well-known and registered ports most used. */
const lowestListenPort = 10_000;

/** The first port of the OS's ephemeral range (Linux's default when it cannot be read). */
function ephemeralPortsStart(): number {
  try {
    const [start] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const port = Number(start);
    return Number.isInteger(port) && port > lowestListenPort + 1_000 ? Math.min(port, 32_768) : 32_768;
  } catch {
    return 32_768;
  }
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
