/**
 * The operator's controls of a country's send guard, at run time and without a restart: read what
 * it counts, set (lift) its budget for a while, remove that budget, or reset its counts. Each acts on
 * every shard of the country; a shard that is not running counts nothing and is left alone, except
 * by a budget set, which starts it.
 */
import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import {
  guardUsageQuery,
  resetGuardUpdate,
  setBudgetUpdate,
  type ShardUsage,
} from '../../workflows/send-guard-messages';
import { call, isNotFound } from '../client/calls';
import { VerificationError } from '../client/errors';
import { guardShardId, guardShardStart, type GuardOptions } from './check';
import { admissionLeasesOf } from './leases';
import { shareOf } from './ranges';
import { countryBudget, shardsOf } from './settings';

/** A country's guard, its shards summed. */
export interface CountryGuardUsage {
  country: string;
  shards: number;
  sendsUsed: number;
  sendsLeft: number;
  burstUsed: number;
  /**
   * Sends other processes' admission leases hold in reserve, not reported yet (this process reports
   * its own first): not in `sendsUsed`, not in `sendsLeft`.
   */
  leased?: number;
  /** The operator's budget in force on every shard, summed; absent when none is set. */
  override?: { sends: number; burst: number; until?: string };
}

/** A budget the operator sets for a country, for every shard together. */
export interface CountryBudget {
  sends: number;
  /** The burst limit over `GUARD_COUNTRY_BURST_SECONDS`; default: the configured burst, scaled up as `sends` is. */
  burst?: number;
  /** ISO time the budget ends; absent: until removed. */
  until?: string;
}

const settings = { notFound: 'no such guard shard' };

/** What a country's guard counts now. */
export async function countryGuardUsage(
  client: Client,
  country: string,
  options: GuardOptions,
): Promise<CountryGuardUsage> {
  const usages = await eachShard(client, options, country, async (workflowId) => {
    try {
      return await call(
        client,
        options,
        () => client.workflow.getHandle(workflowId).query(guardUsageQuery),
        settings,
      );
    } catch (error) {
      if (isNotFound(error) || isNotFoundError(error)) return undefined;
      throw error;
    }
  });
  return summed(country, usages, options);
}

/** Sets the country's budget (split over its shards) until `until`, or removes it with `null`. */
export async function setCountryBudget(
  client: Client,
  country: string,
  budget: CountryBudget | null,
  options: GuardOptions,
): Promise<CountryGuardUsage> {
  const shards = shardsOf(options.guards, country);
  const usages = await eachShard(client, options, country, async (workflowId, shard) => {
    if (budget === null) {
      return runningOnly(() =>
        call(
          client,
          options,
          () => client.workflow.getHandle(workflowId).executeUpdate(setBudgetUpdate, { args: [null] }),
          settings,
        ),
      );
    }
    // A lifted budget keeps at least the configured burst: lifting never tightens the burst limit.
    const { burst: configuredBurst } = options.guards.country;
    const burst =
      budget.burst ??
      Math.max(
        configuredBurst,
        Math.round((budget.sends * configuredBurst) / countryBudget(options.guards, country)),
      );
    const share = {
      sends: shareOf(budget.sends, shards, shard),
      burst: Math.max(1, shareOf(burst, shards, shard)),
      ...(budget.until ? { until: budget.until } : {}),
    };
    return call(
      client,
      options,
      () =>
        client.workflow.executeUpdateWithStart(setBudgetUpdate, {
          args: [share],
          updateId: randomUUID(),
          startWorkflowOperation: guardShardStart(options.taskQueue, { country, shard, workflowId }),
        }),
      settings,
    );
  });
  return summed(country, usages, options);
}

/** Forgets every send the country's guard counted: its budget, IP, device and block counts start afresh. */
export async function resetCountryGuard(
  client: Client,
  country: string,
  options: GuardOptions,
): Promise<CountryGuardUsage> {
  const usages = await eachShard(client, options, country, (workflowId) =>
    runningOnly(() =>
      call(
        client,
        options,
        () => client.workflow.getHandle(workflowId).executeUpdate(resetGuardUpdate),
        settings,
      ),
    ),
  );
  return summed(country, usages, options);
}

/**
 * Calls each shard of the country, once this process has reported what its admission leases on
 * them admitted: what the operator reads or changes includes this process's last sends.
 */
async function eachShard<T>(
  client: Client,
  options: GuardOptions,
  country: string,
  fn: (workflowId: string, shard: number) => Promise<T>,
): Promise<T[]> {
  const shards = shardsOf(options.guards, country);
  const ids = Array.from({ length: shards }, (_, shard) => guardShardId(options.taskQueue, country, shard));
  await admissionLeasesOf(client).handBack(ids);
  return Promise.all(ids.map((workflowId, shard) => fn(workflowId, shard)));
}

/** A call to a shard that may not be running: undefined when it is not. */
async function runningOnly<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    if (isNotFound(error) || isNotFoundError(error)) return undefined;
    throw error;
  }
}

/** The helpers' own `not_found` error. */
function isNotFoundError(error: unknown): boolean {
  return error instanceof VerificationError && error.code === 'not_found';
}

function summed(
  country: string,
  usages: (ShardUsage | undefined)[],
  options: GuardOptions,
): CountryGuardUsage {
  const total = { sendsUsed: 0, burstUsed: 0, leased: 0 };
  let override: CountryGuardUsage['override'];
  for (const usage of usages) {
    if (!usage) continue;
    total.sendsUsed += usage.sendsUsed;
    total.burstUsed += usage.burstUsed;
    total.leased += usage.leased ?? 0;
    if (usage.override) {
      override = {
        sends: (override?.sends ?? 0) + usage.override.sends,
        burst: (override?.burst ?? 0) + usage.override.burst,
        ...(usage.override.until ? { until: usage.override.until } : {}),
      };
    }
  }
  // The shards' shares add up to the country's budget; a shard that is not running has its whole share left.
  const budget = override?.sends ?? countryBudget(options.guards, country);
  const { leased, ...counted } = total;
  return {
    country,
    shards: usages.length,
    ...counted,
    ...(leased > 0 ? { leased } : {}),
    sendsLeft: Math.max(0, budget - total.sendsUsed - leased),
    ...(override ? { override } : {}),
  };
}
