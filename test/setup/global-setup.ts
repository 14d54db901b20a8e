import { startDevServer, type DevServer } from '../../src/devserver';

declare global {
  var __temporalDevServer: DevServer | undefined;
}

/** Starts one headless, in-memory dev server for the run, unless TEMPORAL_ADDRESS names one already. */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEMPORAL_ADDRESS) return;
  const server = await startDevServer({ uiPort: false });
  globalThis.__temporalDevServer = server;
  // Test workers are forked after this and inherit the variable.
  process.env.TEMPORAL_ADDRESS = server.address;
}
