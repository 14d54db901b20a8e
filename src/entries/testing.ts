/**
 * `prelude-temporal/testing`: what a team's own tests need, started and stopped by them: the Prelude
 * sandbox (the v2 API offline, with an inbox of the codes it "sent") and a Temporal dev server with
 * our search attributes and the dynamic config we rely on.
 */
export { startSandbox, type RunningSandbox } from '../sandbox';
export { startDevServer, type DevServer, type DevServerOptions } from '../devserver';
