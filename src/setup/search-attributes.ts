/**
 * The search-attribute step of `prelude-temporal setup`: register the custom search attributes the
 * workflows set (workflows/search-attributes.ts), and wait until the server's queries know them.
 */
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { customSearchAttributes } from '../../workflows/search-attributes';
import { SetupError } from './namespace';

const { IndexedValueType } = temporal.api.enums.v1;

/** One search attribute as setup left it. */
export interface SearchAttributeStep {
  name: string;
  type: SearchAttributeType;
  /** Whether this run registered it. */
  created: boolean;
}

/** A server's own copy of the namespace catches up within seconds (every 2 s by default). */
const visibleWithinMs = 60_000;

/**
 * Registers every custom search attribute the namespace lacks; one already there with another type
 * is an error (the workflows could not set it). Resolves once queries on the namespace accept each
 * of them, so the workers started next can set them.
 */
export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
): Promise<SearchAttributeStep[]> {
  const wanted = customSearchAttributes.map((key) => ({
    name: key.name,
    type: key.type,
    indexed: IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`],
  }));
  // A namespace registered a moment ago may not be served yet by every part of the server.
  const existing = await untilAnswered(() => listCustom(connection, namespace));
  const mismatched = wanted.filter((w) => existing.has(w.name) && existing.get(w.name) !== w.indexed);
  if (mismatched.length > 0) {
    throw new SetupError(
      mismatched
        .map(
          (w) =>
            `search attribute ${w.name} exists on namespace "${namespace}" as ` +
            `${IndexedValueType[existing.get(w.name)!]}, but the workflows set it as ${w.type}`,
        )
        .join('; '),
    );
  }
  const missing = wanted.filter((w) => !existing.has(w.name));
  if (missing.length > 0) {
    await untilAnswered(() =>
      connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map((w) => [w.name, w.indexed])),
      }),
    );
  }
  for (const { name } of wanted) await untilQueryable(connection, namespace, name);
  return wanted.map(({ name, type }) => ({ name, type, created: missing.some((m) => m.name === name) }));
}

async function listCustom(connection: Connection, namespace: string): Promise<Map<string, number>> {
  const answer = await connection.operatorService.listSearchAttributes({ namespace });
  return new Map(Object.entries(answer.customAttributes ?? {}).map(([name, type]) => [name, Number(type)]));
}

/** `call`, again while the namespace is not found yet (or the server is briefly unavailable). */
async function untilAnswered<T>(call: () => Promise<T>): Promise<T> {
  const giveUpAt = Date.now() + visibleWithinMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const transient =
        isGrpcServiceError(error) && [status.NOT_FOUND, status.UNAVAILABLE].includes(error.code);
      if (!transient || Date.now() > giveUpAt) throw error;
      await sleep(500);
    }
  }
}

/** Waits until a visibility query naming the attribute is accepted: then the server knows it. */
async function untilQueryable(connection: Connection, namespace: string, name: string): Promise<void> {
  const giveUpAt = Date.now() + visibleWithinMs;
  for (;;) {
    try {
      await connection.workflowService.countWorkflowExecutions({ namespace, query: `${name} = "setup"` });
      return;
    } catch (error) {
      if (Date.now() > giveUpAt) {
        throw new SetupError(
          `search attribute ${name} was registered but the server's queries still refuse it: ` +
            (error as Error).message,
          { cause: error },
        );
      }
      await sleep(500);
    }
  }
}
