/**
 * Property-based requests over every route of the HTTP service, against the real stack (service,
 * worker, dev server, sandbox): random JSON, wrong types, huge strings, odd Unicode (lone
 * surrogates, RTL marks, NUL), missing and odd headers, bad Idempotency-Keys and content types,
 * webhooks signed and not. Properties: never a 5xx; every 4xx is exactly `{ code, message }`
 * (and `retry_after_seconds` where it applies); every accepted webhook is answered
 * `{ status: 'accepted', event_id, disposition }`; no workflow exists that an accepted request did
 * not start, and no history holds a signal of a refused webhook's event. FUZZ_RUNS (default 300) and
 * FUZZ_SEED replay a run; fast-check prints the seed on failure.
 */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import fc from 'fast-check';
import { windowId } from '../../src/client';
import { isNotFound } from '../../src/client/calls';
import { guardShardOf } from '../../src/guards/check';
import { normalizeTarget } from '../../src/prelude/targets';
import { ingestDispositions } from '../../src/ingest';
import { windowIdPrefix } from '../../workflows/messages';
import { eventually } from '../support/eventually';
import { startStack, type TestStack } from '../support/stack';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const { privateKey: attackerKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const apiToken = 'fuzz-token-0123456789abcdef';
const runs = Number(process.env.FUZZ_RUNS ?? 300);
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** One request, exactly as it goes on the wire. */
interface FuzzRequest {
  method: string;
  /** Already percent-encoded (or deliberately malformed). */
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Sign the body (as sent) with this key into `x-webhook-signature`. */
  signWith?: 'prelude' | 'attacker';
}

interface Answer {
  status: number;
  contentType?: string;
  text: string;
}

// ---- building blocks --------------------------------------------------------------------------

const oddPieces = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\udc00\ud800',
  '\u202e',
  '\u200f',
  '\u200b',
  '\ufeff',
  '\uffff',
  'مرحبا',
  '𝕏',
  'e\u0301',
  '\r\n',
  '\\',
  '"',
  '%00',
  '%',
  '../',
  "'; --",
  '${x}',
  '{{x}}',
  ' ',
];
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(...oddPieces),
  fc.array(fc.constantFrom(...oddPieces, 'a', '1', '+'), { maxLength: 12 }).map((p) => p.join('')),
);
const hugeString = fc
  .tuple(fc.integer({ min: 1_000, max: 90_000 }), fc.constantFrom('x', 'é', '\u0000', '𝕏', '\ud800'))
  .map(([n, unit]) => unit.repeat(Math.ceil(n / unit.length)));
