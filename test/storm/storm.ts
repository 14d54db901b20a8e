/**
 * Webhook storm: signed `verify.delivery_status` events for real verification windows, sent through
 * `POST /webhooks/prelude` as Prelude would under load — duplicates (same event ID, same bytes), any
 * order, and forged or tampered events mixed in — then checked against the windows themselves.
 * Prints one JSON line and exits non-zero when any genuine event was not applied exactly once or
 * any forged one was not refused 401 and applied to nothing.
 *
 *   tsc -p tsconfig.json && node dist/test/storm/storm.js
 *
 * STORM_EVENTS (default 10000) requests, of which STORM_DUPLICATES (0.3) are repeats and STORM_FORGED
 * (0.05) forged; STORM_WINDOWS (50) windows; STORM_CONCURRENCY (32) requests in flight; STORM_SEED
 * (random) for the mix and the order; STORM_TIMEOUT_SECONDS (600) for the whole run. Uses
 * TEMPORAL_ADDRESS when set, otherwise starts a headless dev server. Traffic goes to 127.0.0.1 only.
 *
 * How "applied exactly once" is counted: every genuine event names an attempt of its own, so once
 * applied it is exactly one attempt record of its window carrying its attempt ID and status. Every
 * delivery of it is answered 200 `accepted` / `applied` (the route signals each one; the window
 * ignores an event ID it has applied), so its window's history holds at least one `deliveryStatus`
 * signal with its event ID per 200, and at most one per request sent; no other window's history
 * holds one. A forged event is answered 401 and is in no history. And no workflow runs per event:
 * the stack's task queue holds the N windows and their N limits entities, nothing else.
 */
import { constants, generateKeyPairSync, randomBytes, randomInt, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultPayloadConverter, type DataConverter, type Payload } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { cancelVerificationById, getVerificationById, startVerification } from '../../src/client';
import { startDevServer } from '../../src/devserver';
import { guardShardOf } from '../../src/guards/check';
import { writeWorkflowBundle } from '../../src/worker';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';
import { loadSection } from '../../temporal.config';
import { envSection, fraction, setting, wholeNumber } from '../../src/env';
import {
  deliveryStatusSignal,
  targetLimitsIdPrefix,
  windowIdPrefix,
  type DeliveryStatusReport,
} from '../../workflows/messages';

/** Options of {@link runStorm}. */
export interface StormOptions {
  /** Requests sent, duplicates and forgeries included. */
  events: number;
  /** Share of requests that repeat a genuine event already in the mix (same ID, same bytes). */
  duplicateShare: number;
  /** Share of requests that are forged or tampered. */
  forgedShare: number;
  /** Verification windows the events are spread over. */
  windows: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Seed of the mix and the order. */
  seed: number;
  /** Deadline of the whole run once the stack is up, windows opened and events signed. */
  timeoutMs: number;
  /** Progress lines (the script writes them to stderr). */
  progress?: (line: string) => void;
}

/** What {@link runStorm} found; `wrong` counts every failed expectation, listed in `problems`. */
export interface StormReport {
  events: number;
  genuine: number;
  duplicates: number;
  forged: number;
  applied_once: number;
  wrong: number;
  /** Requests answered per second during the send phase. */
  events_per_second: number;
  /** Genuine events applied per second, from the first request until the last was in its window. */
  applied_per_second: number;
  send_seconds: number;
  applied_seconds: number;
  windows: number;
  concurrency: number;
  seed: number;
  http_status: Record<string, number>;
  /** 5xx or network errors answered by redelivering, as Prelude does. */
  redeliveries: number;
  /** `deliveryStatus` signals of the storm's events in the windows' histories. */
  signals: number;
  /** Signals of an event its window had already applied (redeliveries): the window ignored them. */
  repeated_signals: number;
  /** Workflow runs on the stack's task queue: the windows, their limits entities and guard shards, none per event. */
  executions: number;
  /** Distinct send guard shards the windows' sends passed: entities shared by a country's sends. */
  guard_shards: number;
  /** Window reads (queries) that failed under load and were tried again. */
  read_retries: number;
  /** The first problems found (at most 20). */
  problems: string[];
}

