/**
 * The HTTP service as an API caller meets it: one request, its JSON answer, and the check that the
 * answer is as the OpenAPI document says.
 */
import { expectDocumented } from '../docs/openapi-conformance';
import type { TestStack } from './stack';

/** An answer of the service. */
// Answers are JSON read field by field in the tests' assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Answer = { status: number; body: Record<string, any>; headers: Headers };

/**
 * Calls the stack's HTTP service: `body` is sent as JSON, or as given when it is a string (for
 * bodies that are not JSON). Fails the test when the answer is not as the OpenAPI document says.
 */
export async function api(
  stack: TestStack,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${stack.serverUrl}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const answer = {
    status: response.status,
    body: (await response.json()) as Answer['body'],
    headers: response.headers,
  };
  await expectDocumented(method, path, answer.status, answer.body);
  return answer;
}

/** An answer without its headers, to compare whole answers. */
export const strip = ({ status, body }: Answer) => ({ status, body });
