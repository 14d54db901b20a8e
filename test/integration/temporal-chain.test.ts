import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../../temporal.config';
import { customSearchAttributes } from '../../workflows/search-attributes';
import { createGreetingActivities } from '../fixtures/greeting-activities';

describe('the Temporal chain on a real dev server', () => {
  const { temporal } = loadConfig();
  let connection: Connection;

  beforeAll(async () => {
    connection = await Connection.connect({ address: temporal.address });
  });
  afterAll(async () => {
    await connection?.close();
  });

  it('runs a workflow whose activity executes in our worker and returns its result to the client', async () => {
    const taskQueue = `chain-${randomUUID()}`;
    const workerConnection = await NativeConnection.connect({ address: temporal.address });
    const worker = await Worker.create({
      connection: workerConnection,
      namespace: temporal.namespace,
      taskQueue,
      workflowsPath: require.resolve('../fixtures/greeting-workflow'),
      activities: createGreetingActivities(process.pid),
    });
    const client = new Client({ connection, namespace: temporal.namespace });

    const result = await worker.runUntil(
      client.workflow.execute('greetingWorkflow', {
        taskQueue,
        workflowId: `chain-${randomUUID()}`,
        args: ['Ada'],
      }),
    );

    await workerConnection.close();
    expect(result).toBe(`Hello, Ada, from attempt 1 in process ${process.pid}`);
  });

  it('registers the custom search attributes the Web UI filters on', async () => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: temporal.namespace,
    });
    expect(Object.keys(customAttributes ?? {})).toEqual(
      expect.arrayContaining(customSearchAttributes.map((attribute) => attribute.name)),
    );
  });
});
