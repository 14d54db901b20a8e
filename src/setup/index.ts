/**
 * `prelude-temporal setup`: what a Temporal server needs before the project's workers and services
 * can run on it — the namespace (created when asked), the custom search attributes the workflows
 * set, and a report of the server settings the project relies on. Idempotent: a second run finds
 * everything in place, changes nothing and says so.
 */
import type { Connection } from '@temporalio/client';
import { z } from 'zod';
import { ensureNamespace, SetupError, type NamespaceStep } from './namespace';
import { ensureSearchAttributes, type SearchAttributeStep } from './search-attributes';
import { probeSettings, type SettingStep } from './settings';

export { SetupError } from './namespace';
export type { NamespaceStep } from './namespace';
export type { SearchAttributeStep } from './search-attributes';
export type { SettingStep } from './settings';

/** Options of {@link setupTemporal}, checked with {@link setupOptionsSchema}. */
export const setupOptionsSchema = z.object({
  namespace: z.string().min(1),
  /** Register the namespace when it does not exist; without it a missing namespace is an error. */
  createNamespace: z.boolean().default(false),
  /** Retention of a namespace this run creates, in days (an existing namespace keeps its own). */
  retentionDays: z.number().int().min(1).max(3650).default(7),
});

/** What {@link setupTemporal} takes (besides the connection). */
export type SetupOptions = z.input<typeof setupOptionsSchema>;

/** What setup found and did. */
export interface SetupReport {
  serverVersion: string;
  namespace: NamespaceStep;
  searchAttributes: SearchAttributeStep[];
  settings: SettingStep[];
  /** Whether this run changed anything on the server. */
  changed: boolean;
  /** Whether every required setting is on: without them the project does not work on this server. */
  ready: boolean;
}

/**
 * Prepares `namespace` on the server behind `connection` for the project, through the workflow and
 * operator services.
 *
 * @throws SetupError when the namespace is missing (and not to be created), a search attribute
 *   exists with another type, or the server cannot be asked.
 */
export async function setupTemporal(connection: Connection, options: SetupOptions): Promise<SetupReport> {
  const parsed = setupOptionsSchema.safeParse(options);
  if (!parsed.success) throw new SetupError(`setup options: ${z.prettifyError(parsed.error)}`);
  const { namespace, createNamespace, retentionDays } = parsed.data;
  const info = await connection.workflowService.getSystemInfo({});
  const namespaceStep = await ensureNamespace(connection, {
    namespace,
    create: createNamespace,
    retentionDays,
  });
  const searchAttributes = await ensureSearchAttributes(connection, namespace);
  const settings = await probeSettings(connection, namespace);
  return {
    serverVersion: info.serverVersion ?? 'unknown',
    namespace: namespaceStep,
    searchAttributes,
    settings,
    changed: namespaceStep.created || searchAttributes.some((a) => a.created),
    ready: settings.every((s) => s.on || !s.required),
  };
}

/** The report as a person reads it, one line a fact. */
export function describeSetup(report: SetupReport): string {
  const { namespace } = report;
  const lines = [
    `Temporal server ${report.serverVersion}`,
    `namespace ${namespace.name}: ${namespace.created ? 'created' : 'exists'} (retention ${namespace.retentionDays} days)`,
    ...report.searchAttributes.map(
      (a) => `search attribute ${a.name} (${a.type}): ${a.created ? 'registered' : 'already registered'}`,
    ),
    ...report.settings.map(
      (s) => `${s.name}: ${s.on ? 'on' : s.required ? 'OFF (required)' : 'off (slower)'} — ${s.purpose}`,
    ),
    report.changed
      ? 'setup changed the server (see above)'
      : 'nothing to change: the server was set up already',
  ];
  const off = report.settings.filter((s) => !s.on && s.required);
  if (off.length > 0) {
    lines.push(
      `the project cannot run here: turn on ${off.map((s) => s.name).join(', ')} in the server's dynamic config`,
    );
  }
  return lines.join('\n');
}