const anyString = fc.oneof({ arbitrary: oddString, weight: 6 }, { arbitrary: hugeString, weight: 1 });
const anyScalar = fc.oneof(
  anyString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(1e308, -0, 2 ** 53 + 1),
);
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.array(anyScalar, { maxLength: 4 }),
  fc.dictionary(oddString, anyScalar, { maxKeys: 4 }),
  anyScalar,
);
/** A valid value most of the time, anything otherwise. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: anyJson, weight: 1 });

const randomPhone = fc.integer({ min: 0, max: 9_999_999 }).map((n) => `+3361${String(n).padStart(7, '0')}`);
/** A few numbers many requests share, so starts, checks and cancels meet the same windows. */
const sharedPhones = Array.from(
  { length: 4 },
  (_, i) => `+3362${String((Date.now() + i * 7_919) % 10_000_000).padStart(7, '0')}`,
);
const phone = fc.oneof(randomPhone, fc.constantFrom(...sharedPhones));
const phoneValue = fc.oneof(
  { arbitrary: phone, weight: 4 },
  {
    arbitrary: fc.constantFrom(
      '+33 (0)6 12 34 56 78',
      '0033612345678',
      '+1',
      '+',
      '++33612345678',
      '+336123456789012345',
      '+33612345678\u0000',
      '\u202e+33612345678',
    ),
    weight: 1,
  },
  { arbitrary: anyString, weight: 1 },
);
const email = fc.oneof(
  fc.emailAddress(),
  fc.constantFrom('A@B.CO', 'a@b', '@', 'a@\u202eb.com', 'x'.repeat(400) + '@a.io'),
);
const target = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('phone_number'), value: phoneValue }), weight: 5 },
  { arbitrary: fc.record({ type: fc.constant('email_address'), value: email }), weight: 1 },
  {
    arbitrary: fc.record(
      { type: mostly(fc.constantFrom('phone_number', 'email_address', 'PHONE', '')), value: anyJson },
      { requiredKeys: [] },
    ),
    weight: 1,
  },
);
const code = fc.oneof(fc.stringMatching(/^\d{4,8}$/), anyString, fc.integer(), fc.constant(null));
const policyOverrides = fc.record(
  {
    windowSeconds: mostly(fc.integer({ min: -5, max: 100_000 })),
    maxChecks: mostly(fc.integer({ min: -1, max: 1_000 })),
    resendCooldownSeconds: mostly(fc.integer({ min: -1, max: 10 })),
    fraudMode: mostly(fc.constantFrom('off', 'monitor', 'enforce', 'lax')),
    fallbackChannels: mostly(fc.array(fc.constantFrom('sms', 'voice', 'pigeon'))),
  },
  { requiredKeys: [] },
);
const preludeOptions = fc.record(
  {
    locale: mostly(fc.constantFrom('fr-FR', 'en', 'xx-YY')),
    preferred_channel: mostly(fc.constantFrom('sms', 'whatsapp', 'pigeon')),
    custom_code: mostly(fc.stringMatching(/^\d{4}$/)),
    callback_url: mostly(fc.constantFrom('https://example.com/hook', 'not a url')),
    template_id: anyJson,
  },
  { requiredKeys: [] },
);
const signals = fc.record(
  {
    ip: mostly(fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('999.1.1.1'))),
    device_id: anyJson,
    device_platform: mostly(fc.constantFrom('ios', 'android', 'web', 'toaster')),
    is_trusted_user: anyJson,
  },
  { requiredKeys: [] },
);

const startBody = fc.oneof(
  {
    arbitrary: fc.record({ target: fc.record({ type: fc.constant('phone_number'), value: phone }) }),
    weight: 3,
  },
  {
    arbitrary: fc.record(
      {
        target,
        signals: mostly(signals),
        options: mostly(preludeOptions),
        policy: mostly(policyOverrides),
        dispatchId: fc.oneof(fc.uuid(), anyString),
      },
      { requiredKeys: ['target'] },
    ),
    weight: 4,
  },
  { arbitrary: anyJson, weight: 1 },
);
const checkBody = fc.oneof(
  {
    arbitrary: fc.record({
      target: fc.record({ type: fc.constant('phone_number'), value: fc.constantFrom(...sharedPhones) }),
      code: fc.oneof(fc.stringMatching(/^\d{6}$/), fc.constantFrom('!', '', ' 123456 ', '１２３４５６')),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ target, code }, { requiredKeys: [] }), weight: 4 },
  { arbitrary: anyJson, weight: 1 },
);
const forgetBody = fc.oneof(
  { arbitrary: fc.record({ target }, { requiredKeys: [] }), weight: 4 },
  { arbitrary: anyJson, weight: 1 },
);

const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/);
const iso = fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
/** A delivery report; `known` are window IDs that exist (or will), so that some reach a window. */
const deliveryEvent = (known: string[]) =>
  fc.record({
    id: fc.stringMatching(/^evt_[0-9a-z]{26}$/),
    type: fc.constant('verify.delivery_status'),
    created_at: iso,
    payload: fc.record({
      id: fc.stringMatching(/^dls_[0-9a-z]{8}$/),
      attempt_id: fc.stringMatching(/^att_[0-9a-z]{8}$/),
      verification_id: fc.stringMatching(/^vrf_[0-9a-z]{8}$/),
      status: fc.constantFrom('submitted', 'delivered', 'undeliverable'),
      time: iso,
      metadata: fc.record({
        correlation_id: fc.oneof(
          fc.constantFrom(...known),
          hex32.map((h) => `${windowIdPrefix}${h}`),
        ),
      }),
    }),
  });