/** Defaults of the full run (`npm run storm`). */
export const defaultStormOptions: StormOptions = {
  events: 10_000,
  duplicateShare: 0.3,
  forgedShare: 0.05,
  windows: 50,
  concurrency: 32,
  seed: randomInt(2 ** 31),
  timeoutMs: 600_000,
};

type ForgeryKind = 'wrong_key' | 'tampered' | 'garbage_signature' | 'borrowed_signature' | 'unsigned';
const forgeryKinds: ForgeryKind[] = [
  'wrong_key',
  'tampered',
  'garbage_signature',
  'borrowed_signature',
  'unsigned',
];
const statuses = ['submitted', 'in_transit', 'delivered'] as const;

interface Window {
  id: string;
  targetKey: string;
  verificationId: string;
  /** The send guard shard that counted the window's send (shared by every number of its shard). */
  guardShard: string;
}

interface StormEvent {
  eventId: string;
  attemptId: string;
  status: string;
  window: Window;
  body: string;
  signature?: string;
}

interface Delivery {
  event: StormEvent;
  forged?: ForgeryKind;
  /** Requests made for this delivery (more than one after a 5xx or no answer). */
  requests: number;
  status?: number;
  answer?: { status?: string; event_id?: string; disposition?: string; code?: string };
}

/**
 * Runs a storm against a stack of its own (sandbox, worker and HTTP service on the dev server named
 * by TEMPORAL_ADDRESS, wired as the test suites wire them) and reports what it found.
 */
