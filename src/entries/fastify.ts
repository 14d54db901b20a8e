/**
 * `prelude-temporal/fastify`: the HTTP routes as a Fastify plugin, for a team that mounts them in its
 * own app, behind its own authentication:
 *
 * ```ts
 * app.register(verificationRoutes, { prefix: '/verify', client, verification, webhookPublicKey });
 * ```
 */
export { isSignedWebhookRoute, verificationRoutes, type VerificationRoutesOptions } from '../server/plugin';
export { ServiceMetrics } from '../metrics/service-metrics';
