/**
 * Temporal's remote codec protocol for the Web UI and the CLI: `POST /codec/encode` and
 * `/codec/decode` take and give `{ payloads: [{ metadata: { key: base64 }, data: base64 }] }`, so an
 * operator holding the codec credential sees decrypted inputs and results while the server stores
 * only ciphertext.
 *
 * The routes have their own credential (`CODEC_API_TOKEN`), not the service's: a backend allowed to
 * send codes must not be able to decrypt every history.
 */
import type { Payload } from '@temporalio/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { describeZodError } from '../issues';
import { bearerMatches } from '../server/auth';
import { sendError } from '../server/errors';
import { DecryptionError, EncryptionCodec } from './encryption-codec';
import type { KeyRing } from './key-ring';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
/** The body of both codec endpoints, in and out. */
export const codecPayloadsSchema = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() })),
});
type JsonPayload = z.infer<typeof codecPayloadsSchema>['payloads'][number];

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
  ),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

/** Options of {@link codecServerRoutes}. */
export interface CodecServerOptions {
  keyRing: KeyRing;
  /** Bearer tokens accepted (`CODEC_API_TOKEN`: the current one and one being rotated out). */
  tokens: readonly string[];
  /** Origins allowed to call from a browser (the Web UI's). */
  corsOrigins: string[];
  /**
   * Local development only (`npm start`): the dev server's Web UI, which cannot send a bearer token,
   * may decode from this origin when its request comes from a loopback address.
   */
  localUiOrigin?: string;
}

const loopback = /^(127\.|::1$|::ffff:127\.)/;

/** Registers the codec endpoints in their own scope, with their own credential. */
export async function codecServerRoutes(app: FastifyInstance, options: CodecServerOptions): Promise<void> {
  const codec = new EncryptionCodec(options.keyRing);
  const authorized = (request: FastifyRequest) =>
    bearerMatches(request.headers.authorization, options.tokens) ||
    (options.localUiOrigin !== undefined &&
      request.headers.origin === options.localUiOrigin &&
      loopback.test(request.socket.remoteAddress ?? ''));

  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin && options.corsOrigins.includes(origin)) {
      void reply.header('access-control-allow-origin', origin);
      void reply.header('vary', 'origin');
      void reply.header('access-control-allow-credentials', 'true');
    }
    // A preflight carries no credentials: answer it before authentication.
    if (request.method === 'OPTIONS') {
      void reply.header('access-control-allow-methods', 'POST, OPTIONS');
      void reply.header('access-control-allow-headers', 'content-type, x-namespace, authorization');
      return reply.code(204).send();
    }
    if (!authorized(request)) {
      return sendError(reply, 'unauthorized', 'the codec endpoints need a valid CODEC_API_TOKEN bearer');
    }
  });

  for (const operation of ['encode', 'decode'] as const) {
    app.options(`/codec/${operation}`, async (_request, reply) => reply.code(204).send());
    app.post(`/codec/${operation}`, async (request, reply) => {
      const body = codecPayloadsSchema.safeParse(request.body);
      if (!body.success) {
        return sendError(reply, 'invalid_request', describeZodError(body.error));
      }
      try {
        const payloads = await codec[operation](body.data.payloads.map(fromJson));
        return { payloads: payloads.map(toJson) };
      } catch (error) {
        if (error instanceof DecryptionError) return sendError(reply, 'undecryptable', error.message);
        throw error;
      }
    });
  }
}
