/**
 * Configuration from environment variables, declared as tables. A table maps each field of a
 * component's configuration to a {@link Setting}: the variable's name, written once, the schema of the
 * value (its limits), and how the variable's text becomes that value. From one table come both the
 * parsing of the component's section ({@link envSection}) and the list of variables it reads; the
 * value schemas check the same setting when it arrives another way (a runtime update, a per-request
 * override), so a limit is written once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/** What a setting holds, and how an environment variable's text (`undefined` when unset) becomes it. */
export interface Kind<Text extends z.ZodType = z.ZodType, Value = unknown> {
  /** The value's own schema, for the setting given as a value rather than as text; `undefined` if none. */
  value: Value;
  /** Reads the variable's text. */
  text: Text;
}

/** One environment variable of a table. */
export interface Setting<Text extends z.ZodType = z.ZodType, Value = unknown> extends Kind<Text, Value> {
  variable: string;
}

/** A setting with a value schema: one whose limits other schemas share. */
export type ValueSetting<Value extends z.ZodType = z.ZodType> = Setting<z.ZodType, Value>;

/** A component's settings, by field; a nested table is a nested object of the configuration. */
export interface Table {
  readonly [field: string]: Setting | Table;
}

/** What a table reads into. */
export type TableOutput<T extends Table> = {
  -readonly [K in keyof T]: T[K] extends Setting<infer Text>
    ? z.output<Text>
    : T[K] extends Table
      ? TableOutput<T[K]>
      : never;
};

/** A setting read from `variable`; unset (or empty), it is `fallback` when one is given. */
export function setting<Text extends z.ZodType, Value>(
  variable: string,
  kind: Kind<Text, Value>,
): Setting<Text, Value>;
export function setting<Text extends z.ZodType, Value>(
  variable: string,
  kind: Kind<Text, Value>,
  fallback: z.util.NoUndefined<z.output<Text>>,
): Setting<z.ZodDefault<Text>, Value>;
export function setting(variable: string, kind: Kind, fallback?: unknown): Setting {
  return {
    variable,
    value: kind.value,
    text: fallback === undefined ? kind.text : kind.text.default(fallback),
  };
}

function isSetting(entry: Setting | Table): entry is Setting {
  return typeof entry.variable === 'string' && entry.text instanceof z.ZodType;
}

/** Every setting of a table, nested tables included, in order. */
export function settingsOf(table: Table): Setting[] {
  return Object.values(table).flatMap((entry) => (isSetting(entry) ? [entry] : settingsOf(entry)));
}

/** The value schemas of a table's settings, by field: the shape of the same settings given as values. */
export function valueShape<T extends Record<string, ValueSetting>>(
  table: T,
): { [K in keyof T]: T[K]['value'] } {
  return Object.fromEntries(Object.entries(table).map(([field, entry]) => [field, entry.value])) as {
    [K in keyof T]: T[K]['value'];
  };
}

/** One component's section of the configuration: how it is read, and the variables it reads. */
export interface EnvSection<Out> {
  /** Reads the section out of the environment; an issue's path is the name of the variable at fault. */
  schema: z.ZodType<Out, Record<string, string | undefined>>;
  variables: string[];
}

/**
 * The section a table describes, read from `{ VARIABLE: text }`. `finish` (optional) checks the
 * settings together or reshapes them; an issue it adds names its variable as its path.
 */
export function envSection<T extends Table, Out = TableOutput<T>>(
  table: T,
  finish?: (values: TableOutput<T>, ctx: z.RefinementCtx) => Out,
): EnvSection<Out> {
  const settings = settingsOf(table);
  const byVariable = z.object(Object.fromEntries(settings.map((entry) => [entry.variable, entry.text])));
  const shaped = byVariable.transform((env) => shape(table, env) as TableOutput<T>);
  return {
    schema: (finish ? shaped.transform(finish) : shaped) as z.ZodType<
      Out,
      Record<string, string | undefined>
    >,
    variables: settings.map((entry) => entry.variable),
  };
}

