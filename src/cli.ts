#!/usr/bin/env node
/**
 * `prelude-temporal <command>`: the entry point of the npm scripts.
 *
 *   temporal   the Temporal dev server for local use (state kept in .temporal/)
 */
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../temporal.config';
import { startDevServer } from './devserver';

const commands: Record<string, () => Promise<() => Promise<void>>> = {
  async temporal() {
    const { temporal } = loadConfig();
    const [host, port] = splitAddress(temporal.address);
    const server = await startDevServer({
      ip: host,
      port,
      dbFile: join(process.cwd(), '.temporal', 'dev.sqlite'),
    });
    console.log(`Temporal dev server: ${server.address}  (Web UI ${server.uiUrl})`);
    return server.stop;
  },
};

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), Number(address.slice(at + 1))];
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? '';
  const command = commands[name];
  if (!command) {
    console.error(`usage: prelude-temporal <${Object.keys(commands).join('|')}>`);
    process.exit(2);
  }
  const stop = await command();
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping…`);
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
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
