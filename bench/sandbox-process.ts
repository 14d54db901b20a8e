/**
 * The Prelude sandbox alone in its own process, forked by `npm run bench`. It stands in for a remote
 * API: in the bench's process its work would share the event loop with the calls it answers (a
 * window's Watch predict would wait behind the create it runs beside, which Prelude's servers never
 * make it do) and count as the bench's CPU. Configured by the SANDBOX_* variables; tells its URL and
 * webhook key once it listens, and stops on `stop` or when the bench goes away.
 */
import { startSandbox } from '../src/sandbox';
import { loadConfig } from '../temporal.config';

/** What the sandbox process tells the bench. */
export type SandboxProcessMessage = { type: 'ready'; url: string; publicKeyPem: string };

async function main(): Promise<void> {
  const sandbox = await startSandbox(loadConfig().sandbox);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await sandbox.stop();
      if (process.connected) process.disconnect();
    })());
  process.on('message', (message: string) => {
    if (message === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  const ready: SandboxProcessMessage = {
    type: 'ready',
    url: sandbox.url,
    publicKeyPem: sandbox.publicKeyPem,
  };
  process.send!(ready);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