export async function runStorm(overrides: Partial<StormOptions> = {}): Promise<StormReport> {
  const options = { ...defaultStormOptions, ...overrides };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stack = await startStack({
    withServer: true,
    sandboxEnv: {
      SANDBOX_WEBHOOK_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
    // Windows outlive the storm; no fallback resend muddles the attempt count.
    policy: { windowSeconds: 3_600, fallbackChannels: [], deliveryTimeoutSeconds: 0 },
  });
  try {
    return await storm(stack, privateKey, options);
  } finally {
    await stack.stop();
  }
}

async function storm(stack: TestStack, privateKey: KeyObject, options: StormOptions): Promise<StormReport> {
  const progress = options.progress ?? (() => undefined);
  const random = prng(options.seed);
  const problems: string[] = [];
  const problem = (text: string) => problems.push(text);

  const windows = await openWindows(stack, options.windows, options.concurrency);
  progress(`opened ${windows.length} windows`);

  const forgedCount = Math.round(options.events * options.forgedShare);
  const duplicateCount = Math.round(options.events * options.duplicateShare);
  const genuineCount = options.events - forgedCount - duplicateCount;
  if (genuineCount < 1) throw new Error('the mix leaves no genuine event');
  const run = randomBytes(4).toString('hex');
  const signer = (key: KeyObject) => (body: string) =>
    `rsassa-pss-sha256=${sign('sha256', Buffer.from(body), {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    }).toString('base64')}`;
  const signGenuine = signer(privateKey);
  const signAttacker = signer(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  const startedAt = Date.now();
  const makeEvent = (kind: 'storm' | 'forged', n: number): StormEvent => {
    const window = windows[n % windows.length]!;
    const status = statuses[Math.floor(random() * statuses.length)]!;
    const eventId = `evt_${kind}${run}_${n}`;
    const attemptId = `att_${kind}${run}_${n}`;
    const body = JSON.stringify({
      id: eventId,
      type: 'verify.delivery_status',
      created_at: new Date(startedAt + n).toISOString(),
      payload: {
        id: `dls_${kind}${run}_${n}`,
        attempt_id: attemptId,
        verification_id: window.verificationId,
        status,
        time: new Date(startedAt + n).toISOString(),
        price: { amount: 0.009, currency: 'EUR' },
        metadata: { correlation_id: window.id },
      },
    });
    return { eventId, attemptId, status, window, body };
  };

  const genuine = Array.from({ length: genuineCount }, (_, n) => {
    const event = makeEvent('storm', n);
    return { ...event, signature: signGenuine(event.body) };
  });
  const deliveries: Delivery[] = genuine.map((event) => ({ event, requests: 0 }));
  for (let n = 0; n < duplicateCount; n++) {
    deliveries.push({ event: genuine[Math.floor(random() * genuine.length)]!, requests: 0 });
  }
  const forged: Delivery[] = [];
  for (let n = 0; n < forgedCount; n++) {
    const kind = forgeryKinds[n % forgeryKinds.length]!;
    const event = makeEvent('forged', n);
    forged.push({
      event: forge(event, kind, signGenuine, signAttacker, genuine),
      forged: kind,
      requests: 0,
    });
  }
  deliveries.push(...forged);
  shuffle(deliveries, random);
  progress(
    `sending ${deliveries.length} events (${genuineCount} genuine, ${duplicateCount} duplicates, ${forgedCount} forged), ${options.concurrency} in flight`,
  );

  const deadline = Date.now() + options.timeoutMs;
  const url = `${stack.serverUrl}/webhooks/prelude`;
  let redeliveries = 0;
  const sendStart = performance.now();
  await inParallel(deliveries, options.concurrency, async (delivery) => {
    for (let attempt = 1; ; attempt++) {
      delivery.requests += 1;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(delivery.event.signature ? { 'x-webhook-signature': delivery.event.signature } : {}),
          },
          body: delivery.event.body,
          signal: AbortSignal.timeout(Math.max(1, Math.min(15_000, deadline - Date.now()))),
        });
        delivery.status = response.status;
        delivery.answer = (await response.json().catch(() => undefined)) as Delivery['answer'];
        if (response.status < 500) return;
      } catch {
        delivery.status = undefined;
      }
      // Prelude redelivers until it hears 200; a few quick tries stand in for its backoff.
      if (attempt >= 5 || Date.now() > deadline) return;
      redeliveries += 1;
      await sleep(100 * attempt);
    }
  });
  const sendSeconds = (performance.now() - sendStart) / 1000;
  progress(`sent in ${sendSeconds.toFixed(1)} s; waiting for the windows`);

  const httpStatus: Record<string, number> = {};
  for (const d of deliveries) {
    const key = String(d.status ?? 'no_answer');
    httpStatus[key] = (httpStatus[key] ?? 0) + 1;
  }

  // Every delivery of a genuine event is answered 200 `accepted` / `applied`; every forged one 401.
  const answered = new Map<string, { applied: number; requests: number }>();
  for (const d of deliveries) {
    const { eventId } = d.event;
    if (d.forged) {
      if (d.status !== 401 || d.answer?.code !== 'invalid_signature')
        problem(`forged (${d.forged}) ${eventId} answered ${d.status} ${JSON.stringify(d.answer)}`);
      continue;
    }
    const tally = answered.get(eventId) ?? { applied: 0, requests: 0 };
    tally.requests += d.requests;
    if (
      d.status !== 200 ||
      d.answer?.event_id !== eventId ||
      d.answer.status !== 'accepted' ||
      d.answer.disposition !== 'applied'
    )
      problem(`genuine ${eventId} answered ${d.status} ${JSON.stringify(d.answer)}`);
    else tally.applied += 1;
    answered.set(eventId, tally);
  }

  // Wait until every genuine event is in its window (or the deadline passes), re-reading only the
  // windows still missing some; a read that fails under load is tried again on the next round.
  const byWindow = new Map(windows.map((w) => [w.id, genuine.filter((e) => e.window.id === w.id)]));
  const waiting = new Set(windows);
  let readFailures = 0;
  while (waiting.size > 0 && Date.now() < deadline) {
    await inParallel([...waiting], 8, async (window) => {
      const attempts = await readWindow(stack, window).catch(() => undefined);
      if (!attempts) readFailures += 1;
      else if (complete(attempts, byWindow.get(window.id) ?? [])) waiting.delete(window);
    });
    if (waiting.size > 0) await sleep(1_000);
  }
  const appliedSeconds = (performance.now() - sendStart) / 1000;
  progress(`windows settled after ${appliedSeconds.toFixed(1)} s; checking`);
  // The final reading, after the last event was in: nothing may have been added since.
  const states = new Map<string, Attempts>();
  await inParallel(windows, 8, async (window) => {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const attempts = await readWindow(stack, window).catch(() => undefined);
      if (attempts) {
        states.set(window.id, attempts);
        return;
      }
      readFailures += 1;
    }
    problem(`window ${window.id} could not be read`);
  });

  // Per window: its storm events' signals in its history, and the distinct events it applied.
  const signals = await signalsByWindow(stack, windows, options.concurrency);
  let signalCount = 0;
  let repeatedSignals = 0;
  const applied = new Set<string>();
  for (const window of windows) {
    const records = new Map<string, { count: number; status?: string }>();
    for (const attempt of states.get(window.id) ?? []) {
      if (!attempt.attemptId) continue;
      const record = records.get(attempt.attemptId) ?? { count: 0, status: attempt.deliveryStatus };
      record.count += 1;
      records.set(attempt.attemptId, record);
    }
    const delivered = signals.get(window.id) ?? new Map<string, number>();
    const own = new Set<string>();
    const ownEvents = new Set<string>();
    for (const event of byWindow.get(window.id) ?? []) {
      own.add(event.attemptId);
      ownEvents.add(event.eventId);
      const record = records.get(event.attemptId);
      const signalled = delivered.get(event.eventId) ?? 0;
      signalCount += signalled;
      if (signalled > 1) repeatedSignals += signalled - 1;
      const { applied: answers, requests } = answered.get(event.eventId) ?? { applied: 0, requests: 0 };
      if (!record) problem(`genuine ${event.eventId} is not in window ${window.id}`);
      else if (record.count !== 1) problem(`genuine ${event.eventId} recorded ${record.count} times`);
      else if (record.status !== event.status)
        problem(`genuine ${event.eventId} recorded as ${record.status}, sent as ${event.status}`);
      else if (signalled === 0) problem(`genuine ${event.eventId} recorded without a signal`);
      // Each 200 was answered once Temporal held its signal; a request can signal at most once.
      else if (signalled < answers)
        problem(`genuine ${event.eventId} answered 200 ${answers} times, signalled ${signalled} times`);
      else if (signalled > requests)
        problem(`genuine ${event.eventId} signalled ${signalled} times in ${requests} requests`);
      else applied.add(event.eventId);
    }
    for (const [attemptId] of records) {
      if (attemptId.startsWith(`att_forged${run}`)) problem(`forged ${attemptId} applied to ${window.id}`);
      else if (attemptId.startsWith(`att_storm${run}`) && !own.has(attemptId))
        problem(`${attemptId} applied to the wrong window ${window.id}`);
    }
    // Besides its own, a window hears only the sandbox's webhooks for it.
    for (const [eventId] of delivered) {
      if (eventId.startsWith(`evt_forged${run}`)) problem(`forged ${eventId} signalled to ${window.id}`);
      else if (eventId.startsWith(`evt_storm${run}`) && !ownEvents.has(eventId))
        problem(`${eventId} signalled to the wrong window ${window.id}`);
    }
  }

  // No workflow runs per event: the task queue holds each window, its target's limits entity and the
  // send guard shards the sends passed (visibility lags: list until it agrees, or the deadline passes).
  const expected = new Set(
    windows.flatMap((w) => [w.id, `${targetLimitsIdPrefix}${w.targetKey}`, w.guardShard]),
  );
  let runs: { id: string; runId: string }[] = [];
  const until = Math.max(deadline, Date.now() + 20_000);
  for (;;) {
    runs = await listRuns(stack).catch(() => runs);
    const ids = new Set(runs.map((r) => r.id));
    if (runs.length === expected.size && [...expected].every((id) => ids.has(id))) break;
    if (Date.now() > until) {
      const extra = [...ids].filter((id) => !expected.has(id));
      const missing = [...expected].filter((id) => !ids.has(id));
      problem(
        `${runs.length} runs on the task queue, expected ${expected.size} (${windows.length} windows and ` +
          `their limits entities, and guard shards); not expected: ${extra.slice(0, 5).join(', ') || 'none'}; ` +
          `missing: ${missing.slice(0, 5).join(', ') || 'none'}`,
      );
      break;
    }
    await sleep(500);
  }

  await inParallel(windows, options.concurrency, async (window) => {
    await cancelVerificationById(stack.client, window.id, stack.options).catch(() => undefined);
  });

  const round = (n: number) => Number(n.toFixed(1));
  return {
    events: deliveries.length,
    genuine: genuineCount,
    duplicates: duplicateCount,
    forged: forgedCount,
    applied_once: applied.size,
    wrong: problems.length,
    events_per_second: round(deliveries.length / sendSeconds),
    applied_per_second: round(genuineCount / appliedSeconds),
    send_seconds: round(sendSeconds),
    applied_seconds: round(appliedSeconds),
    windows: windows.length,
    concurrency: options.concurrency,
    seed: options.seed,
    http_status: httpStatus,
    redeliveries,
    signals: signalCount,
    repeated_signals: repeatedSignals,
    executions: runs.length,
    guard_shards: new Set(windows.map((w) => w.guardShard)).size,
    read_retries: readFailures,
    problems: problems.slice(0, 20),
  };
}

