/**
 * The settings step of `prelude-temporal setup`: whether the server settings the project relies on
 * are on. No API reads dynamic config, so each is probed by a call that the setting, when off,
 * refuses before anything else; none of them leaves anything behind.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';

const { CommandType } = temporal.api.enums.v1;

/** One server setting, and whether the server has it on. */
export interface SettingStep {
  /** The dynamic config key. */
  name: string;
  /** What the project uses it for. */
  purpose: string;
  /** Required: the project does not work without it; otherwise it only costs speed. */
  required: boolean;
  on: boolean;
}

const identity = 'prelude-temporal setup';

/** Probes every setting the project relies on, on `namespace`. */
export async function probeSettings(connection: Connection, namespace: string): Promise<SettingStep[]> {
  return [
    {
      name: 'frontend.enableExecuteMultiOperation',
      purpose: 'Update-with-Start: POST /verifications and startVerification open or resend a window',
      required: true,
      on: await multiOperationOn(connection, namespace),
    },
    {
      name: 'frontend.enableUpdateWorkflowExecution',
      purpose: 'updates: every check, resend and per-target limits reservation',
      required: true,
      on: await updatesOn(connection, namespace),
    },
    {
      name: 'system.enableActivityEagerExecution',
      purpose: 'eager activities: a check runs without a matching round trip',
      required: false,
      on: await eagerActivitiesOn(connection, namespace),
    },
  ];
}

/** Off, the frontend refuses any multi-operation with PERMISSION_DENIED; on, it judges an empty one invalid. */
async function multiOperationOn(connection: Connection, namespace: string): Promise<boolean> {
  return refusalSaysOn(connection.workflowService.executeMultiOperation({ namespace, operations: [] }));
}

/** Off, an update of any workflow is PERMISSION_DENIED; on, an update of none is NOT_FOUND. */
async function updatesOn(connection: Connection, namespace: string): Promise<boolean> {
  return refusalSaysOn(
    connection.workflowService.updateWorkflowExecution({
      namespace,
      workflowExecution: { workflowId: `prelude-temporal-setup-probe-${randomUUID()}` },
      request: { meta: { updateId: randomUUID(), identity }, input: { name: 'probe' } },
    }),
  );
}

async function refusalSaysOn(call: Promise<unknown>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (error) {
    if (isGrpcServiceError(error) && error.code === status.PERMISSION_DENIED) return false;
    if (isGrpcServiceError(error) && [status.INVALID_ARGUMENT, status.NOT_FOUND].includes(error.code)) {
      return true;
    }
    throw error;
  }
}

/**
 * A workflow of our own that schedules one activity asking to run eagerly: with the setting on, the
 * workflow task's completion hands the activity back. The run is terminated and deleted after.
 */
async function eagerActivitiesOn(connection: Connection, namespace: string): Promise<boolean> {
  const service = connection.workflowService;
  const workflowId = `prelude-temporal-setup-probe-${randomUUID()}`;
  const taskQueue = { name: workflowId };
  const started = await service.startWorkflowExecution({
    namespace,
    workflowId,
    workflowType: { name: 'prelude-temporal-setup-probe' },
    taskQueue,
    requestId: randomUUID(),
    identity,
    workflowExecutionTimeout: msToTs('1 minute'),
    // The first workflow task comes back in the answer, so no poll is needed (when the server has
    // eager workflow start, on by default; else it is polled).
    requestEagerExecution: true,
  });
  try {
    const task =
      started.eagerWorkflowTask ?? (await service.pollWorkflowTaskQueue({ namespace, taskQueue, identity }));
    const completed = await service.respondWorkflowTaskCompleted({
      namespace,
      taskToken: task.taskToken,
      identity,
      commands: [
        {
          commandType: CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
          scheduleActivityTaskCommandAttributes: {
            activityId: 'probe',
            activityType: { name: 'prelude-temporal-setup-probe' },
            taskQueue,
            startToCloseTimeout: msToTs('10 seconds'),
            requestEagerExecution: true,
          },
        },
      ],
    });
    return (completed.activityTasks?.length ?? 0) > 0;
  } finally {
    const workflowExecution = { workflowId, runId: started.runId };
    await service
      .terminateWorkflowExecution({ namespace, workflowExecution, reason: 'setup probe', identity })
      .catch(() => undefined);
    await service.deleteWorkflowExecution({ namespace, workflowExecution }).catch(() => undefined);
  }
}
