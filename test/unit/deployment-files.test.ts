/**
 * The deployment files must agree with the code: a variable renamed in temporal.config.ts, or a
 * search attribute added to the workflows, would otherwise break docker compose and the docs silently.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse as parseYaml } from 'yaml';
import { configVariables } from '../../temporal.config';
import { postgresMajor } from '../../tools/cluster/postgres';
import {
  dynamicConfigFile,
  historyShards,
  schemaSteps,
  temporalServices,
} from '../../tools/cluster/temporal-server';

const root = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** `NAME:` keys of the compose file's `environment:` blocks, for the services built from this repo. */
function composeAppVariables(compose: string): string[] {
  const appServices = compose.split(/\n {2}(?=\w[\w-]*:\n)/).filter((block) => /\n {4}build: \./.test(block));
  return appServices.flatMap((block) => [...block.matchAll(/^ {6}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!));
}

describe('deployment files', () => {
  const compose = read('docker-compose.yml');

  it('compose passes only variables the configuration reads', () => {
    const known = new Set(configVariables());
    const used = composeAppVariables(compose);
    expect(used.length).toBeGreaterThan(5);
    expect(used.filter((name) => !known.has(name))).toEqual([]);
  });

  it('compose registers the search attributes with `prelude-temporal setup` before the worker and the service start', () => {
    expect(compose).toMatch(/temporal-setup:\n {4}build: \.\n {4}command: \['setup', '--create-namespace'\]/);
    for (const service of ['worker', 'server']) {
      const block = compose.slice(compose.indexOf(`\n  ${service}:\n`) + 1).split(/\n {2}(?=\w)/)[0]!;
      expect(block).toMatch(/temporal-setup:\n\s+condition: service_completed_successfully/);
    }
  });

  it('the README documents every configuration variable', () => {
    const readme = read('README.md');
    expect(configVariables().filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });
});

/**
 * `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}` as docker compose interpolates them, with
 * `env` for the variables an operator sets.
 */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$\{(\w+)(?:(:?[-?])([^}]*))?\}/g,
    (_match, name: string, operator?: string, word = '') => {
      const value = env[name];
      const unset = value === undefined || (operator?.startsWith(':') && value === '');
      if (!unset) return value;
      if (operator?.endsWith('?')) throw new Error(`compose would stop: ${name}: ${word}`);
      return operator ? word : '';
    },
  );
}

