/**
 * What the cluster suites share: a cluster per suite, the HTTP services as a backend calls them
 * (with the bearer token), and the sandbox's inbox as the user reads it.
 */
import { startCluster, type Cluster, type ClusterOptions } from '../../tools/cluster';

/** An answer of an HTTP service. */
// Answers are JSON read field by field in the tests' assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Answer = { status: number; body: Record<string, any> };

/** Starts a cluster for a suite; its progress goes to stderr only when CLUSTER_LOG=1. */
export function clusterForSuite(options: ClusterOptions = {}): Promise<Cluster> {
  return startCluster({
    log: (line) => {
      if (process.env.CLUSTER_LOG === '1') process.stderr.write(`[cluster] ${line}\n`);
    },
    keepRunDir: process.env.CLUSTER_KEEP === '1',
    ...options,
  });
}

/** Calls HTTP service number `service` (0 or 1) of the cluster. */
export async function call(
  cluster: Cluster,
  service: number,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<Answer> {
  const response = await fetch(`${cluster.serviceUrls[service]}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${cluster.apiToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** The newest code the sandbox "sent" to `to`, as the user reads it. */
export async function latestCode(cluster: Cluster, to: string): Promise<string> {
  const response = await fetch(`${cluster.sandboxUrl}/sandbox/messages?to=${encodeURIComponent(to)}`);
  const { messages } = (await response.json()) as { messages: { code: string | null }[] };
  const code = messages[0]?.code;
  if (!code) throw new Error(`no code in the sandbox's inbox for ${to}`);
  return code;
}

export { phoneTarget } from '../support/phones';
