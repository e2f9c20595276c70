/** What the commands share: the configuration, one ClickHouse connection and Kafka admin per pipeline. */
import { connect, type Db } from '../clickhouse/client.ts';
import { loadConfigFile, resolveSecret } from '../config/load.ts';
import type { PipelineConfig, WinnowConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';

export const CONFIG_FLAG_HELP = '--config FILE   pipeline definition (YAML; default ./winnow.yaml or $WINNOW_CONFIG)';

export function configPath(flag: string | undefined): string {
  return flag ?? process.env['WINNOW_CONFIG'] ?? 'winnow.yaml';
}

export interface Loaded {
  config: WinnowConfig;
  pipelines: { pipeline: PipelineConfig; db: Db }[];
  close(): Promise<void>;
}

export function dbFor(p: PipelineConfig): Db {
  const password = p.sink.password === undefined ? undefined : resolveSecret(p.sink.password, process.env, `pipelines.${p.name}.sink.password`);
  return connect({ url: p.sink.url, user: p.sink.user, ...(password === undefined ? {} : { password }) });
}

export function kafkaPasswordFor(p: PipelineConfig): string | undefined {
  const pw = p.source.auth.password;
  return pw === undefined ? undefined : resolveSecret(pw, process.env, `pipelines.${p.name}.source.auth.password`);
}

export async function load(file: string, only?: string): Promise<Loaded> {
  const config = await loadConfigFile(file);
  const chosen = only ? config.pipelines.filter((p) => p.name === only) : config.pipelines;
  if (only && chosen.length === 0) {
    throw new WinnowError('USAGE', `no pipeline named "${only}" in ${file}`, { hint: `pipelines: ${config.pipelines.map((p) => p.name).join(', ')}` });
  }
  const pipelines = chosen.map((pipeline) => ({ pipeline, db: dbFor(pipeline) }));
  return {
    config,
    pipelines,
    close: async () => {
      await Promise.all(pipelines.map((p) => p.db.close()));
    },
  };
}