const webhookEvent = fc.record(
  {
    id: mostly(fc.oneof(fc.stringMatching(/^evt_[0-9a-z]{26}$/), oddString)),
    type: mostly(
      fc.constantFrom(
        'verify.delivery_status',
        'verify.attempt',
        'verify.authentication',
        'transactional.message.delivered',
        'transactional.message.failed',
        'something.new',
        '',
      ),
    ),
    created_at: mostly(iso),
    payload: mostly(
      fc.record(
        {
          id: mostly(fc.stringMatching(/^(att|dls)_[0-9a-z]{8}$/)),
          attempt_id: mostly(fc.stringMatching(/^att_[0-9a-z]{8}$/)),
          verification_id: mostly(fc.stringMatching(/^vrf_[0-9a-z]{8}$/)),
          target: mostly(fc.record({ type: fc.constant('phone_number'), value: phone })),
          status: mostly(fc.constantFrom('submitted', 'delivered', 'undeliverable', 'teleported')),
          delivery_status: mostly(fc.constantFrom('delivered', 'unknown')),
          time: mostly(iso),
          correlation_id: mostly(
            fc.oneof(
              hex32.map((h) => `notification-${h}`),
              oddString,
            ),
          ),
          metadata: mostly(
            fc.record(
              {
                correlation_id: fc.oneof(
                  hex32.map((h) => `${windowIdPrefix}${h}`),
                  oddString.map((s) => `${windowIdPrefix}${s}`),
                  fc.constant(windowIdPrefix),
                  anyJson,
                ),
              },
              { requiredKeys: [] },
            ),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

/**
 * A string as the bytes of a header value: UTF-8 sent raw (Node writes header strings as latin1),
 * without the control characters Node refuses to send, and at most 1,500 bytes so that all headers
 * together stay under Node's 16 KB limit (beyond it, see the wire-level cases below).
 */
const headerValue = (s: string) =>
  Buffer.from(s, 'utf8')
    .toString('latin1')
    .replace(/[^\t\x20-\x7e\x80-\xff]/g, '')
    .slice(0, 1_500);
const oddHeader = fc.oneof(oddString, hugeString).map(headerValue);

type Headers = Record<string, string | undefined>;
const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 10 },
  {
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=utf-16',
      'application/json;;',
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/vnd.api+json',
      'application/octet-stream',
      '*/*',
      '',
      undefined,
    ),
    weight: 3,
  },
  { arbitrary: oddHeader, weight: 1 },
);
const authorization = fc.oneof(
  { arbitrary: fc.constant(`Bearer ${apiToken}`), weight: 10 },
  {
    arbitrary: fc.constantFrom(
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `bearer ${apiToken}`,
      'Basic Zm9vOmJhcg==',
      `Bearer ${apiToken}x`,
    ),
    weight: 2,
  },
  { arbitrary: oddHeader.map((s) => `Bearer ${s}`), weight: 1 },
);
const idempotencyKey = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 4 },
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/), weight: 3 },
  {
    arbitrary: fc.constantFrom('', ' ', 'a b', 'k,k', 'ключ', '\u00e9', 'x'.repeat(256), 'x'.repeat(1_500)),
    weight: 2,
  },
  { arbitrary: oddHeader, weight: 1 },
);
const extraHeaders = fc.record(
  {
    accept: fc.oneof(fc.constantFrom('text/html', '*/*', 'application/xml'), oddHeader),
    'accept-charset': oddHeader,
    'x-forwarded-for': oddHeader,
    'user-agent': oddHeader,
    'x-request-id': oddHeader,
  },
  { requiredKeys: [] },
);

const commonHeaders = fc
  .record({ 'content-type': contentType, authorization, 'idempotency-key': idempotencyKey })
  .chain((h) => extraHeaders.map((extra) => ({ ...extra, ...h }) as Headers));

/** A JSON value as a body, or a body that is not quite JSON. */
const asBody = (value: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { arbitrary: value.map((v) => JSON.stringify(v) ?? 'undefined'), weight: 8 },
    {
      arbitrary: fc.oneof(
        fc.constantFrom('', '{', '{"target":', 'null', '[]', '"x"', '\ufeff{}', '{"a":1}{"a":2}', '\u0000'),
        anyString,
        value.map((v) => `${JSON.stringify(v) ?? ''}\u0000`),
      ),
      weight: 2,
    },
  );

