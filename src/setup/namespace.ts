/**
 * The namespace step of `prelude-temporal setup`: find the namespace, or register it when asked.
 */
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';

/** What the namespace step found or did. */
export interface NamespaceStep {
  name: string;
  /** Whether this run registered it. */
  created: boolean;
  /** How long closed runs are kept, in days (as the server reports it). */
  retentionDays: number;
}

/** The namespace does not exist and setup was not asked to create it, or it could not be created. */
export class SetupError extends Error {
  override readonly name = 'SetupError';
}

const secondsPerDay = 86_400;

/**
 * Describes `namespace`, registering it first when it does not exist and `create` is set. An
 * existing namespace is never changed: its retention is the operator's.
 */
export async function ensureNamespace(
  connection: Connection,
  options: { namespace: string; create: boolean; retentionDays: number },
): Promise<NamespaceStep> {
  const { namespace, create, retentionDays } = options;
  const existing = await describe(connection, namespace);
  if (existing) return { name: namespace, created: false, retentionDays: existing };
  if (!create) {
    throw new SetupError(
      `namespace "${namespace}" does not exist on this server: pass --create-namespace to create it, ` +
        'or set TEMPORAL_NAMESPACE to an existing one',
    );
  }
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(retentionDays * secondsPerDay * 1000),
      description: 'prelude-temporal verification windows',
    });
  } catch (error) {
    // Another setup registered it in the meantime: it exists, which is all this step asks.
    if (isGrpcServiceError(error) && error.code === status.ALREADY_EXISTS) {
      return { name: namespace, created: false, retentionDays: (await describe(connection, namespace)) ?? 0 };
    }
    throw new SetupError(`could not register namespace "${namespace}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { name: namespace, created: true, retentionDays };
}

/** The namespace's retention in days, or undefined when there is no such namespace. */
async function describe(connection: Connection, namespace: string): Promise<number | undefined> {
  try {
    const answer = await connection.workflowService.describeNamespace({ namespace });
    const seconds = Number(answer.config?.workflowExecutionRetentionTtl?.seconds ?? 0);
    return Math.round((seconds / secondsPerDay) * 100) / 100;
  } catch (error) {
    if (isGrpcServiceError(error) && error.code === status.NOT_FOUND) return undefined;
    throw error;
  }
}
