/**
 * The README lists the HTTP API's error codes by status: the list is the error table's, so it cannot
 * drift from what the service answers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorTable, statusOf, type ErrorCode } from '../../src/errors';

/** The README's paragraph, as the table makes it. */
function paragraphFromTable(): string {
  const codes = Object.keys(errorTable) as ErrorCode[];
  const statuses = [...new Set(codes.map(statusOf))].sort((a, b) => a - b);
  const byStatus = statuses.map(
    (status) =>
      `${status} ${codes
        .filter((code) => statusOf(code) === status)
        .map((code) => `\`${code}\``)
        .join(', ')}`,
  );
  const retrying = codes.filter((code) => 'retryAfter' in errorTable[code]).map((code) => `\`${code}\``);
  return (
    'Error codes of the HTTP API, by status (one table, `src/errors/table.ts`; `/docs` says what each ' +
    `means and which operation answers it): ${byStatus.join('; ')}. ${`${retrying.slice(0, -1).join(', ')} and ${retrying.at(-1)}`} come with ` +
    '`retry_after_seconds` and a `Retry-After` header.'
  );
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

describe('the README', () => {
  it("lists every error code at the table's status", () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
    const paragraph = /^Error codes of the HTTP API[^]*?(?=\n\n)/m.exec(readme)?.[0] ?? '';
    expect(oneLine(paragraph)).toBe(paragraphFromTable());
  });
});
