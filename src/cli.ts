#!/usr/bin/env node
/**
 * `prelude-temporal <command>`: the entry point of the npm scripts.
 *
 *   start      the whole local stack: Temporal dev server, Prelude sandbox, worker, HTTP service
 *   temporal   the Temporal dev server alone (state kept in .temporal/)
 *   sandbox    the Prelude sandbox alone
 *   worker     a worker (production: point TEMPORAL_* and PRELUDE_* at the real services)
 *   server     the HTTP service
 *   setup      prepare a Temporal server's namespace (search attributes; `--create-namespace`) and
 *              report the server settings the project relies on
 *   bundle     write the prebuilt workflow bundle (part of `npm run build`)
 */
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { ConfigError, loadConfig, loadProcessEnv } from '../temporal.config';
import { loadOrCreateDevKeys, withDevKeys } from './dev-keys';
import { clientConnectionOptions } from './connection';
import { PortTakenError, startDevServer } from './devserver';
import { startSandbox } from './sandbox';
import { describeSetup, setupTemporal, SetupError } from './setup';
import { runLocalStack, runServer, runWorker, splitAddress, type Stop } from './stack';
import { untilTemporalAnswers } from './wait-for-temporal';
import { writeWorkflowBundle } from './worker';

const commands: Record<string, () => Promise<Stop | undefined>> = {
  async start() {
    const env = loadProcessEnv();
    if (loadConfig(env).privacy.mode === 'plaintext') return runLocalStack(loadConfig(env));
    const file = join(process.cwd(), '.temporal', 'keys.json');
    const { keys, created } = loadOrCreateDevKeys(file);
    console.log(
      created
        ? `made development keys in ${file} (keep it: the windows' histories can only be read with it)`
        : `using the development keys in ${file}`,
    );
    return runLocalStack(loadConfig(withDevKeys(env, keys)));
  },

  async temporal() {
    const [ip, port] = splitAddress(loadConfig().temporal.address);
    const server = await startDevServer({ ip, port, dbFile: join(process.cwd(), '.temporal', 'dev.sqlite') });
    console.log(`Temporal dev server: ${server.address}  (Web UI ${server.uiUrl})`);
    return server.stop;
  },

  async sandbox() {
    const sandbox = await startSandbox(loadConfig().sandbox);
    console.log(`Prelude sandbox: ${sandbox.url}`);
    console.log(`  inbox            ${sandbox.url}/sandbox/messages`);
    console.log(`  webhook key      ${sandbox.url}/sandbox/webhook-public-key`);
    return sandbox.stop;
  },

  async worker() {
    const config = loadConfig();
    const stop = await runWorker(config);
    console.log(`worker polling ${config.temporal.address} task queue ${config.temporal.taskQueue}`);
    return stop;
  },

  async server() {
    const { url, stop } = await runServer(loadConfig());
    console.log(`HTTP service: ${url}  (API docs ${url}/docs)`);
    return stop;
  },

  async setup() {
    const { values } = parseArgs({
      args: process.argv.slice(3),
      options: {
        'create-namespace': { type: 'boolean', default: false },
        'retention-days': { type: 'string', default: '7' },
        json: { type: 'boolean', default: false },
      },
    });
    const retentionDays = Number(values['retention-days']);
    const { temporal } = loadConfig();
    // A cluster started a moment ago may not answer yet; an address that never does is an error.
    const connection = await untilTemporalAnswers(
      temporal,
      () => Connection.connect(clientConnectionOptions(temporal)),
      AbortSignal.timeout(60_000),
    ).catch((error: unknown) => {
      throw new SetupError(`Temporal at ${temporal.address} did not answer: ${(error as Error).message}`);
    });
    try {
      const report = await setupTemporal(connection, {
        namespace: temporal.namespace,
        createNamespace: values['create-namespace'],
        retentionDays,
      });
      console.log(values.json ? JSON.stringify(report) : describeSetup(report));
      // A server without a required setting cannot run the project: the deployment must stop here.
      if (!report.ready) process.exitCode = 3;
    } finally {
      await connection.close();
    }
    return undefined;
  },

  async bundle() {
    console.log(`workflow bundle written to ${await writeWorkflowBundle()}`);
    return undefined;
  },
};

async function main(): Promise<void> {
  const name = process.argv[2] ?? '';
  const command = commands[name];
  if (!command) {
    console.error(`usage: prelude-temporal <${Object.keys(commands).join('|')}>`);
    process.exit(2);
  }
  const stop = await command();
  if (!stop) return;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal does not wait for the work in flight (a worker may wait seconds for it).
      console.log(`${signal} again: exiting now`);
      process.exit(128 + osConstants.signals[signal]);
    }
    stopping = true;
    console.log(`${signal}: stopping (work in flight finishes first; ${signal} again to exit now)…`);
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  const known =
    error instanceof ConfigError || error instanceof PortTakenError || error instanceof SetupError;
  // parseArgs refuses unknown or malformed options with a TypeError whose code says so.
  const badArgument = (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ?? false;
  console.error(known || badArgument ? (error as Error).message : error);
  if (badArgument) process.exit(2);
  process.exit(1);
});