/** The schemas of named sections, for one object that reads them all. */
export function schemasOf<S extends Record<string, EnvSection<unknown>>>(
  sections: S,
): { [K in keyof S]: S[K]['schema'] } {
  return Object.fromEntries(Object.entries(sections).map(([key, section]) => [key, section.schema])) as {
    [K in keyof S]: S[K]['schema'];
  };
}

function shape(table: Table, env: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(table).map(([field, entry]) => [
      field,
      isSetting(entry) ? env[entry.variable] : shape(entry, env),
    ]),
  );
}

// ---- Kinds ------------------------------------------------------------------------------------

/** A value that reads itself from the text (a string, or something with no value schema to share). */
export function read<Text extends z.ZodType>(text: Text): Kind<Text, undefined> {
  return { value: undefined, text };
}

// Empty strings are treated as unset: `FOO=` in a .env file or a compose file means "no value".
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** Free text, optional; `value` adds its own limits (a token's minimum length). */
export function optionalText<Value extends z.ZodType<string, string>>(value: Value) {
  return { value, text: optionalString.pipe(value.optional()) };
}

/** A string that must not be empty (a host, a namespace). */
export const nonEmpty = read(z.string().trim().min(1));

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max: number) {
  const value = z.number().int().min(min).max(max);
  return {
    value,
    text: z
      .string()
      .trim()
      .regex(/^-?\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(value),
  };
}

/** A whole number from `min` to `max`, or none when the variable is unset or empty. */
export function optionalWholeNumber(min: number, max: number) {
  const { value, text } = wholeNumber(min, max);
  return { value: value.optional(), text: optionalString.pipe(text.optional()) };
}

/** A TCP port, 0 meaning any free one. */
export const port = wholeNumber(0, 65_535);

/** A number from 0 to 1 (a share of calls). */
export const fraction = (() => {
  const value = z.number({ error: 'must be a number from 0 to 1' }).min(0).max(1);
  return { value, text: z.string().trim().transform(Number).pipe(value) };
})();

/** One of `options`. */
export function oneOf<const Options extends readonly [string, ...string[]]>(options: Options) {
  const value = z.enum(options, { error: `must be ${options.slice(0, -1).join(', ')} or ${options.at(-1)}` });
  return { value, text: value };
}

/** `true` or `false`. */
export const flag = {
  value: z.boolean(),
  text: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
};

/** A comma-separated list; unset, it is empty. */
export function list<Value extends z.ZodType<unknown[], string[]>>(value: Value) {
  return { value, text: commaList.pipe(value) };
}

/** A comma-separated list's items, trimmed, the empty ones left out. */
export const commaList = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

/** An absolute http(s) URL. */
export const url = read(z.url({ error: 'must be an absolute http(s) URL', protocol: /^https?$/ }));

/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 address. */
export const hostPort = read(
  z
    .string()
    .trim()
    .regex(/^[^\s:/]+(:\d{1,5})$|^\[[0-9a-fA-F:]+\](:\d{1,5})$/, 'must be host:port, e.g. 127.0.0.1:7233'),
);

/**
 * A PEM value given inline or as a path to a file holding it. Read here, so that the rest of the
 * code only ever sees key material, never paths.
 */
export function pemOrPath(what: string) {
  return read(
    optionalString.transform((value, ctx) => {
      if (value === undefined) return undefined;
      const inline = value.replace(/\\n/g, '\n');
      if (inline.startsWith('-----BEGIN')) return inline;
      const path = resolve(value);
      if (!existsSync(path)) {
        ctx.addIssue({
          code: 'custom',
          message: `is neither a PEM ${what} nor the path of a file holding one`,
        });
        return z.NEVER;
      }
      return readFileSync(path, 'utf8').trim();
    }),
  );
}

/** Optional text parsed by `parse`; a `failure` it throws is the variable's problem, its message the reason. */
export function parsed<T>(parse: (text: string) => T, failure: new (...args: never[]) => Error) {
  return read(
    optionalString.transform((text, ctx) => {
      if (text === undefined) return undefined;
      try {
        return parse(text);
      } catch (error) {
        if (!(error instanceof failure)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
        return z.NEVER;
      }
    }),
  );
}
