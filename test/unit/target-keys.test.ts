import { targetKey, windowId } from '../../src/client';
import { normalizeTarget, PreludeError } from '../../src/prelude';
import { maskTarget } from '../../src/server';

describe('target normalisation and window IDs', () => {
  it('files one person under one window whatever the formatting', () => {
    const a = normalizeTarget({ type: 'phone_number', value: '+33 6 12-34.56 (78)' });
    const b = normalizeTarget({ type: 'phone_number', value: '+33612345678' });
    expect(a).toEqual(b);
    expect(windowId(a, null)).toBe('verification-+33612345678');
    expect(normalizeTarget({ type: 'email_address', value: '  Ada@Example.COM ' }).value).toBe(
      'ada@example.com',
    );
  });

  it('files +33 (0)6…, +336… and 00336… under one number, and knows trunk prefixes', () => {
    const forms = ['+33 (0)6 12 34 56 78', '+33612345678', '0033612345678', '+33 6-12-34-56-78'];
    expect(new Set(forms.map((value) => normalizeTarget({ type: 'phone_number', value }).value))).toEqual(
      new Set(['+33612345678']),
    );
    expect(normalizeTarget({ type: 'phone_number', value: '+44 (0)20 7946 0958' }).value).toBe(
      '+442079460958',
    );
  });

  it('refuses national numbers and impossible lengths rather than guess', () => {
    for (const value of ['06 12 34 56 78', '+336123', '+33 6 12 34 56 78 90', '+999123456', '+33abc']) {
      expect(() => normalizeTarget({ type: 'phone_number', value })).toThrow(
        expect.objectContaining({ code: 'invalid_phone_number', kind: 'invalid_request' }),
      );
    }
  });

  it('refuses what is not E.164 or an e-mail address with a typed error', () => {
    expect(() => normalizeTarget({ type: 'phone_number', value: '0612345678' })).toThrow(PreludeError);
    expect(() => normalizeTarget({ type: 'email_address', value: 'not-an-address' })).toThrow(
      expect.objectContaining({ code: 'invalid_email_address', kind: 'invalid_request' }),
    );
  });

  it('keeps the target out of the window ID when an ID key is set', () => {
    const target = normalizeTarget({ type: 'phone_number', value: '+33612345678' });
    const key = targetKey(target, 'a-secret-of-sixteen-chars');
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(windowId(target, 'a-secret-of-sixteen-chars')).not.toContain('612345678');
    expect(targetKey(target, 'another-secret-key-here')).not.toBe(key);
    expect(targetKey(target, 'a-secret-of-sixteen-chars')).toBe(key);
  });

  it('masks targets shown over HTTP', () => {
    expect(maskTarget({ type: 'phone_number', value: '+33612345678' }).value).toBe('+33•••••••78');
    expect(maskTarget({ type: 'email_address', value: 'ada@example.com' }).value).toBe('ad•••@example.com');
  });
});
