/**
 * What an HTTP caller may set on a send. A backend that forwards its own client's JSON must not let
 * that client loosen the window's policy or Prelude's security options: a chosen code, a lower check
 * budget or code size, a webhook URL of its own, "trusted user" signals. Those are refused unless the
 * operator allows them by name (`SERVICE_ALLOW_OVERRIDES`, `*` for all). The backend helpers take
 * them as trusted input.
 */

/** Options that change nothing about security or cost: a caller may always set them. */
const safeOptions = new Set([
  'locale',
  'preferred_channel',
  'template_id',
  'variables',
  'app_realm',
  'method',
]);

/** Signals that only describe the device and network; `is_trusted_user` would skip Prelude's checks. */
const unsafeSignals = new Set(['is_trusted_user']);

/** The fields of a start request that need the operator's leave, as `policy.x`, `options.x`, `signals.x`. */
export function overridesNeedingLeave(body: {
  policy?: Record<string, unknown>;
  options?: Record<string, unknown>;
  signals?: Record<string, unknown>;
}): string[] {
  return [
    ...Object.keys(body.policy ?? {}).map((field) => `policy.${field}`),
    ...Object.keys(body.options ?? {})
      .filter((field) => !safeOptions.has(field))
      .map((field) => `options.${field}`),
    ...Object.keys(body.signals ?? {})
      .filter((field) => unsafeSignals.has(field))
      .map((field) => `signals.${field}`),
  ];
}

/** The fields of `requested` the operator has not allowed. */
export function refusedOverrides(requested: string[], allowed: readonly string[]): string[] {
  if (allowed.includes('*')) return [];
  return requested.filter((field) => !allowed.includes(field));
}
