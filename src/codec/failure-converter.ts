/**
 * The failure converter of every worker, workflow bundle and client: a failure's message and stack
 * trace move into an encoded payload, which the payload codec then encrypts like any other. A failed
 * check or send may quote what Prelude said about a target, and that must not sit in history in clear.
 * Loaded by path (see `failureConverterPath`), because workflow code can only take it from its bundle.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });

/** Path of this module, for `DataConverter.failureConverterPath` and the workflow bundle. */
export const failureConverterPath: string = __filename;
