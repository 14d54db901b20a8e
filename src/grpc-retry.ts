/**
 * Retries of a client's gRPC calls, in place of the SDK's `makeGrpcRetryInterceptor`, making the
 * same decisions (a `GrpcRetryOptions`, such as `defaultGrpcRetryOptions()`) but safe when Temporal
 * is unreachable or the connection is closed:
 *
 * - The SDK's interceptor ends a call by handing the response to a callback it saves only when its
 *   first attempt delivers one. When that attempt cannot even be created (the call is made on a
 *   connection already closed) it throws "savedMessageNext is not a function" from a gRPC callback,
 *   an uncaught exception that ends the process. Here a call's caller gets the last attempt's
 *   metadata and response only if that attempt delivered them, then its status.
 * - The SDK sends a failed call again from a timer; when the connection was closed before the timer
 *   fired, grpc-js throws "Channel has been shut down" from that timer. Here an attempt that cannot
 *   be created ends the call as CANCELLED, with grpc-js's message: its caller gets the error.
 * - A call its caller cancels (an abort signal) while it waits to be retried ends then, as CANCELLED,
 *   rather than being sent again.
 *
 * Temporal's services are unary: a call is a metadata, one request and one response, which can be
 * sent again as they are. Streaming calls are passed through, never retried.
 */
import {
  InterceptingCall,
  Metadata,
  status,
  type InterceptingListener,
  type Interceptor,
  type InterceptorOptions,
  type NextCall,
  type StatusObject,
} from '@grpc/grpc-js';
import type { GrpcRetryOptions } from '@temporalio/client';

/** A call as an interceptor sees the one below it (grpc-js's InterceptingCallInterface). */
type Call = ReturnType<NextCall>;

/** What an attempt delivered before its status, held until it is known to be the last. */
interface Delivered {
  metadata?: Metadata;
  messages: unknown[];
}

/** An interceptor that retries a failed unary call as `retry` decides. */
export function retryInterceptor(retry: GrpcRetryOptions): Interceptor {
  return (options, nextCall) => {
    const { requestStream, responseStream } = options.method_definition;
    if (requestStream || responseStream) return new InterceptingCall(callOrCancelled(nextCall, options));
    return new InterceptingCall(new RetriedCall(retry, options, nextCall));
  };
}

/** The call below, or, when grpc-js cannot create it (a closed channel), one that ends CANCELLED. */
function callOrCancelled(nextCall: NextCall, options: InterceptorOptions): Call {
  try {
    return nextCall(options);
  } catch (error) {
    return new CancelledCall(cancelled(error));
  }
}

function cancelled(error: unknown): StatusObject {
  const details = error instanceof Error ? error.message : String(error);
  return { code: status.CANCELLED, details, metadata: new Metadata() };
}

/** A call that could not be created: it reports its status once started, on the next tick. */
class CancelledCall implements Call {
  constructor(private readonly status: StatusObject) {}

  start(_metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    process.nextTick(() => listener?.onReceiveStatus?.(this.status));
  }
  sendMessageWithContext(): void {}
  sendMessage(): void {}
  startRead(): void {}
  halfClose(): void {}
  cancelWithStatus(): void {}
  getPeer(): string {
    return '';
  }
  getAuthContext(): null {
    return null;
  }
}

/**
 * A unary call sent as attempts: the caller's metadata and request are kept, and each attempt is a
 * call of its own below this interceptor. What an attempt delivers reaches the caller only once the
 * attempt is known to be the last: it answered, failed in a way not retried, or was cancelled.
 */
class RetriedCall implements Call {
  private metadata = new Metadata();
  private listener: Partial<InterceptingListener> = {};
  private request: unknown;
  private attempt = 0;
  private current: Call | undefined;
  private timer: NodeJS.Timeout | undefined;
  private cancelledWith: StatusObject | undefined;
  private ended = false;

  constructor(
    private readonly retry: GrpcRetryOptions,
    private readonly options: InterceptorOptions,
    private readonly nextCall: NextCall,
  ) {}

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    this.metadata = metadata;
    this.listener = listener ?? {};
  }

  sendMessageWithContext(_context: unknown, message: unknown): void {
    this.request = message;
  }

  sendMessage(message: unknown): void {
    this.request = message;
  }

  /** The request is complete: the first attempt goes out. */
  halfClose(): void {
    this.send();
  }

  /** Each attempt reads its own response (grpc-js's unary calls start reading themselves). */
  startRead(): void {}

  cancelWithStatus(code: status, details: string): void {
    if (this.ended) return;
    this.cancelledWith = { code, details, metadata: new Metadata() };
    if (this.current) {
      // Its status, when it comes, ends the call.
      this.current.cancelWithStatus(code, details);
    } else {
      clearTimeout(this.timer);
      this.end(this.cancelledWith);
    }
  }

  getPeer(): string {
    return this.current?.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<Call['getAuthContext']> {
    return this.current?.getAuthContext() ?? null;
  }

  private send(): void {
    this.timer = undefined;
    if (this.ended) return;
    this.attempt++;
    let call: Call;
    try {
      call = this.nextCall(this.options);
    } catch (error) {
      // The channel was closed (before the call, or while it waited to be retried). Reported on the
      // next tick, as a call's status is, never from within the caller's own call.
      const status = cancelled(error);
      process.nextTick(() => this.end(status));
      return;
    }
    this.current = call;
    const delivered: Delivered = { messages: [] };
    call.start(this.metadata.clone(), {
      onReceiveMetadata: (metadata) => {
        delivered.metadata = metadata;
      },
      onReceiveMessage: (message) => {
        delivered.messages.push(message);
      },
      onReceiveStatus: (status) => {
        if (this.current === call) this.attemptEnded(status, delivered);
      },
    });
    call.sendMessage(this.request);
    call.halfClose();
  }

  private attemptEnded(attemptStatus: StatusObject, delivered: Delivered): void {
    this.current = undefined;
    if (this.ended) return;
    if (
      !this.cancelledWith &&
      attemptStatus.code !== status.OK &&
      this.retry.retryableDecider(this.attempt, attemptStatus)
    ) {
      this.timer = setTimeout(() => this.send(), this.retry.delayFunction(this.attempt, attemptStatus));
      return;
    }
    this.end(attemptStatus, delivered);
  }

  /** The caller gets what the last attempt delivered, if anything, then the call's status. */
  private end(finalStatus: StatusObject, delivered: Delivered = { messages: [] }): void {
    if (this.ended) return;
    this.ended = true;
    if (delivered.metadata) this.listener.onReceiveMetadata?.(delivered.metadata);
    for (const message of delivered.messages) this.listener.onReceiveMessage?.(message);
    this.listener.onReceiveStatus?.(finalStatus);
  }
}
