/**
 * A Notify send made attempt by attempt, so that a lost answer does not send the message twice.
 * Notify has no idempotency key (a repeated `POST /v2/notify` is a second message) and no lookup of
 * a message by its correlation ID. An attempt Prelude answered with an error was not applied, so the
 * next one goes out. An attempt whose fate is unknown (a timeout, a cut connection, a worker that
 * died mid-call) may have sent the message:
 * - a sender that hears the message's webhooks waits for one (Prelude posts
 *   `transactional.message.created` as it takes a message). A report means the message went out,
 *   and no attempt follows; none within {@link lostNotifyAnswerWaitMs} means it most likely did not,
 *   and the next attempt goes out;
 * - a sender that hears none stops there: a best-effort message is sent at most once.
 */
import { condition, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { NotifySendRequest, NotifySendResponse } from '../src/prelude';
import { AttemptsFailed, fateOf } from './call-attempts';
import {
  lifecyclePauseMs,
  lostNotifyAnswerWaitMs,
  notifyAttemptOptions,
  notifyAttempts,
} from './retry-policies';

const { sendNotification } = proxyActivities<Activities>(notifyAttemptOptions);

/** How a send learns that a message went out whose answer it did not get. */
export type LostAnswerEvidence =
  /** Whether a webhook about the send's message has come (the sender's own record of them). */
  | { reported: () => boolean }
  /** None reaches the sender: an attempt whose fate is unknown ends the send. */
  | 'none';

/** What a send came to: Prelude's answer, or a report that the message went out. */
export type NotifySent = { message: NotifySendResponse } | { reported: true };

/**
 * Sends `request` at most once as far as the evidence tells.
 *
 * @throws AttemptsFailed when no attempt is known to have sent it (its `uncertainAttempts` may
 *   have all the same).
 */
export async function sendNotifyMessage(
  request: NotifySendRequest,
  evidence: LostAnswerEvidence,
): Promise<NotifySent> {
  let uncertainAttempts = 0;
  for (let number = 1; ; number += 1) {
    try {
      return { message: await sendNotification(request) };
    } catch (error) {
      const fate = fateOf(error);
      if (fate.mayHaveReached) {
        uncertainAttempts += 1;
        if (evidence === 'none') throw new AttemptsFailed(error, uncertainAttempts);
        if (await condition(evidence.reported, lostNotifyAnswerWaitMs)) return { reported: true };
      }
      if (!fate.retryable || number >= notifyAttempts) throw new AttemptsFailed(error, uncertainAttempts);
      if (!fate.mayHaveReached) await sleep(fate.retryAfterMs ?? lifecyclePauseMs(number));
    }
  }
}
