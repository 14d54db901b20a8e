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
import { shareOf } from './ranges';
import { countryBudget, shardsOf } from './settings';

/** A country's guard, its shards summed. */
export interface CountryGuardUsage {
  country: string;
  shards: number;
  sendsUsed: number;
  sendsLeft: number;
  burstUsed: number;
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
  const usages = await eachShard(options, country, async (workflowId) => {
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
  const usages = await eachShard(options, country, async (workflowId, shard) => {
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
  const usages = await eachShard(options, country, (workflowId) =>
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

function eachShard<T>(
  options: GuardOptions,
  country: string,
  fn: (workflowId: string, shard: number) => Promise<T>,
): Promise<T[]> {
  const shards = shardsOf(options.guards, country);
  return Promise.all(
    Array.from({ length: shards }, (_, shard) => fn(guardShardId(options.taskQueue, country, shard), shard)),
  );
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
  const total = { sendsUsed: 0, burstUsed: 0 };
  let override: CountryGuardUsage['override'];
  for (const usage of usages) {
    if (!usage) continue;
    total.sendsUsed += usage.sendsUsed;
    total.burstUsed += usage.burstUsed;
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
  return {
    country,
    shards: usages.length,
    ...total,
    sendsLeft: Math.max(0, budget - total.sendsUsed),
    ...(override ? { override } : {}),
  };
}
