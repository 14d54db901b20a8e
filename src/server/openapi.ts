/**
 * The service's OpenAPI document, generated from the same zod schemas that validate requests, and a
 * small self-contained page at /docs that renders it (no assets fetched from anywhere).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { startVerificationRequestSchema } from '../client';
import { checkBodySchema, forgetBodySchema } from './verifications';

const errorSchema = z.object({
  code: z.string(),
  message: z.string(),
  retry_after_seconds: z.number().int().optional(),
});

const startAnswerSchema = z.object({
  id: z.string().describe('the window ID (workflow ID)'),
  status: z.string().describe('success (new window), retry (resend), blocked, challenged, shadow_blocked'),
  verification_id: z.string().optional(),
  expires_at: z.string(),
  attempts: z.number().int(),
  next_resend_at: z.string().optional(),
  reason: z.string().optional(),
  risk_factors: z.array(z.string()).optional(),
});

const checkAnswerSchema = z.object({
  status: z.enum(['success', 'failure', 'expired_or_not_found']),
  id: z.string().optional(),
  verification_id: z.string().optional(),
  checks_left: z.number().int().optional(),
});

const forgetAnswerSchema = z.object({
  status: z.literal('forgotten'),
  target_key: z.string().describe('the HMAC the target was filed under'),
  deleted: z.number().int().describe('workflow executions deleted'),
});

const json = (schema: z.ZodType) => ({
  'application/json': { schema: z.toJSONSchema(schema, { io: 'input' }) },
});
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { description: 'error', content: json(errorSchema) }]));
const idempotencyKeyHeader = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: '1 to 255 of A-Z a-z 0-9 . _ : -, bound to the request (422 if reused for another)',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,255}$' },
};
const pendingSchema = z.object({ status: z.literal('pending'), id: z.string(), message: z.string() });
const idParameter = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];

/** The OpenAPI 3.1 document of the HTTP service. */
export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'prelude-temporal',
      version: '0.1.0',
      description: 'Durable Prelude verifications on Temporal',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths: {
      '/verifications': {
        post: {
          summary: 'Send a code: open a window, or resend in the open one',
          parameters: [idempotencyKeyHeader],
          requestBody: { required: true, content: json(startVerificationRequestSchema) },
          responses: {
            '200': { description: 'sent', content: json(startAnswerSchema) },
            '202': { description: 'still sending when the deadline passed', content: json(pendingSchema) },
            ...errors(400, 401, 422, 429, 502, 503),
          },
        },
      },
      '/verifications/check': {
        post: {
          summary: 'Check a code',
          parameters: [idempotencyKeyHeader],
          requestBody: { required: true, content: json(checkBodySchema) },
          responses: {
            '200': { description: 'checked', content: json(checkAnswerSchema) },
            ...errors(400, 401, 422, 429, 502, 503),
          },
        },
      },
      '/verifications/forget': {
        post: {
          summary: 'Erase a target: delete every window and webhook event Temporal holds about it',
          requestBody: { required: true, content: json(forgetBodySchema) },
          responses: {
            '200': { description: 'erased', content: json(forgetAnswerSchema) },
            ...errors(400, 401, 503),
          },
        },
      },
      '/verifications/{id}': {
        get: {
          summary: "A window's state, target masked",
          parameters: idParameter,
          responses: { '200': { description: 'the window' }, ...errors(401, 404, 503) },
        },
        delete: {
          summary: 'Cancel an open window',
          parameters: idParameter,
          responses: { '200': { description: 'the canceled window' }, ...errors(401, 404, 503) },
        },
      },
      '/webhooks/prelude': {
        post: {
          summary: "Prelude's signed webhooks (authenticated by X-Webhook-Signature)",
          security: [],
          responses: { '200': { description: 'accepted or duplicate' }, ...errors(400, 401, 413, 415, 503) },
        },
      },
      '/healthz': { get: { summary: 'liveness', security: [], responses: { '200': { description: 'ok' } } } },
      '/readyz': {
        get: {
          summary: 'readiness (Temporal answers)',
          security: [],
          responses: { '200': { description: 'ready' }, ...errors(503) },
        },
      },
    },
  };
}

const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prelude-temporal API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
h2{font-size:1.1rem;margin-top:2rem}code,pre{background:#f4f4f4;border-radius:4px}pre{padding:.6rem;overflow:auto;font-size:12px}
.m{display:inline-block;min-width:4.5rem;font-weight:600}</style></head>
<body><h1>prelude-temporal API</h1><p>From <a href="/openapi.json">/openapi.json</a>.</p><div id="ops"></div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const ops = document.getElementById('ops');
  for (const [path, methods] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(methods)) {
    const s = document.createElement('section');
    const h = document.createElement('h2');
    h.innerHTML = '<span class="m"></span><code></code> — <span></span>';
    h.children[0].textContent = method.toUpperCase(); h.children[1].textContent = path; h.children[2].textContent = op.summary;
    s.appendChild(h);
    const body = op.requestBody && op.requestBody.content['application/json'].schema;
    if (body) { const p = document.createElement('pre'); p.textContent = 'request: ' + JSON.stringify(body, null, 2); s.appendChild(p); }
    const p = document.createElement('pre'); p.textContent = 'responses: ' + Object.keys(op.responses).join(', '); s.appendChild(p);
    ops.appendChild(s);
  }
});
</script></body></html>`;

/** Registers `/openapi.json` and `/docs`. */
export async function openApiRoutes(app: FastifyInstance): Promise<void> {
  const document = openApiDocument();
  app.get('/openapi.json', async () => document);
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(docsPage));
}
