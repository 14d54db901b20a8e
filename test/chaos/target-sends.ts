/**
 * The sends a target's limits entity counts, read from the entity itself (not from what its window
 * believes), so that a chaos run can hold them against the sandbox's call log: the per-target limit
 * refuses on this count.
 */
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { dataConverterFor, parseKeyRing } from '../../src/codec';
import { targetLimitsIdOf, targetUsageQuery, type TargetLimitsInput } from '../../workflows/messages';

export interface TargetSendsReader {
  /** The sends the entity of a window's target counts; undefined when it cannot be read. */
  read(windowId: string): Promise<number | undefined>;
  close(): Promise<void>;
}

export async function targetSendsReader(address: string, codecKeys: string): Promise<TargetSendsReader> {
  const dataConverter = dataConverterFor(parseKeyRing(codecKeys));
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, dataConverter });
  const codecs = dataConverter.payloadCodecs ?? [];

  /** A start input, decoded as the worker would. */
  const startInput = async (handle: ReturnType<Client['workflow']['getHandle']>) => {
    const history = await handle.fetchHistory();
    let payloads = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    if (payloads.length === 0) return undefined;
    for (const codec of [...codecs].reverse()) payloads = await codec.decode(payloads);
    return defaultPayloadConverter.fromPayload<TargetLimitsInput>(payloads[0]!);
  };

  return {
    async read(windowId) {
      const handle = client.workflow.getHandle(targetLimitsIdOf(windowId));
      try {
        // An entity granted its first send by its start, and asked nothing since, sleeps through
        // its start delay and answers no query: its count is its start input's.
        if (((await handle.describe()).historyLength ?? 0) <= 1) {
          return (await startInput(handle))?.sends?.length;
        }
        return (await handle.query(targetUsageQuery)).sendsUsed;
      } catch {
        return undefined;
      }
    },
    close: () => connection.close(),
  };
}