describe('the compose stack, checked for real', () => {
  const operatorEnv = {
    PAYLOAD_CODEC_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
    VERIFY_ID_KEY: 'an-id-key-of-enough-length',
    SERVICE_API_TOKEN: 'a-token-of-enough-length',
  };
  const rawCompose = read('docker-compose.yml');
  const compose = parseYaml(interpolate(rawCompose, operatorEnv), { merge: true }) as {
    services: Record<
      string,
      { environment?: Record<string, unknown>; ports?: string[]; configs?: { source: string }[] }
    >;
    configs: Record<string, { file?: string; content?: string }>;
    'x-app-environment': Record<string, unknown>;
  };

  it('is valid against the Compose specification’s JSON schema', () => {
    const schema = JSON.parse(read('deploy/compose-spec/compose-spec.json')) as {
      properties: Record<string, unknown>;
      definitions: { config: { properties: Record<string, unknown> } };
    };
    // Keys the specification gained after the revision shipped here (2020), which this file uses.
    schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
    schema.definitions.config.properties.content = { type: 'string' };
    const ajv = new Ajv2019({ allErrors: true, strict: false, validateSchema: false });
    // The shipped revision names its subschemas with draft-04 `id`s (annotations: every $ref is a pointer).
    ajv.removeKeyword('id');
    ajv.addKeyword('id');
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('ports', /^((\[?[0-9a-fA-F.:]+\]?):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
    ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d+$/);
    const validate = ajv.compile(schema);
    validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    // A mistake is caught: a misspelt key, a port list that is not a list.
    expect(validate({ ...compose, services: { worker: { build: '.', enviroment: {} } } })).toBe(false);
    expect(validate({ ...compose, services: { worker: { build: '.', ports: '3000:3000' } } })).toBe(false);
  });

  it('is valid for docker compose itself, where Docker is installed', () => {
    const docker = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (docker.error || docker.status !== 0) {
      console.warn('docker compose is not installed: `docker compose config` not run');
      return;
    }
    const config = spawnSync(
      'docker',
      ['compose', '-f', join(root, 'docker-compose.yml'), 'config', '--quiet'],
      {
        encoding: 'utf8',
        env: { ...process.env, ...operatorEnv },
      },
    );
    expect(config.stderr).toBe('');
    expect(config.status).toBe(0);
  });

  it('publishes every port on 127.0.0.1 unless PUBLISH_ADDRESS says otherwise', () => {
    const published = Object.entries(compose.services).flatMap(([name, service]) =>
      (service.ports ?? []).map((port) => `${name} ${port}`),
    );
    expect(published.length).toBeGreaterThanOrEqual(6);
    expect(published.filter((entry) => !/ 127\.0\.0\.1:\d+:\d+$/.test(entry))).toEqual([]);
    const opened = parseYaml(interpolate(rawCompose, { ...operatorEnv, PUBLISH_ADDRESS: '0.0.0.0' }), {
      merge: true,
    }) as typeof compose;
    expect(opened.services.server!.ports).toEqual(['0.0.0.0:3000:3000']);
  });

  it('enables Update-with-Start and eager activities on its Temporal server', () => {
    const dynamic = parseYaml(read(compose.configs['temporal-dynamic-config']!.file!)) as Record<
      string,
      { value: unknown }[]
    >;
    expect(dynamic['frontend.enableExecuteMultiOperation']).toEqual([{ value: true }]);
    expect(dynamic['frontend.enableUpdateWorkflowExecution']).toEqual([{ value: true }]);
    expect(dynamic['system.enableActivityEagerExecution']).toEqual([{ value: true }]);
  });

  describe('in step with `npm run cluster` (tools/cluster), which test:cluster runs', () => {
    type Service = { image?: string; environment?: Record<string, unknown>; command?: string[] };
    const services = compose.services as Record<string, Service>;
    const serverVersion = /^version="([^"]+)"$/m.exec(read('tools/cluster/temporal-server.sh'))![1]!;
    const serverContainers = Object.values(services).filter((service) =>
      service.image?.startsWith('temporalio/server:'),
    );

    it('runs the Temporal server and its tools at the version the cluster builds', () => {
      expect(serverVersion).toMatch(/^\d+\.\d+\.\d+$/);
      expect(serverContainers.map((service) => service.image)).toEqual(
        temporalServices.map(() => `temporalio/server:${serverVersion}`),
      );
      expect(services['temporal-schema']!.image).toBe(`temporalio/admin-tools:${serverVersion}`);
    });

    it('runs each server service in a container of its own, with the cluster’s history shards', () => {
      expect(serverContainers.map((service) => service.environment!.SERVICES)).toEqual([...temporalServices]);
      for (const service of serverContainers) {
        expect(service.environment!.NUM_HISTORY_SHARDS).toBe(historyShards);
      }
    });

    it('uses the same PostgreSQL major version', () => {
      expect(services.postgresql!.image).toBe(`postgres:${postgresMajor}`);
    });

    it('mounts the one dynamic config file the cluster points its services at', () => {
      expect(compose.configs['temporal-dynamic-config']).toEqual({ file: `./${dynamicConfigFile}` });
      expect(existsSync(join(root, dynamicConfigFile))).toBe(true);
      const mounted = services.temporal as Service & { configs: { source: string; target: string }[] };
      expect(mounted.configs).toContainEqual({
        source: 'temporal-dynamic-config',
        target: mounted.environment!.DYNAMIC_CONFIG_FILE_PATH,
      });
    });

    it('applies the schema with the same steps', () => {
      const command = services['temporal-schema']!.command!.join(' ');
      const expected = schemaSteps.flatMap(([database, versioned]) => [
        `temporal-sql-tool --db ${database} create-database`,
        `temporal-sql-tool --db ${database} setup-schema -v 0.0`,
        `temporal-sql-tool --db ${database} update-schema -d /etc/temporal/schema/postgresql/v12/${versioned}`,
      ]);
      expect(command.split(' && ')).toEqual(expected);
    });
  });

  it('passes its services only variables the configuration reads, shared ones included', () => {
    const known = new Set(configVariables());
    const shared = Object.keys(compose['x-app-environment']);
    expect(shared.filter((name) => !known.has(name))).toEqual([]);
    for (const service of ['worker', 'server']) {
      const names = Object.keys(compose.services[service]!.environment ?? {});
      expect(names).toEqual(expect.arrayContaining(shared));
      expect(names.filter((name) => !known.has(name))).toEqual([]);
    }
  });

  it('has Prometheus scrape the service, the worker’s METRICS_PORT and Temporal, and Grafana load the dashboard', () => {
    const prometheus = parseYaml(read(compose.configs['prometheus-config']!.file!)) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    const worker = compose.services.worker!.environment!;
    const server = compose.services.server!.environment!;
    expect(worker.METRICS_HOST).toBe('0.0.0.0');
    expect(targets).toEqual(
      expect.arrayContaining([`server:${server.PORT}`, `worker:${worker.METRICS_PORT}`, 'temporal:8000']),
    );
    for (const source of compose.services.grafana!.configs!.map((c) => c.source)) {
      const file = compose.configs[source]!.file!;
      expect([file, existsSync(join(root, file))]).toEqual([file, true]);
    }
    expect(() => JSON.parse(read(compose.configs['grafana-dashboard']!.file!))).not.toThrow();
  });
});
