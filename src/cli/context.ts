/** What the commands share: the configuration, one ClickHouse connection and Kafka admin per pipeline. */
import type { Admin } from 'kafkajs';
import { connect, type Db } from '../clickhouse/client.ts';
import { loadConfigFile, resolveSecret } from '../config/load.ts';
import type { PipelineConfig, WinnowConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { kafkaFor } from '../kafka/client.ts';
import { topicOffsets, type PartitionOffsets } from '../kafka/offsets.ts';
import { parseOffsets, parseTimestamp, type ReplayBound } from '../operations/replay.ts';

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

/** Parses a replay bound given as text: offsets (P:O or TOPIC/P:O lists) or a timestamp. */
export function replayBound(text: string, kind: 'offsets' | 'timestamp'): ReplayBound {
  return kind === 'offsets' ? { kind, offsets: parseOffsets(text) } : { kind, ms: parseTimestamp(text) };
}

/** Kafka admin clients, connected on first use and kept. */
export class KafkaAdmins {
  private readonly admins = new Map<string, Promise<Admin>>();

  admin(p: PipelineConfig): Promise<Admin> {
    let a = this.admins.get(p.name);
    if (!a) {
      const admin = kafkaFor(p).admin();
      a = admin.connect().then(() => admin);
      a.catch(() => this.admins.delete(p.name));
      this.admins.set(p.name, a);
    }
    return a;
  }

  async offsets(p: PipelineConfig): Promise<PartitionOffsets[]> {
    const admin = await this.admin(p);
    return topicOffsets(admin, p.source.topics, p.source.consumerGroup);
  }

  async close(): Promise<void> {
    const all = [...this.admins.values()];
    this.admins.clear();
    await Promise.allSettled(all.map(async (a) => (await a).disconnect()));
  }
}
