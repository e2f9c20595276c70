/** What the commands share: the configuration, one ClickHouse connection per pipeline, Kafka admins, the command lease. */
import { connect, type Db } from '../clickhouse/client.ts';
import { loadConfigFile, resolveSecret } from '../config/load.ts';
import type { PipelineConfig, WinnowConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { KafkaAdmins } from '../kafka/admins.ts';
import type { Logger } from '../log.ts';
import { Lease, type LeaseState } from '../slicing/lease.ts';

export const CONFIG_FLAG_HELP = '--config FILE   pipeline definition (YAML; default ./winnow.yaml or $WINNOW_CONFIG)';

export function configPath(flag: string | undefined): string {
  return flag ?? process.env['WINNOW_CONFIG'] ?? 'winnow.yaml';
}

export interface Target {
  pipeline: PipelineConfig;
  db: Db;
}

export interface Loaded {
  config: WinnowConfig;
  pipelines: Target[];
  close(): Promise<void>;
}

/**
 * The pipeline's ClickHouse. Its errors name the key and the URL
 * (`sink.url http://... (pipeline p): ...`), never a statement.
 */
export function dbFor(p: PipelineConfig, logger?: Logger): Db {
  const password =
    p.sink.password === undefined
      ? undefined
      : resolveSecret(p.sink.password, process.env, `pipelines.${p.name}.sink.password`);
  return connect({
    url: p.sink.url,
    user: p.sink.user,
    where: `sink.url ${p.sink.url} (pipeline ${p.name})`,
    ...(password === undefined ? {} : { password }),
    ...(logger ? { logger } : {}),
  });
}

export function kafkaPasswordFor(p: PipelineConfig): string | undefined {
  const pw = p.source.auth.password;
  return pw === undefined ? undefined : resolveSecret(pw, process.env, `pipelines.${p.name}.source.auth.password`);
}

/** The config file and a connection per chosen pipeline; `logger` receives the ClickHouse client's own log. */
export async function load(file: string, only?: string, logger?: Logger): Promise<Loaded> {
  const config = await loadConfigFile(file);
  const chosen = only ? config.pipelines.filter((p) => p.name === only) : config.pipelines;
  if (only && chosen.length === 0) {
    throw new WinnowError('USAGE', `no pipeline named "${only}" in ${file}`, {
      hint: `pipelines: ${config.pipelines.map((p) => p.name).join(', ')}`,
    });
  }
  const pipelines = chosen.map((pipeline) => ({ pipeline, db: dbFor(pipeline, logger) }));
  return {
    config,
    pipelines,
    close: async () => {
      await Promise.all(pipelines.map((p) => p.db.close()));
    },
  };
}

type PipelineFlags = { config?: string | undefined; pipeline?: string | undefined };

/**
 * Runs a command over the pipelines of --config (only --pipeline when given)
 * with Kafka admins connected on demand; closes both whatever happens.
 */
export async function withPipelines<T>(
  flags: PipelineFlags,
  fn: (pipelines: Target[], admins: KafkaAdmins) => Promise<T>,
): Promise<T> {
  const loaded = await load(configPath(flags.config), flags.pipeline);
  const admins = new KafkaAdmins();
  try {
    return await fn(loaded.pipelines, admins);
  } finally {
    await admins.close();
    await loaded.close();
  }
}

/** withPipelines for a command that acts on one pipeline: the file's only one, or the one --pipeline names. */
export function withOnePipeline<T>(
  command: string,
  flags: PipelineFlags,
  fn: (target: Target, admins: KafkaAdmins) => Promise<T>,
): Promise<T> {
  return withPipelines(flags, (pipelines, admins) => {
    const [only, ...more] = pipelines;
    if (only === undefined || more.length > 0)
      throw new WinnowError('USAGE', `${command}: the file has several pipelines; choose one with --pipeline`);
    return fn(only, admins);
  });
}

/** The command lease: held when no daemon holds the pipeline, so a one-off command may write. */
export function commandLease({ pipeline, db }: Target): Promise<LeaseState> {
  return Lease.forCommand(db, pipeline.sink.database, pipeline.name);
}

/** Throws CONFLICT, naming the daemon, unless this command holds the pipeline's lease. */
export async function requireCommandLease(target: Target, hint: string): Promise<void> {
  const lease = await commandLease(target);
  if (!lease.held) {
    throw new WinnowError('CONFLICT', `pipeline ${target.pipeline.name} is run by a daemon (${lease.holder ?? '?'})`, {
      hint,
    });
  }
}
