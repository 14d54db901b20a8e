/**
 * Answers from a newer Prelude (unknown statuses, methods, channels, fields) pass through with
 * their values; answers that break the contract become a typed PreludeError, never a crash or a
 * half-typed object. A tiny server plays Prelude, since the sandbox only answers correctly.
 */
import { PreludeClient } from '../../src/prelude';
import { apiKey, failure, phoneTarget, startServer, type TestServer } from './support';

/** What the server answers next, by path: status, raw body, content type. */
let answers: Record<string, { status?: number; body: unknown; type?: string }> = {};
let server: TestServer;
let client: PreludeClient;

beforeAll(async () => {
  server = await startServer((request, response) => {
    const answer = answers[request.url];
    if (!answer) {
      response.writeHead(599);
      response.end();
      return;
    }
    response.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'application/json' });
    response.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
  });
  client = new PreludeClient({ apiKey, baseUrl: server.url, timeoutMs: 2_000 });
});
afterAll(() => server.stop());
beforeEach(() => {
  answers = {};
  server.received.length = 0;
});

const target = phoneTarget('+33612345678');

describe('answers from a newer API', () => {
  it('create: unknown status, method, channels and reason are kept, as are unknown fields', async () => {
    answers['/v2/verification'] = {
      body: {
        id: 'vrf_01jc0t6fwwfgfsq1md24mhyztj',
        status: 'escalated_to_human',
        method: 'carrier_pigeon',
        channels: ['sms', 'pigeon', 'smoke_signal'],
        reason: 'moon_phase',
        risk_factors: ['a_factor_from_2030'],
        silent: { request_url: 'https://silent.example/x', ttl: 30 },
        metadata: { correlation_id: 'c-1', tenant: 'a' },
        encoding: 'GSM-7',
        nested: { deep: [1, { two: 2 }] },
        request_id: 'req-1',
      },
    };
    const created = await client.verification.create({ target });
    expect(created).toEqual(answers['/v2/verification'].body);
    // Typed as open unions: a known value still narrows.
    const status: string = created.status;
    expect(status).toBe('escalated_to_human');
  });

  it('check: an unknown status is kept', async () => {
    answers['/v2/verification/check'] = {
      body: { status: 'expired_by_regulator', id: 'vrf_1', extra: true },
    };
    expect(await client.verification.check({ target, code: '1234' })).toEqual({
      status: 'expired_by_regulator',
      id: 'vrf_1',
      extra: true,
    });
  });

  it('watch: an unknown prediction, risk factors and ack status are kept', async () => {
    answers['/v2/watch/predict'] = {
      body: { id: 'prd_1', prediction: 'inconclusive', risk_factors: ['quantum_noise'], score: 0.3 },
    };
    expect(await client.watch.predict({ target })).toEqual({
      id: 'prd_1',
      prediction: 'inconclusive',
      risk_factors: ['quantum_noise'],
      score: 0.3,
    });
    answers['/v2/watch/feedback'] = { body: { status: 'queued', accepted: 1 } };
    expect(
      await client.watch.sendFeedbacks({ feedbacks: [{ target, type: 'verification.started' }] }),
    ).toEqual({ status: 'queued', accepted: 1 });
  });

  it('notify: new fields of a message and of batch results are kept', async () => {
    const message = {
      id: 'tx_1',
      to: target.value,
      template_id: 'template_1',
      variables: {},
      created_at: '2026-11-22T10:00:00Z',
      expires_at: '2026-11-23T10:00:00Z',
      encoding: 'UCS-2',
      estimated_segment_count: 2,
      channel: 'carrier_pigeon',
    };
    answers['/v2/notify'] = { body: message };
    expect(await client.notify.send({ template_id: 'template_1', to: target.value })).toEqual(message);

    const batch = {
      total_count: 1,
      success_count: 1,
      error_count: 0,
      results: [
        { phone_number: target.value, success: true, message: { id: 'tx_2', locale: 'el-GR' }, cost: 1 },
      ],
      billing: { currency: 'EUR' },
    };
    answers['/v2/notify/batch'] = { body: batch };
    expect(await client.notify.sendBatch({ template_id: 'template_1', to: [target.value] })).toEqual(batch);
  });

  it('sends options the client does not know yet, and open-enum request values, as given', async () => {
    answers['/v2/verification'] = { body: { id: 'vrf_1', status: 'success', method: 'message' } };
    await client.verification.create({
      target,
      signals: { device_platform: 'visionos', new_signal: 'x' },
      options: { preferred_channel: 'line', max_auto_fallbacks: 0, future_option: { a: 1 } },
    });
    expect(JSON.parse(server.received[0]?.raw ?? '{}')).toEqual({
      target,
      signals: { device_platform: 'visionos', new_signal: 'x' },
      options: { preferred_channel: 'line', max_auto_fallbacks: 0, future_option: { a: 1 } },
    });
  });
});

