/**
 * The API reference: the OpenAPI 3.1 document generated from the routes' own schemas
 * (`/openapi.json`), and an interactive page that renders it (`/docs`, Swagger UI, served from the
 * package: the page loads nothing from anywhere else).
 */
import swagger, { type SwaggerTransform } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform } from 'fastify-type-provider-zod';
import { codecPayloadsSchema } from '../codec';
import { errorAnswers } from './schemas';

const description = `Durable [Prelude](https://prelude.so) verifications on Temporal: one workflow per verification window.

Every error answer is \`{ "code", "message" }\` (and \`retry_after_seconds\` with a 429; \`nothing_sent: true\` on a send
that failed with no code sent, which the user may simply try again). Every route but the
webhook, health and metrics ones needs \`Authorization: Bearer <SERVICE_API_TOKEN>\` when the service has one.
Targets never appear in IDs or answers: a window ID is an HMAC of its target, and a window shows its target masked.`;

const schemaTransform = createJsonSchemaTransform({});

/**
 * The codec routes (src/codec) declare no schema of their own: they are described here. Preflight
 * routes are the CORS plugin's and the codec's own business, not operations.
 */
const transform: SwaggerTransform = (given) => {
  const methods = [given.route.method].flat();
  if (methods.includes('OPTIONS')) return { schema: { hide: true }, url: given.url };
  const codecOperation = /^\/codec\/(encode|decode)$/.exec(given.url)?.[1] as 'encode' | 'decode' | undefined;
  const input = codecOperation ? { ...given, schema: codecSchema(codecOperation) } : given;
  const transformed = schemaTransform(input as Parameters<typeof schemaTransform>[0]);
  return { ...transformed, schema: withoutSafeIntegerBounds(transformed.schema) };
};

/** The schema of a codec route, as the route would declare it. */
function codecSchema(operation: 'encode' | 'decode') {
  return {
    operationId: `${operation}Payloads`,
    summary: `Temporal's remote codec: ${operation} payloads`,
    description:
      'For the Temporal Web UI and CLI (`--codec-endpoint`): `{ payloads: [{ metadata, data }] }` in and out, base64. ' +
      'Behind its own credential, `CODEC_API_TOKEN`, not the service token.',
    tags: ['codec'],
    security: [{ codecToken: [] }],
    body: codecPayloadsSchema,
    response: {
      200: codecPayloadsSchema.describe(`the payloads, ${operation}d`),
      ...errorAnswers(
        'invalid_request',
        'payload_too_large',
        'unsupported_media_type',
        'unauthorized',
        ...(operation === 'decode' ? (['undecryptable'] as const) : []),
      ),
    },
  };
}

/**
 * zod bounds every whole number by JavaScript's safe integers; those bounds say nothing a reader
 * needs (and Swagger UI would show 9007199254740991 as the example), so the document leaves them out.
 */
function withoutSafeIntegerBounds<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutSafeIntegerBounds) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(
        ([key, child]) =>
          !(key === 'maximum' && child === Number.MAX_SAFE_INTEGER) &&
          !(key === 'minimum' && child === Number.MIN_SAFE_INTEGER),
      )
      .map(([key, child]) => [key, withoutSafeIntegerBounds(child)]),
  ) as T;
}

/**
 * Registers the document generator on the whole service (it collects every route registered after
 * it: register it first) and `app.swagger()`, the document.
 */
export function generateOpenApi(
  app: FastifyInstance,
  { codec, admin = false }: { codec: boolean; admin?: boolean },
): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'prelude-temporal',
        version: '0.1.0',
        description,
        contact: { name: 'prelude-temporal maintainers' },
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // The service that serves this document: a client is generated once and pointed at each deployment.
      servers: [{ url: '/', description: 'the service serving this document' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'SERVICE_API_TOKEN' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when set' },
          ...(codec
            ? { codecToken: { type: 'http', scheme: 'bearer', description: 'CODEC_API_TOKEN' } }
            : {}),
          ...(admin
            ? { adminToken: { type: 'http', scheme: 'bearer', description: 'SERVICE_ADMIN_TOKEN' } }
            : {}),
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'verifications', description: 'Send, check, read, cancel and forget verification windows' },
        { name: 'webhooks', description: "Prelude's delivery reports, verified by signature" },
        { name: 'operations', description: 'Health, readiness and Prometheus metrics' },
        ...(codec ? [{ name: 'codec', description: 'Decrypting payloads for the Temporal Web UI' }] : []),
        ...(admin
          ? [{ name: 'admin', description: "The send guards' run-time controls, behind their own token" }]
          : []),
      ],
    },
    transform,
  });
}

/** Registers `/docs` (the interactive reference) and `/openapi.json` (the document). */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { layout: 'BaseLayout', docExpansion: 'list', deepLinking: true, defaultModelsExpandDepth: 0 },
    theme: { title: 'prelude-temporal API' },
    staticCSP: true,
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