/** A forged delivery of `event`: refused by the signature check, each kind in its own way. */
function forge(
  event: StormEvent,
  kind: ForgeryKind,
  signGenuine: (body: string) => string,
  signAttacker: (body: string) => string,
  genuine: StormEvent[],
): StormEvent {
  switch (kind) {
    case 'wrong_key':
      return { ...event, signature: signAttacker(event.body) };
    case 'tampered': {
      // Signed by the right key, then changed on the way.
      const signature = signGenuine(event.body);
      const body = event.body.replace(`"status":"${event.status}"`, '"status":"undeliverable"');
      return { ...event, status: 'undeliverable', body, signature };
    }
    case 'garbage_signature':
      return { ...event, signature: `rsassa-pss-sha256=${randomBytes(256).toString('base64')}` };
    case 'borrowed_signature':
      return { ...event, signature: genuine[0]!.signature };
    case 'unsigned':
      return { ...event, signature: undefined };
  }
}

/** Opens `count` windows over the helpers and keeps their real Prelude verification IDs. */
async function openWindows(stack: TestStack, count: number, concurrency: number): Promise<Window[]> {
  const windows: Window[] = [];
  await inParallel(
    Array.from({ length: count }, (_, n) => n),
    Math.min(concurrency, 8),
    async () => {
      const target = uniquePhoneTarget();
      const result = await startVerification(stack.client, { target }, stack.options);
      if (result.status !== 'success' || !result.verificationId)
        throw new Error(`a window did not open: ${result.status}`);
      windows.push({
        id: result.windowId,
        targetKey: result.windowId.slice(windowIdPrefix.length),
        verificationId: result.verificationId,
        guardShard: guardShardOf(target.value, stack.options).workflowId,
      });
    },
  );
  return windows;
}