describe('a verification record from a newer API', () => {
  it('keeps its checks whatever its attempts say, and gives the triggers it reads as they are', async () => {
    const id = 'vrf_01jc0t6fwwfgfsq1md24mhyztj';
    const events = [
      { type: 'create', create: { created_at: '2026-01-01T00:00:00Z' } },
      { type: 'attempt', attempt: { trigger: 'initial', channel: 'sms' } },
      // An attempt's payload not as documented, and a field named like the trigger on another event.
      { type: 'attempt', attempt: 'sent-by-carrier-pigeon' },
      { type: 'signals', trigger: { source: 'sdk' } },
      { type: 'check', check: { is_valid: false } },
      { type: 'escalation', escalation: { to: 'human' } },
    ];
    answers[`/v2/verification/phone/history/${id}`] = {
      body: { id, status: 'sent', lifecycle: { events } },
    };
    const record = await client.verification.history(id);
    expect(record.lifecycle.events.filter((event) => event.type === 'check')).toEqual([events[4]]);
    expect(record.lifecycle.events.map((event) => event.attempt?.trigger ?? event.trigger)).toEqual([
      undefined,
      'initial',
      undefined,
      { source: 'sdk' },
      undefined,
      undefined,
    ]);
  });
});

describe('answers that break the contract', () => {
  const cases: [string, string, unknown, () => Promise<unknown>][] = [
    [
      'create without id',
      '/v2/verification',
      { status: 'success', method: 'message' },
      () => client.verification.create({ target }),
    ],
    [
      'create with a numeric id',
      '/v2/verification',
      { id: 42, status: 'success', method: 'message' },
      () => client.verification.create({ target }),
    ],
    [
      'create with channels not a list',
      '/v2/verification',
      { id: 'v', status: 'success', method: 'message', channels: 'sms' },
      () => client.verification.create({ target }),
    ],
    [
      'check without status',
      '/v2/verification/check',
      { id: 'vrf_1' },
      () => client.verification.check({ target, code: '1234' }),
    ],
    [
      'predict without prediction',
      '/v2/watch/predict',
      { id: 'prd_1' },
      () => client.watch.predict({ target }),
    ],
    [
      'notify without created_at',
      '/v2/notify',
      { id: 'tx_1', to: '+1', template_id: 't', expires_at: 'x' },
      () => client.notify.send({ template_id: 't', to: target.value }),
    ],
    [
      'batch with results not a list',
      '/v2/notify/batch',
      { total_count: 1, success_count: 1, error_count: 0, results: {} },
      () => client.notify.sendBatch({ template_id: 't', to: [target.value] }),
    ],
    ['JSON null', '/v2/verification', null, () => client.verification.create({ target })],
    ['a JSON list', '/v2/verification', [], () => client.verification.create({ target })],
    [
      'an HTML page',
      '/v2/verification',
      '<html>maintenance</html>',
      () => client.verification.create({ target }),
    ],
    [
      'truncated JSON',
      '/v2/verification',
      '{"id":"vrf_1","status":',
      () => client.verification.create({ target }),
    ],
    [
      'an empty body',
      '/v2/watch/event',
      '',
      () => client.watch.dispatchEvents({ events: [{ target, label: 'x', confidence: 'low' }] }),
    ],
  ];

  it.each(cases)('%s → invalid_response, not retryable', async (_name, path, body, call) => {
    answers[path] = {
      body,
      type: typeof body === 'string' && body.startsWith('<') ? 'text/html' : undefined,
    };
    const error = await failure(call());
    expect(error).toMatchObject({
      kind: 'invalid_response',
      code: 'invalid_response',
      status: 200,
      retryable: false,
    });
    expect(error.message).toContain(path);
  });

  it('a 2xx other than 200 is read like 200', async () => {
    answers['/v2/verification'] = {
      status: 201,
      body: { id: 'vrf_1', status: 'success', method: 'message' },
    };
    expect((await client.verification.create({ target })).id).toBe('vrf_1');
  });
});