/** Percent-encodes every byte of the UTF-8 form that is not unreserved (lone surrogates included). */
const encodePath = (s: string) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');
/** Window IDs: those of the shared numbers (`known`), made-up, odd, malformed. */
const windowIdSegment = (known: string[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...known), weight: 3 },
    { arbitrary: fc.constantFrom('', '%20', '%00', 'verification-'), weight: 1 },
    { arbitrary: hex32.map((h) => encodePath(`${windowIdPrefix}${h}`)), weight: 3 },
    { arbitrary: oddString.map((s) => encodePath(`${windowIdPrefix}${s}`)), weight: 2 },
    { arbitrary: oddString.map(encodePath), weight: 2 },
    {
      arbitrary: fc.integer({ min: 900, max: 5_000 }).map((n) => `${windowIdPrefix}${'a'.repeat(n)}`),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(
        '%',
        '%zz',
        '%E0%A4%A',
        '%00',
        '%C0%AF',
        '..',
        '.',
        'verification-%FF',
        '%2F%2E%2E',
      ),
      weight: 2,
    },
  );
const query = fc.oneof(
  { arbitrary: fc.constant(''), weight: 6 },
  { arbitrary: fc.constantFrom('?', '?a=1&a=2', '?%', '?x=%zz', '?__proto__=1'), weight: 1 },
  { arbitrary: oddString.map((s) => `?q=${encodePath(s)}`), weight: 1 },
);

const request = (
  method: fc.Arbitrary<string>,
  path: fc.Arbitrary<string>,
  body?: fc.Arbitrary<string | undefined>,
  signWith?: fc.Arbitrary<FuzzRequest['signWith']>,
): fc.Arbitrary<FuzzRequest> =>
  fc
    .record({
      method,
      path,
      query,
      headers: commonHeaders,
      body: body ?? fc.constant(undefined),
      signWith: signWith ?? fc.constant(undefined),
    })
    .map(({ method: m, path: p, query: q, headers, body: b, signWith: s }) => {
      const defined: Record<string, string> = {};
      for (const [name, value] of Object.entries(headers))
        if (value !== undefined) defined[name] = headerValue(value);
      return { method: m, path: `${p}${q}`, headers: defined, body: b, ...(s ? { signWith: s } : {}) };
    });

const webhookSignature = fc.constantFrom<FuzzRequest['signWith']>(
  'prelude',
  'prelude',
  'prelude',
  'attacker',
  undefined,
);
const webhookRequest = (known: string[]) =>
  request(
    fc.constant('POST'),
    fc.constant('/webhooks/prelude'),
    asBody(
      fc.oneof(
        { arbitrary: deliveryEvent(known), weight: 2 },
        { arbitrary: webhookEvent, weight: 4 },
        { arbitrary: anyJson, weight: 1 },
      ),
    ),
    webhookSignature,
  ).chain((r) =>
    // Some carry a signature header of their own making instead.
    fc
      .oneof(
        { arbitrary: fc.constant(undefined), weight: 6 },
        {
          arbitrary: fc.oneof(
            fc.constantFrom(
              'rsassa-pss-sha256=',
              'rsassa-pss-sha256==',
              'sha256=abc',
              'rsassa-pss-sha256=%%%',
            ),
            fc.base64String({ maxLength: 400 }).map((b) => `rsassa-pss-sha256=${b}`),
            oddHeader,
          ),
          weight: 1,
        },
      )
      .map((header) =>
        header === undefined
          ? r
          : { ...r, signWith: undefined, headers: { ...r.headers, 'x-webhook-signature': header } },
      ),
  );

