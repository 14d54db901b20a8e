/**
 * `prelude-temporal/fastify`: the HTTP service, for a team that serves it from its own process.
 */
export { buildServer, type ServerOptions } from '../server';
