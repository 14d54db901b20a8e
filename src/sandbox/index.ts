/**
 * The Prelude sandbox: a stateful simulator of Prelude's v2 API for offline development and tests.
 * Same wire format as Prelude (the official SDK works against it unchanged), the verification
 * lifecycle enforced, an inbox of every message "sent", and signed webhooks.
 */
import { closeGracefully } from '../graceful-close';
import { buildSandboxApp } from './app';
import { CallLog } from './calls';
import { SandboxClock } from './clock';
import type { SandboxConfig } from './config';
import { Inbox } from './inbox';
import { NotifyEngine } from './notify-engine';
import { initialSettings } from './settings';
import { VerifyEngine } from './verify-engine';
import { signingKeys, WebhookDispatcher } from './webhooks';

export type { CallRecord } from './calls';
export type { InboxMessage } from './inbox';
export type { DroppableOperation, SandboxSettings } from './settings';

/** A running sandbox. */
export interface RunningSandbox {
  /** `http://host:port`: Prelude's base URL for clients. */
  url: string;
  port: number;
  /** The PEM public key webhooks are signed with. */
  publicKeyPem: string;
  /** Closes the server and cancels pending webhook deliveries. */
  stop(): Promise<void>;
}

/** Starts a sandbox (port 0: any free port). */
export async function startSandbox(
  config: SandboxConfig,
  options: { logger?: boolean } = {},
): Promise<RunningSandbox> {
  const settings = initialSettings(config);
  const current = () => settings;
  const { privateKey, publicKeyPem } = signingKeys(config.webhookPrivateKey);
  const clock = new SandboxClock();
  const webhooks = new WebhookDispatcher(privateKey, current, clock);
  const inbox = new Inbox(clock);
  const calls = new CallLog(clock);
  const verify = new VerifyEngine(current, inbox, webhooks, clock);
  const notify = new NotifyEngine(current, inbox, webhooks, clock);
  const app = buildSandboxApp(
    { settings, verify, notify, inbox, calls, clock, webhooks, publicKeyPem },
    options,
  );

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const sweep = setInterval(() => verify.sweep(), 60_000);
  sweep.unref();
  const host = config.host.includes(':')
    ? `[${config.host}]`
    : config.host === '0.0.0.0'
      ? '127.0.0.1'
      : config.host;
  return {
    url: `http://${host}:${port}`,
    port,
    publicKeyPem,
    async stop() {
      clearInterval(sweep);
      await webhooks.stop();
      await closeGracefully(app.server, () => app.close());
    },
  };
}
