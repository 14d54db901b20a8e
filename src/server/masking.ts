import type { VerificationTarget } from '../../workflows/messages';

/**
 * A target as the HTTP API shows it: enough to recognise (`+33•••••••78`, `jo•••@example.com`), not
 * enough to be the personal data itself.
 */
export function maskTarget({ type, value }: VerificationTarget): VerificationTarget {
  if (type === 'email_address') {
    const [local = '', domain = ''] = value.split('@');
    return { type, value: `${local.slice(0, 2)}•••@${domain}` };
  }
  return {
    type,
    value: `${value.slice(0, 3)}${'•'.repeat(Math.max(0, value.length - 5))}${value.slice(-2)}`,
  };
}
