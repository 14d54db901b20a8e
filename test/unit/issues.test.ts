import { z } from 'zod';
import { describeIssues, describeZodError } from '../../src/issues';

describe('describeZodError', () => {
  const schema = z
    .object({ target: z.object({ type: z.enum(['phone_number']), value: z.string() }) })
    .strict();

  it('names every problem in one line, by its path', () => {
    const result = schema.safeParse({ target: { type: 'fax' }, extra: 1 });
    const message = describeZodError(result.error!);
    expect(message).not.toContain('\n');
    expect(message).toMatch(/^target\.type: .*; target\.value: .*; body: Unrecognized key: "extra"$/);
  });

  it('names the value itself for a problem with the whole of it', () => {
    expect(describeZodError(schema.safeParse(null).error!, 'event')).toMatch(/^event: /);
  });

  it('counts the problems beyond the first five', () => {
    const issues = Array.from({ length: 8 }, (_, i) => ({ path: ['to', i], message: 'not E.164' }));
    expect(describeIssues(issues)).toBe(
      'to.0: not E.164; to.1: not E.164; to.2: not E.164; to.3: not E.164; to.4: not E.164; and 3 more',
    );
  });
});