type Attempts = { attemptId?: string; deliveryStatus?: string }[];

async function readWindow(stack: TestStack, window: Window): Promise<Attempts> {
  return (await getVerificationById(stack.client, window.id, stack.options)).attempts;
}

/** Whether every event of a window has its attempt record. */
function complete(attempts: Attempts, events: StormEvent[]): boolean {
  const named = new Set(attempts.map((a) => a.attemptId));
  return events.every((e) => named.has(e.attemptId));
}

/** Every run on the stack's task queue, closed ones included (as visibility has them so far). */
async function listRuns(stack: TestStack): Promise<{ id: string; runId: string }[]> {
  return stack.client.withDeadline(Date.now() + 10_000, async () => {
    const runs: { id: string; runId: string }[] = [];
    for await (const wf of stack.client.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` }))
      runs.push({ id: wf.workflowId, runId: wf.runId });
    return runs;
  });
}

/** Per window, how many `deliveryStatus` signals its history holds for each event ID. */
async function signalsByWindow(
  stack: TestStack,
  windows: Window[],
  concurrency: number,
): Promise<Map<string, Map<string, number>>> {
  const result = new Map<string, Map<string, number>>();
  await inParallel(windows, concurrency, async (window) => {
    const history = await stack.client.workflow.getHandle(window.id).fetchHistory();
    const counts = new Map<string, number>();
    for (const event of history.events ?? []) {
      const signal = event.workflowExecutionSignaledEventAttributes;
      if (signal?.signalName !== deliveryStatusSignal.name) continue;
      const [payload] = await decode(stack.dataConverter, (signal.input?.payloads ?? []) as Payload[]);
      if (!payload) continue;
      const report = defaultPayloadConverter.fromPayload<DeliveryStatusReport>(payload);
      counts.set(report.eventId, (counts.get(report.eventId) ?? 0) + 1);
    }
    result.set(window.id, counts);
  });
  return result;
}

/** Undoes the payload codecs (the encryption), last applied first undone. */
async function decode(converter: DataConverter, payloads: Payload[]): Promise<Payload[]> {
  let decoded = payloads;
  for (const codec of [...(converter.payloadCodecs ?? [])].reverse()) decoded = await codec.decode(decoded);
  return decoded;
}

/** Runs `task` over `items`, `concurrency` at a time. */
async function inParallel<T>(
  items: T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/** A small seeded generator (mulberry32), so a run's mix and order can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** The storm's knobs, read like the configuration (`loadSection`); unset, the defaults above. */
const stormEnv = envSection({
  events: setting('STORM_EVENTS', wholeNumber(1, 10_000_000), defaultStormOptions.events),
  duplicateShare: setting('STORM_DUPLICATES', fraction, defaultStormOptions.duplicateShare),
  forgedShare: setting('STORM_FORGED', fraction, defaultStormOptions.forgedShare),
  windows: setting('STORM_WINDOWS', wholeNumber(1, 100_000), defaultStormOptions.windows),
  concurrency: setting('STORM_CONCURRENCY', wholeNumber(1, 1_000), defaultStormOptions.concurrency),
  seed: setting('STORM_SEED', wholeNumber(0, 2 ** 31), defaultStormOptions.seed),
  timeoutSeconds: setting(
    'STORM_TIMEOUT_SECONDS',
    wholeNumber(1, 86_400),
    defaultStormOptions.timeoutMs / 1000,
  ),
});

async function main(): Promise<void> {
  const { timeoutSeconds, ...knobs } = loadSection(stormEnv);
  const options: StormOptions = {
    ...knobs,
    timeoutMs: timeoutSeconds * 1000,
    progress: (line) => console.error(`[storm] ${line}`),
  };
  // However the run goes, the process ends: the storm's deadline plus time to start and stop.
  setTimeout(() => {
    console.error('[storm] gave up: the run outlived its deadline');
    process.exit(2);
  }, options.timeoutMs + 180_000).unref();

  // The worker's lifecycle lines would drown the one line this prints.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const devServer = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ uiPort: false });
  try {
    // The stack reads both from the environment, as the test suites' global setup provides them.
    if (devServer) process.env.TEMPORAL_ADDRESS = devServer.address;
    process.env.TEST_WORKFLOW_BUNDLE ??= await writeWorkflowBundle(
      join(mkdtempSync(join(tmpdir(), 'prelude-storm-')), 'workflows.js'),
    );
    const report = await runStorm(options);
    console.log(JSON.stringify(report));
    if (report.wrong > 0 || report.applied_once !== report.genuine) process.exitCode = 1;
  } finally {
    await devServer?.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
