/**
 * The dev server `npm start` runs keeps its state in a SQLite file (`.temporal/dev.sqlite`), so that
 * open windows outlive a restart of the stack. SQLite's default journal made every commit create,
 * sync and delete a journal file: over HTTP, 200 verifications at 8 in flight took 40 s where a
 * write-ahead log takes 26. This starts the real dev server twice on one file.
 */
import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../src/devserver';

/** SQLite's file header: bytes 18 and 19 (write and read format) are 2 in WAL mode, 1 otherwise. */
function journalFormatOf(file: string): [number, number] {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  return [header[18]!, header[19]!];
}

describe('the dev server on a SQLite file (npm start)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prelude-temporal-devdb-'));
  const dbFile = join(dir, 'dev.sqlite');
  let server: DevServer | undefined;

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const withClient = async <T>(address: string, use: (client: Client) => Promise<T>): Promise<T> => {
    const connection = await Connection.connect({ address });
    try {
      return await use(new Client({ connection }));
    } finally {
      await connection.close();
    }
  };

  it('keeps its workflows across a restart, in a write-ahead-logged file', async () => {
    const workflowId = `devdb-${randomUUID()}`;
    server = await startDevServer({ uiPort: false, dbFile });
    await withClient(server.address, (client) =>
      // Delayed: no worker is needed, and the run stays open across the restart.
      client.workflow.start('anyWorkflow', { workflowId, taskQueue: 'devdb', startDelay: '1 hour' }),
    );
    await server.stop();
    server = undefined;
    expect(journalFormatOf(dbFile)).toEqual([2, 2]);

    server = await startDevServer({ uiPort: false, dbFile });
    const description = await withClient(server.address, (client) =>
      client.workflow.getHandle(workflowId).describe(),
    );
    expect(description.status.name).toBe('RUNNING');
    expect(description.type).toBe('anyWorkflow');
  }, 90_000);
});
