/**
 * How the service, the sandbox and the metrics server stop: in-flight requests answered, spare
 * connections closed at once, no wait for a client that keeps a connection open without a request.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { closeGracefully, trackUnusedConnections } from '../../src/graceful-close';

/** A server whose `/slow` answers after 300 ms, on a free port. */
async function startServer(tracked: boolean): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    setTimeout(() => res.end('done'), req.url === '/slow' ? 300 : 0);
  });
  if (tracked) trackUnusedConnections(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** GET over a keep-alive agent: the connection stays open, idle, after the answer. */
function get(port: number, path: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

/** A connection that never sends a request, as a browser's preconnect or a client's spare one. */
async function openSpareConnection(port: number): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
}

/** How long closeGracefully took, with an idle keep-alive connection, a spare one and a slow request in flight. */
async function timeClose(tracked: boolean, graceMs: number): Promise<{ tookMs: number; slow: string }> {
  const { server, port } = await startServer(tracked);
  const agent = new Agent({ keepAlive: true });
  try {
    expect(await get(port, '/', agent)).toBe('done');
    await openSpareConnection(port);
    const slow = get(port, '/slow', new Agent({ keepAlive: true }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await closeGracefully(server, undefined, graceMs);
    return { tookMs: Date.now() - started, slow: await slow };
  } finally {
    agent.destroy();
  }
}

describe('closeGracefully', () => {
  it('answers the request in flight and does not wait for a connection that never sent one', async () => {
    const { tookMs, slow } = await timeClose(true, 10_000);
    expect(slow).toBe('done');
    expect(tookMs).toBeLessThan(2_000);
  });

  it('waits out its grace for that connection on a server that does not track them', async () => {
    const { tookMs, slow } = await timeClose(false, 1_500);
    expect(slow).toBe('done');
    expect(tookMs).toBeGreaterThanOrEqual(1_400);
  });
});
