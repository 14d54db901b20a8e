import axios, { type AxiosInstance } from 'axios';
import type { z } from 'zod';
import { describeZodError } from '../issues';
import { errorFromResponse, errorFromTransport, PreludeError } from './errors';
import {
  checkVerificationRequestSchema,
  checkVerificationResponseSchema,
  createVerificationRequestSchema,
  createVerificationResponseSchema,
  eventsRequestSchema,
  feedbackRequestSchema,
  notifyBatchRequestSchema,
  notifyBatchResponseSchema,
  notifySendRequestSchema,
  notifySendResponseSchema,
  predictRequestSchema,
  predictResponseSchema,
  verificationHistorySchema,
  watchAckSchema,
  type VerificationHistory,
} from './schemas';

/** Options of one call. */
export interface RequestOptions {
  /** Aborts the call (an activity passes its cancellation signal). */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
}

/** Options of {@link PreludeClient}. */
export interface PreludeClientOptions {
  apiKey: string;
  /** Default `https://api.prelude.dev`; the sandbox's URL offline. */
  baseUrl?: string;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  userAgent?: string;
}

/**
 * Prelude's v2 API over HTTP: Verify, Watch and Notify. It never retries on its own (Temporal
 * retries activities, and a retried create can send a second code), and every failure is a
 * {@link PreludeError}.
 */
export class PreludeClient {
  readonly #http: AxiosInstance;
  readonly #timeoutMs: number;
  /** Only to mask it in error texts the server sends back. */
  readonly #apiKey: string;

  /** Each request's timeout, unless a call gives its own: how long a call in flight can last. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  constructor(options: PreludeClientOptions) {
    if (!options.apiKey) {
      throw new PreludeError({
        kind: 'auth',
        code: 'missing_api_key',
        message: 'a Prelude API key is required',
      });
    }
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#apiKey = options.apiKey;
    this.#http = axios.create({
      baseURL: (options.baseUrl ?? 'https://api.prelude.dev').replace(/\/+$/, ''),
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        accept: 'application/json',
        'content-type': 'application/json',
        'user-agent': options.userAgent ?? 'prelude-temporal',
      },
      // Every status is an answer to map, not an exception to unwrap.
      validateStatus: () => true,
      // Prelude's errors are small JSON bodies; a runaway answer is not worth buffering.
      maxContentLength: 1 << 20,
      // A redirect is answered as an error, not followed: following it would send the request, key
      // included, to an address the configuration did not name. Without the redirect layer each call
      // also costs about a fifth less CPU (measured on the sandbox's predict).
      maxRedirects: 0,
    });
  }

  /** Verify: create a verification, or a retry in the target's open window. */
  readonly verification = {
    create: this.#endpoint(
      '/v2/verification',
      createVerificationRequestSchema,
      createVerificationResponseSchema,
    ),
    check: this.#endpoint(
      '/v2/verification/check',
      checkVerificationRequestSchema,
      checkVerificationResponseSchema,
    ),
    /**
     * The History API's record of a phone verification, by the create's `id`: how many checks
     * Prelude judged, and whether one was right. Read-only, so safe to repeat.
     */
    history: (id: string, options: RequestOptions = {}): Promise<VerificationHistory> =>
      this.#send(
        'get',
        `/v2/verification/phone/history/${encodeURIComponent(id)}`,
        verificationHistorySchema,
        undefined,
        options,
      ),
  };

  /** Watch: fraud prediction and the signals that train it. */
  readonly watch = {
    predict: this.#endpoint('/v2/watch/predict', predictRequestSchema, predictResponseSchema),
    sendFeedbacks: this.#endpoint('/v2/watch/feedback', feedbackRequestSchema, watchAckSchema),
    dispatchEvents: this.#endpoint('/v2/watch/event', eventsRequestSchema, watchAckSchema),
  };

  /** Notify: templated messages. */
  readonly notify = {
    send: this.#endpoint('/v2/notify', notifySendRequestSchema, notifySendResponseSchema),
    sendBatch: this.#endpoint('/v2/notify/batch', notifyBatchRequestSchema, notifyBatchResponseSchema),
  };

  #endpoint<Req extends z.ZodType, Res extends z.ZodType>(
    path: string,
    requestSchema: Req,
    responseSchema: Res,
  ) {
    return (body: z.input<Req>, options: RequestOptions = {}): Promise<z.output<Res>> =>
      this.#post(path, requestSchema, responseSchema, body, options);
  }

  async #post<Req extends z.ZodType, Res extends z.ZodType>(
    path: string,
    requestSchema: Req,
    responseSchema: Res,
    body: z.input<Req>,
    options: RequestOptions,
  ): Promise<z.output<Res>> {
    const request = requestSchema.safeParse(body);
    if (!request.success) {
      throw new PreludeError({
        kind: 'invalid_request',
        code: 'invalid_request',
        message: `${path}: ${describeZodError(request.error)}`,
      });
    }
    return this.#send('post', path, responseSchema, request.data, options);
  }

  /** One request with one deadline, its answer mapped to the schema or to a {@link PreludeError}. */
  async #send<Res extends z.ZodType>(
    method: 'get' | 'post',
    path: string,
    responseSchema: Res,
    body: unknown,
    options: RequestOptions,
  ): Promise<z.output<Res>> {
    // One deadline for the whole call, body included: the transport's own timeout only notices a
    // silent socket, so a server trickling bytes (or stalling after its headers) would hold the
    // call past it, or end it as a network error.
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = new AbortController();
    const timer =
      Number.isFinite(timeoutMs) && timeoutMs > 0 ? setTimeout(() => deadline.abort(), timeoutMs) : undefined;
    // The caller's signal aborts the call too, passed on by a listener removed when the call ends:
    // AbortSignal.any costs ~8 µs more a call, and keeps what it joins until they are collected.
    const outer = options.signal;
    const cancel = () => deadline.abort(outer?.reason);
    if (outer?.aborted) cancel();
    outer?.addEventListener('abort', cancel, { once: true });
    const signal = deadline.signal;
    let response;
    try {
      response =
        method === 'post'
          ? await this.#http.post(path, body, { signal })
          : await this.#http.get(path, { signal });
    } catch (error) {
      throw errorFromTransport(error, options.signal, deadline.signal.aborted);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', cancel);
    }
    if (response.status < 200 || response.status >= 300) {
      throw errorFromResponse(
        response.status,
        response.data,
        response.headers as Record<string, unknown>,
        this.#apiKey,
      );
    }
    const answer = responseSchema.safeParse(response.data);
    if (!answer.success) {
      throw new PreludeError({
        kind: 'invalid_response',
        code: 'invalid_response',
        status: response.status,
        message: `${path}: unexpected answer: ${describeZodError(answer.error, 'answer')}`,
      });
    }
    return answer.data;
  }
}
