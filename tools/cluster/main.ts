/**
 * `npm run cluster`: the production-shaped cluster (./index.ts) until Ctrl-C. Prints where each
 * part listens; the generated keys and tokens go to `<run directory>/project.env` (mode 0600),
 * never to the terminal. CLUSTER_KEEP=1 keeps the run directory after Ctrl-C.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '.';

async function main(): Promise<void> {
  // Ctrl-C while starting: exiting runs the process hook that kills every part's process group.
  const duringStart = () => process.exit(130);
  process.on('SIGINT', duringStart);
  process.on('SIGTERM', duringStart);
  const cluster = await startCluster({ keepRunDir: process.env.CLUSTER_KEEP === '1' });
  const envFile = join(cluster.runDir, 'project.env');
  writeFileSync(
    envFile,
    Object.entries(cluster.env)
      .filter(([name]) => name !== 'PATH' && name !== 'HOME')
      .map(([name, value]) => `${name}=${value}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  console.log(
    [
      '',
      `prelude-temporal on a production-shaped Temporal cluster (ready in ${(cluster.startedInMs / 1000).toFixed(1)} s):`,
      `  Temporal       ${cluster.temporalAddress}  (frontend, history, matching, worker on PostgreSQL)`,
      ...cluster.serviceUrls.map((url, index) => `  HTTP service   ${url}   (service ${index + 1})`),
      `  Workers        ${cluster.workers.length}`,
      `  Prelude        sandbox at ${cluster.sandboxUrl}   (inbox ${cluster.sandboxUrl}/sandbox/messages)`,
      `  Keys, tokens   ${envFile}  (\`set -a; . ${envFile}\` to point the CLI and curl at it)`,
      `  Logs           ${join(cluster.runDir, 'logs')}`,
      '',
      'Ctrl-C stops everything.',
    ].join('\n'),
  );
  process.off('SIGINT', duringStart);
  process.off('SIGTERM', duringStart);
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    console.log('stopping the cluster…');
    cluster.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