/** Any request to any route; `known` are window IDs that exist (or will). */
const anyRequest = (known: string[]): fc.Arbitrary<FuzzRequest> =>
  fc.oneof(
    { arbitrary: request(fc.constant('POST'), fc.constant('/verifications'), asBody(startBody)), weight: 4 },
    {
      arbitrary: request(fc.constant('POST'), fc.constant('/verifications/check'), asBody(checkBody)),
      weight: 4,
    },
    {
      arbitrary: request(fc.constant('POST'), fc.constant('/verifications/forget'), asBody(forgetBody)),
      weight: 1,
    },
    {
      arbitrary: request(
        fc.constantFrom('GET', 'DELETE'),
        windowIdSegment(known).map((id) => `/verifications/${id}`),
        fc.option(asBody(anyJson), { nil: undefined }),
      ),
      weight: 3,
    },
    { arbitrary: webhookRequest(known), weight: 4 },
    {
      arbitrary: request(
        fc.constantFrom('GET', 'HEAD'),
        fc.constantFrom('/healthz', '/readyz', '/openapi.json', '/docs'),
      ),
      weight: 1,
    },
    {
      // Unknown routes and known routes with the wrong method.
      arbitrary: request(
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
        fc.oneof(
          fc.constantFrom(
            '/',
            '//',
            '/verifications/',
            '/verifications/a/b',
            '/webhooks',
            '/webhooks/prelude/',
            '/webhooks/prelude/x',
            '/healthz/',
            '/codec/decode',
            '/%',
            '/verifications/%ZZ/x',
          ),
          oddString.map((s) => `/${encodePath(s)}`),
        ),
        fc.option(asBody(anyJson), { nil: undefined }),
      ),
      weight: 2,
    },
    {
      arbitrary: request(
        fc.constantFrom('PUT', 'PATCH', 'GET'),
        fc.constantFrom('/verifications', '/verifications/check', '/webhooks/prelude'),
        fc.option(asBody(anyJson), { nil: undefined }),
      ),
      weight: 1,
    },
  );

// ---- the wire ---------------------------------------------------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

function signatureOf(body: Buffer, key: 'prelude' | 'attacker'): string {
  const signed = sign('sha256', body, {
    key: key === 'prelude' ? privateKey : attackerKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  return `rsassa-pss-sha256=${signed.toString('base64')}`;
}

function send(serverUrl: string, r: FuzzRequest): Promise<Answer> {
  const url = new URL(serverUrl);
  const body = r.body === undefined ? undefined : Buffer.from(r.body, 'utf8');
  const headers: Record<string, string> = { ...r.headers };
  if (body) headers['content-length'] = String(body.length);
  if (body && r.signWith) headers['x-webhook-signature'] = signatureOf(body, r.signWith);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      // Longer than the longest a route may take: forget waits up to 30 s for deletions to land.
      { host: url.hostname, port: url.port, method: r.method, path: r.path, headers, agent, timeout: 45_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 45 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** What is wrong with an error answer's shape, if anything. */
function errorShapeProblem(answer: Answer): string | undefined {
  if (!answer.contentType?.startsWith('application/json')) return `content type ${answer.contentType}`;
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    return 'not JSON';
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not an object';
  const body = json as Record<string, unknown>;
  const keys = Object.keys(body).sort();
  const allowed = ['code', 'message', 'retry_after_seconds', 'nothing_sent'];
  if (keys.some((k) => !allowed.includes(k))) return `keys ${keys.join(',')}`;
  if (typeof body.code !== 'string' || typeof body.message !== 'string') return 'code/message not strings';
  if ('retry_after_seconds' in body && typeof body.retry_after_seconds !== 'number')
    return 'retry_after_seconds not a number';
  if ('nothing_sent' in body && body.nothing_sent !== true) return 'nothing_sent not true';
  return undefined;
}

/** Writes `raw` on a fresh socket and reads the one answer (the server closes or keeps it). */
function rawExchange(port: number, raw: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(raw, 'latin1'));
    let data = '';
    const finish = () => {
      socket.destroy();
      const [head = '', ...rest] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const contentType = /\r\ncontent-type: *([^\r]*)/i.exec(head)?.[1];
      resolve({ status, contentType, text: rest.join('\r\n\r\n') });
    };
    socket.setTimeout(5_000, finish);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      // One answer is enough: stop once its body (by Content-Length) is in.
      const length = /\r\ncontent-length: *(\d+)/i.exec(data)?.[1];
      const bodyAt = data.indexOf('\r\n\r\n');
      if (length !== undefined && bodyAt >= 0 && Buffer.byteLength(data.slice(bodyAt + 4)) >= Number(length))
        finish();
    });
    socket.on('end', finish);
    socket.on('error', reject);
  });
}

/** The guard shard of the phone number a send's body names, when it names a valid one. */
function guardShardOfBody(body: string | undefined, options: TestStack['options']): string | undefined {
  try {
    const target = (JSON.parse(body ?? '') as { target?: { type?: unknown; value?: unknown } }).target;
    if (target?.type !== 'phone_number' || typeof target.value !== 'string') return undefined;
    return guardShardOf(normalizeTarget({ type: 'phone_number', value: target.value }).value, options)
      .workflowId;
  } catch {
    return undefined;
  }
}

