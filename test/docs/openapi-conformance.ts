/**
 * Checks an answer of the HTTP service against its own OpenAPI document: the route and status must be
 * documented and the body must validate against the documented schema (JSON Schema 2020-12, formats
 * included). The end-to-end suites call {@link expectDocumented} on every answer they see.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { offlineService } from '../server/offline-service';

type Operation = { responses?: Record<string, { content?: Record<string, { schema?: object }> }> };
/** The parts of the document this check reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
}

let documentOnce: Promise<OpenApiDocument> | undefined;

/** The service's document, generated as `/openapi.json` serves it (the service is built, never started). */
export function serviceDocument(): Promise<OpenApiDocument> {
  documentOnce ??= (async () => {
    // With the admin routes, which the suites call too.
    const app = offlineService({ adminToken: 'an-admin-token-for-tests' });
    try {
      await app.ready();
      return app.swagger() as unknown as OpenApiDocument;
    } finally {
      await app.close();
    }
  })();
  return documentOnce;
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validators = new Map<string, ValidateFunction>();

function validatorFor(key: string, schema: object): ValidateFunction {
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(key, validate);
  }
  return validate;
}

/** The documented path a concrete one matches (`/verifications/{id}` for `/verifications/verification-…`). */
export function documentedPath(document: OpenApiDocument, path: string): string | undefined {
  const bare = path.split('?')[0]!;
  return Object.keys(document.paths).find((template) => {
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
    return new RegExp(`^${pattern}$`).test(bare);
  });
}

/** What is wrong with an answer according to the document; empty when it conforms. */
export async function answerProblems(
  method: string,
  path: string,
  status: number,
  body: unknown,
): Promise<string[]> {
  const document = await serviceDocument();
  const template = documentedPath(document, path);
  const where = `${method} ${template ?? path} ${status}`;
  if (!template) {
    // Outside every documented route: only the service's not-found answer.
    const errorSchema = document.paths['/verifications']?.post?.responses?.['400']?.content?.[
      'application/json'
    ]?.schema as object;
    const validate = validatorFor('not-found', errorSchema);
    if (status !== 404) return [`${where}: no documented route answers here`];
    return validate(body) ? [] : [`${where}: ${ajv.errorsText(validate.errors)}`];
  }
  const operation = document.paths[template]?.[method.toLowerCase()];
  if (!operation) return [`${where}: ${method} is not documented at ${template}`];
  const response = operation.responses?.[String(status)];
  if (!response) return [`${where}: status not documented`];
  const schema = response.content?.['application/json']?.schema;
  if (!schema) return [`${where}: no JSON body documented`];
  const validate = validatorFor(where, schema);
  return validate(body) ? [] : [`${where}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body)}`];
}

/** Fails (throws) unless the answer conforms to the document. */
export async function expectDocumented(
  method: string,
  path: string,
  status: number,
  body: unknown,
): Promise<void> {
  const problems = await answerProblems(method, path, status, body);
  if (problems.length > 0) throw new Error(`answer not as documented: ${problems.join('; ')}`);
}
