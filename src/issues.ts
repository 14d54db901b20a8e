/**
 * How a refused value's problems are told, wherever input is parsed with zod (requests, Prelude's
 * answers, webhook events, files): one line, `path: message` for each problem, `; ` between them,
 * so that it fits in an error answer's `message`, an exception or a log line. (`z.prettifyError` is
 * the multi-line form of the same, for a terminal.)
 */
import type { z } from 'zod';

/** A problem with a value: where in it, and what. */
export interface Issue {
  path: readonly PropertyKey[];
  message: string;
}

/** Problems told beyond this many are only counted. */
const shownIssues = 5;

/**
 * `issues` in one line. `subject` names the value itself, for a problem with the whole of it (an
 * empty path): `body`, `event`, `answer`.
 */
export function describeIssues(issues: readonly Issue[], subject = 'body'): string {
  if (issues.length === 0) return `${subject}: invalid`;
  const told = issues
    .slice(0, shownIssues)
    .map((issue) => `${issue.path.map(String).join('.') || subject}: ${issue.message}`);
  if (issues.length > shownIssues) told.push(`and ${issues.length - shownIssues} more`);
  return told.join('; ');
}

/** A zod error's problems in one line (see {@link describeIssues}). */
export function describeZodError(error: z.ZodError, subject?: string): string {
  return describeIssues(error.issues, subject);
}
