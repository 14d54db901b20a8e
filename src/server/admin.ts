/**
 * The operator's routes, behind their own token (`SERVICE_ADMIN_TOKEN`; without it they are not
 * served): a country's send guard read, its budget lifted or put back, its counts reset, at run
 * time and without a restart.
 */
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { VerificationClientOptions } from '../client';
import {
  countryGuardUsage,
  resetCountryGuard,
  setCountryBudget,
  type CountryGuardUsage,
} from '../guards/admin';
import { requireBearer } from './auth';
import { errorAnswers } from './schemas';

const countryParams = z.object({
  country: z
    .string()
    .regex(/^[A-Z]{2}$/)
    .describe('ISO 3166-1 alpha-2 country code, upper case (ZZ: non-geographic numbers)'),
});

const budgetBodySchema = z
  .object({
    sends: z.number().int().min(0).max(10_000_000).describe('sends per GUARD_COUNTRY_PERIOD_SECONDS'),
    burst: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        'sends per GUARD_COUNTRY_BURST_SECONDS; default: the configured burst, scaled up as `sends` is',
      ),
    until: z.iso.datetime().optional().describe('when the budget ends (ISO 8601); absent: until removed'),
  })
  .describe("the country's budget, for every shard together");

const guardAnswerSchema = z
  .object({
    country: z.string(),
    shards: z.number().int().describe('entities the budget is spread over'),
    sends_used: z.number().int().describe('sends counted in the current period'),
    sends_left: z.number().int(),
    sends_leased: z
      .number()
      .int()
      .optional()
      .describe(
        "sends other service processes' admission leases hold in reserve, not reported yet (not in sends_used, not in sends_left)",
      ),
    burst_used: z.number().int().describe('sends counted in the current burst period'),
    budget: z
      .object({ sends: z.number().int(), burst: z.number().int(), until: z.string().optional() })
      .optional()
      .describe("the operator's budget in force, when one is set"),
  })
  .describe("a country's send guard");

function guardAnswer(usage: CountryGuardUsage) {
  return {
    country: usage.country,
    shards: usage.shards,
    sends_used: usage.sendsUsed,
    sends_left: usage.sendsLeft,
    ...(usage.leased ? { sends_leased: usage.leased } : {}),
    burst_used: usage.burstUsed,
    ...(usage.override ? { budget: usage.override } : {}),
  };
}

/** What the admin routes need. */
export interface AdminRouteOptions {
  client: Client;
  verification: VerificationClientOptions;
  /** The admin token; the routes answer 401 without it. */
  token: string;
}

/** Registers the admin routes, behind `token`. */
export async function adminRoutes(
  app: FastifyInstance,
  { client, verification, token }: AdminRouteOptions,
): Promise<void> {
  requireBearer(app, [token]);
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const schema = (operationId: string, summary: string, description: string) => ({
    operationId,
    summary,
    description,
    tags: ['admin'],
    security: [{ adminToken: [] }],
    params: countryParams,
    response: { 200: guardAnswerSchema, ...errorAnswers('invalid_request', 'unavailable') },
  });

  routes.get(
    '/admin/guards/:country',
    {
      schema: schema(
        'getCountryGuard',
        "A country's send guard: what it counts and its budget",
        'The sends counted in the current period and burst, over every shard of the country.',
      ),
    },
    async (request) => guardAnswer(await countryGuardUsage(client, request.params.country, verification)),
  );
  routes.put(
    '/admin/guards/:country/budget',
    {
      schema: {
        ...schema(
          'setCountryBudget',
          "Lift (or lower) a country's SMS budget, at once",
          'Replaces the configured budget on every shard of the country until `until` (or until removed); what was counted stays counted.',
        ),
        body: budgetBodySchema,
      },
    },
    async (request) =>
      guardAnswer(await setCountryBudget(client, request.params.country, request.body, verification)),
  );
  routes.delete(
    '/admin/guards/:country/budget',
    {
      schema: schema(
        'removeCountryBudget',
        'Put the configured budget back',
        "Removes the operator's budget from every shard: the configured one applies again.",
      ),
    },
    async (request) =>
      guardAnswer(await setCountryBudget(client, request.params.country, null, verification)),
  );
  routes.post(
    '/admin/guards/:country/reset',
    {
      schema: schema(
        'resetCountryGuard',
        "Forget every send a country's guard counted",
        'Clears the budget, IP, device and number-block counts of every shard of the country.',
      ),
    },
    async (request) => guardAnswer(await resetCountryGuard(client, request.params.country, verification)),
  );
}
