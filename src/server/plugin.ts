/**
 * The HTTP routes of prelude-temporal as a Fastify plugin, for a team that mounts them in its own
 * app, behind its own authentication:
 *
 * ```ts
 * app.register(verificationRoutes, { prefix: '/verify', client, verification, webhookPublicKey });
 * ```
 *
 * It brings the verification routes and Prelude's webhook route, their schemas (zod, compiled in
 * the plugin's own scope) and an error handler of its own, scoped to them. It registers no
 * authentication, metrics endpoint, docs or codec endpoints: those are the app's.
 */
import type { Client } from '@temporalio/client';
import { returnAdmissionLeases } from '../guards/leases';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { VerificationClientOptions } from '../client';
import type { ServiceMetrics } from '../metrics';
import { answerError } from './errors';
import { windowRoutes } from './verifications';
import { webhookRoutes } from './webhooks';

export { isSignedWebhookRoute } from './webhooks';

/** What {@link verificationRoutes} needs. */
export interface VerificationRoutesOptions {
  /** The app's Temporal client, through which every route calls the windows. */
  client: Client;
  /** The helpers' options: task queue, ID key, window defaults, call deadline (`verificationClientOptions(config)`). */
  verification: VerificationClientOptions;
  /** Start fields an HTTP caller may set beyond the safe ones, e.g. `policy.maxChecks`; `*`: all. None by default. */
  allowOverrides?: readonly string[];
  /**
   * PEM public key Prelude signs its webhooks with (`PRELUDE_WEBHOOK_PUBLIC_KEY`). Without it the
   * webhook route answers every event 503 `webhook_key_missing`, and Prelude retries it.
   */
  webhookPublicKey?: string;
  /** Where webhook events and their prices are counted (the app serves its `registry`); absent: not counted. */
  metrics?: ServiceMetrics;
}

/**
 * The verification routes (`POST /verifications`, `POST /verifications/check`,
 * `POST /verifications/forget`, `GET` and `DELETE /verifications/:id`) and Prelude's webhook route
 * (`POST /webhooks/prelude`), under the prefix the app registers them with.
 *
 * Error answers are `{ code, message }` with the status of the error table (and
 * `retry_after_seconds` with `Retry-After` where a code says when to ask again). A 4xx error that
 * the app's own hooks throw, e.g. its authentication's, goes on to the app's error handler.
 *
 * The webhook route is authenticated by Prelude's signature, not by a caller's credential: the
 * app's authentication hook lets it through where {@link isSignedWebhookRoute} says so. Webhook
 * events are held to the app's `bodyLimit`. In plaintext ID mode (`idKey: null`) window IDs hold an
 * e-mail address: give the app a `routerOptions.maxParamLength` of at least 400.
 */
export const verificationRoutes: FastifyPluginAsync<VerificationRoutesOptions> = async (
  app: FastifyInstance,
  options: VerificationRoutesOptions,
) => {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(answerError);
  // The send guards' leases this app holds are reported as it closes, not left to lapse at their
  // shards (which keep a lapsed lease's reserve for its periods).
  app.addHook('onClose', () => returnAdmissionLeases(options.client));
  await app.register(windowRoutes, {
    client: options.client,
    options: options.verification,
    allowOverrides: options.allowOverrides,
    metrics: options.metrics,
  });
  await app.register(webhookRoutes, {
    client: options.client,
    publicKey: options.webhookPublicKey,
    metrics: options.metrics,
  });
};