/** The event ID a webhook body names, when it is JSON with a string `id`. */
function eventIdOf(body: string | undefined): string | undefined {
  try {
    const id = (JSON.parse(body ?? '') as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** What is wrong with an accepted webhook's answer, or undefined when it is right. */
function webhookAnswerProblem(json: Record<string, unknown>): string | undefined {
  const keys = Object.keys(json).sort().join(',');
  if (keys !== 'disposition,event_id,status') return `keys ${keys}`;
  if (json.status !== 'accepted') return `status ${String(json.status)}`;
  if (typeof json.event_id !== 'string') return 'event_id not a string';
  if (!(ingestDispositions as readonly unknown[]).includes(json.disposition))
    return `disposition ${String(json.disposition)}`;
  return undefined;
}

/** The event IDs of a run's signals (decoded: payloads are encrypted), or none once it is deleted. */
async function signalledEventIds(stack: TestStack, workflowId: string, runId: string): Promise<string[]> {
  let history;
  try {
    history = await stack.client.workflow.getHandle(workflowId, runId).fetchHistory();
  } catch (error) {
    // Forget deletes a target's runs: one listed may be gone, and took no signal since (fetching its
    // history answers gRPC NOT_FOUND, not the client's own WorkflowNotFoundError).
    if (isNotFound(error)) return [];
    throw error;
  }
  const ids: string[] = [];
  for (const event of history.events ?? []) {
    let payloads = (event.workflowExecutionSignaledEventAttributes?.input?.payloads ?? []) as Payload[];
    if (payloads.length === 0) continue;
    for (const codec of [...(stack.dataConverter.payloadCodecs ?? [])].reverse())
      payloads = await codec.decode(payloads);
    for (const payload of payloads) {
      const value = defaultPayloadConverter.fromPayload<{ eventId?: unknown } | null>(payload);
      if (typeof value?.eventId === 'string') ids.push(value.eventId);
    }
  }
  return ids;
}

// ---- the properties ---------------------------------------------------------------------------

describe('HTTP fuzz', () => {
  let stack: TestStack;
  /** Workflow IDs accepted requests may have started. */
  const windowsStarted = new Set<string>();
  /** The send guard shards a send request's number may have reached (the guards count attempts). */
  const guardShards = new Set<string>();
  const eventsAccepted = new Set<string>();
  /** Event IDs of refused webhooks: no history may hold a signal that carries one. */
  const eventsRefused = new Set<string>();
  let runsDone = 0;

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      apiToken,
      sandboxEnv: {
        SANDBOX_WEBHOOK_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
      callTimeoutMs: 10_000,
    });
  });
  afterAll(async () => {
    agent.destroy();
    await stack?.stop();
  });

  it('answers every request without a 5xx, with errors as { code, message }', async () => {
    const started = Date.now();
    const known = sharedPhones.map((value) => windowId({ type: 'phone_number', value }, stack.options.idKey));
    await fc.assert(
      fc.asyncProperty(anyRequest(known), async (r) => {
        runsDone += 1;
        const answer = await send(stack.serverUrl!, r);
        if (answer.status >= 500) throw new Error(`${answer.status} ${answer.text}`);
        if (answer.status >= 400 && r.method !== 'HEAD') {
          const problem = errorShapeProblem(answer);
          if (problem)
            throw new Error(`${answer.status} answer in the wrong shape (${problem}): ${answer.text}`);
        }
        const webhook = r.path.startsWith('/webhooks/prelude');
        if (r.method === 'POST' && (r.path.startsWith('/verifications?') || r.path === '/verifications')) {
          const shard = guardShardOfBody(r.body, stack.options);
          if (shard) guardShards.add(shard);
        }
        if (answer.status >= 200 && answer.status < 300 && r.method === 'POST') {
          const json = JSON.parse(answer.text) as { id?: unknown; event_id?: unknown };
          if (r.path.startsWith('/verifications?') || r.path === '/verifications') {
            if (typeof json.id === 'string') windowsStarted.add(json.id);
          }
          if (webhook) {
            const problem = webhookAnswerProblem(json);
            if (problem) throw new Error(`webhook answer in the wrong shape (${problem}): ${answer.text}`);
            eventsAccepted.add(json.event_id as string);
          }
        }
        const eventId = webhook ? eventIdOf(r.body) : undefined;
        if (answer.status >= 400 && eventId !== undefined) eventsRefused.add(eventId);
      }),
      { numRuns: runs, seed, interruptAfterTimeLimit: 50_000, markInterruptAsFailure: false },
    );
    console.log(
      `http fuzz: ${runsDone} requests in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `${windowsStarted.size} windows opened, ${eventsAccepted.size} webhook events accepted`,
    );
  }, 90_000);

  it('started no workflow and signalled nothing for a refused request', async () => {
    const keys = [...windowsStarted].map((id) => id.slice(windowIdPrefix.length));

    // Visibility lags behind: list until two listings a second apart agree. Each listing has its own
    // deadline: on a loaded machine one can be refused and retried for longer than the whole wait,
    // and the wait then polls again rather than giving up after a single listing.
    const list = () =>
      stack.client.withDeadline(Date.now() + 10_000, async () => {
        const found: { id: string; runId: string; type: string }[] = [];
        for await (const wf of stack.client.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` }))
          found.push({ id: wf.workflowId, runId: wf.runId, type: wf.type });
        return found;
      });
    let last: Awaited<ReturnType<typeof list>> | undefined;
    const listed = await eventually(
      async () => {
        const current = await list();
        const settled = last !== undefined && current.length === last.length;
        last = current;
        return settled && current;
      },
      {
        description: 'two visibility listings a second apart that agree',
        timeoutMs: 60_000,
        intervalMs: 1_000,
      },
    );
    // Webhook events start nothing: every run is a window an accepted start opened, the per-target
    // record keyed like it, or the send guard shard of a number a send request named.
    const unexplained = listed.filter(
      ({ id }) => !windowsStarted.has(id) && !keys.some((key) => id.endsWith(key)) && !guardShards.has(id),
    );
    expect(unexplained).toEqual([]);

    // A refused event reached no run: its ID is in no signal of any history (a history holds every
    // signal Temporal took, with no lag). An ID also accepted in another request may be there.
    const refused = new Set([...eventsRefused].filter((id) => !eventsAccepted.has(id)));
    const signalled: string[] = [];
    for (const { id, runId } of listed) signalled.push(...(await signalledEventIds(stack, id, runId)));
    expect(signalled.filter((id) => refused.has(id))).toEqual([]);
    console.log(
      `http fuzz: ${refused.size} refused webhook events, ${signalled.length} signals in ${listed.length} runs`,
    );
  }, 120_000);

  it('answers malformed HTTP below the routes in the same shape', async () => {
    // Requests Node's parser or Fastify's router refuse before any route runs; fast-check cannot
    // send them through node:http, so they go over a raw socket.
    const { port } = new URL(stack.serverUrl!);
    const auth = `Authorization: Bearer ${apiToken}\r\n`;
    const cases: [string, string][] = [
      ['headers over 16 KB', `GET /healthz HTTP/1.1\r\nHost: a\r\nX-Pad: ${'x'.repeat(20_000)}\r\n\r\n`],
      ['a control character in a header', `GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\u0001b\r\n\r\n`],
      ['malformed percent-encoding', `GET /verifications/%E0%A4%A HTTP/1.1\r\nHost: a\r\n${auth}\r\n`],
      [
        'a window ID over 100 characters',
        `GET /verifications/verification-${'a'.repeat(200)} HTTP/1.1\r\nHost: a\r\n${auth}\r\n`,
      ],
      ['an unknown method', `BREW /verifications HTTP/1.1\r\nHost: a\r\n\r\n`],
    ];
    const problems: string[] = [];
    for (const [name, raw] of cases) {
      const answer = await rawExchange(Number(port), raw);
      const problem =
        answer.status >= 500 ? 'a 5xx' : answer.status < 400 ? 'not refused' : errorShapeProblem(answer);
      if (problem) problems.push(`${name}: ${answer.status} ${problem}: ${answer.text.slice(0, 200)}`);
    }
    expect(problems).toEqual([]);
  });
});
