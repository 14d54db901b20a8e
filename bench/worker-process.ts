/**
 * A verification worker alone in its own process, forked by `npm run bench`, so that its start-up
 * time (node, imports, connection, Worker.create from the prebuilt bundle) and its memory with many
 * open windows are its own and not the bench's. Configured by the BENCH_CHILD_* variables; answers
 * `memory` messages with its memory use, and exits on `stop`.
 */
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { dataConverterFor, parseKeyRing } from '../src/codec';
import { PreludeClient } from '../src/prelude';
import { createVerificationWorker } from '../src/worker';

/** What the worker process tells the bench. */
export type WorkerProcessMessage =
  | { type: 'ready'; createMs: number; maxCachedWorkflows: number }
  | { type: 'memory'; rssBytes: number; heapUsedBytes: number };

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = (name: string) => {
    const value = process.env[`BENCH_CHILD_${name}`];
    if (!value) throw new Error(`BENCH_CHILD_${name} is not set`);
    return value;
  };
  const address = env('TEMPORAL_ADDRESS');
  const namespace = env('NAMESPACE');
  const dataConverter = dataConverterFor(parseKeyRing(env('CODEC_KEYS')));
  const client = new Client({ connection: await Connection.connect({ address }), namespace, dataConverter });
  const connection = await NativeConnection.connect({ address });
  const t0 = performance.now();
  const worker = await createVerificationWorker({
    connection,
    namespace,
    taskQueue: env('TASK_QUEUE'),
    client,
    prelude: new PreludeClient({ apiKey: 'bench', baseUrl: env('PRELUDE_URL'), timeoutMs: 10_000 }),
    dataConverter,
    workflowBundle: env('WORKFLOW_BUNDLE'),
  });
  const createMs = performance.now() - t0;
  const running = worker.run();
  const send = (message: WorkerProcessMessage) => process.send!(message);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      worker.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
      if (process.connected) process.disconnect();
    })());
  process.on('message', (message: string) => {
    if (message === 'memory') {
      // A full collection first, so the heap figure is what the open windows keep, not garbage.
      global.gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      send({ type: 'memory', rssBytes: rss, heapUsedBytes: heapUsed });
    } else if (message === 'stop') void stop();
  });
  // A bench that dies without saying `stop` leaves no worker behind.
  process.on('disconnect', () => void stop());
  send({ type: 'ready', createMs, maxCachedWorkflows: worker.options.maxCachedWorkflows });
  await running;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
