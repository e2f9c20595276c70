/** kafkajs clients built from a pipeline's source configuration. */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { PipelineConfig } from '../config/schema.ts';
import { resolveSecret } from '../config/load.ts';

export function kafkaConfigFor(p: PipelineConfig, env: Record<string, string | undefined> = process.env): KafkaConfig {
  const a = p.source.auth;
  const ssl = a.protocol === 'SSL' || a.protocol === 'SASL_SSL';
  const config: KafkaConfig = {
    clientId: `winnow-${p.name}`,
    brokers: p.source.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5_000,
    requestTimeout: 15_000,
    retry: { retries: 2 },
  };
  if (ssl) config.ssl = p.source.tls?.ca ? { ca: [readFileSync(p.source.tls.ca, 'utf8')] } : true;
  if (a.protocol === 'SASL_PLAINTEXT' || a.protocol === 'SASL_SSL') {
    const password =
      a.password === undefined ? '' : resolveSecret(a.password, env, `pipelines.${p.name}.source.auth.password`);
    const username = a.username ?? '';
    const mechanism = (a.mechanism ?? 'PLAIN').toLowerCase() as 'plain' | 'scram-sha-256' | 'scram-sha-512';
    config.sasl = { mechanism, username, password } as SASLOptions;
  }
  return config;
}

export function kafkaFor(p: PipelineConfig): Kafka {
  return new Kafka(kafkaConfigFor(p));
}
