/**
 * `prelude-temporal`: what backend code calls to verify its users, and nothing it does not need.
 *
 * It loads no Fastify, no sandbox and no `@temporalio/worker` (the worker is
 * `prelude-temporal/worker`, the HTTP routes `prelude-temporal/fastify`, test servers
 * `prelude-temporal/testing`), so a backend handler that only checks codes starts fast. Modules are
 * imported one by one rather than through their component's index where that index would load more
 * (the Prelude HTTP client, the codec's HTTP endpoints).
 */
export {
  cancelVerification,
  checkCode,
  getVerification,
  startVerification,
  verificationClientOptions,
  type StartVerificationRequest,
  type StartVerificationResult,
  type CheckCodeRequestInput,
  type VerificationClientOptions,
} from './client';
export {
  getNotification,
  notificationClientOptions,
  startNotification,
  type NotificationClientOptions,
  type StartNotificationRequest,
} from './client';
export { forgetTarget, type ForgetResult } from './client';
export {
  countryGuardUsage,
  resetCountryGuard,
  setCountryBudget,
  type CountryBudget,
  type CountryGuardUsage,
} from './guards/admin';
export type { SendGuardSettings } from './guards/settings';
export { returnAdmissionLeases } from './guards/leases';
export { VerificationError, type VerificationErrorCode } from './client';
export { targetKey, windowId } from './client';
export { clientConnectionOptions, connectClient } from './connection';
export { dataConverterFor } from './codec/encryption-codec';
export { parseKeyRing, type KeyRing } from './codec/key-ring';
export { ConfigError, loadConfig, privacyKeys, type Config } from '../temporal.config';
export { normalizeTarget } from './prelude/targets';
export type { Target } from './prelude/schemas';
export type {
  CheckCodeResult,
  NotificationState,
  SendCodeResult,
  VerificationState,
} from '../workflows/messages';
