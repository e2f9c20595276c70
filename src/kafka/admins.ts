/** Kafka admin clients, one per pipeline, shared by the commands and the daemon's API. */
import type { Admin, Kafka } from 'kafkajs';
import type { PipelineConfig } from '../config/schema.ts';
import { kafkaFor } from './client.ts';
import { topicOffsets, type PartitionOffsets } from './offsets.ts';

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

  /** The admin, or undefined when Kafka cannot be reached (a replay then works from staging alone). */
  adminIfReachable(p: PipelineConfig): Promise<Admin | undefined> {
    return this.admin(p).catch(() => undefined);
  }

  async offsets(p: PipelineConfig): Promise<PartitionOffsets[]> {
    const admin = await this.admin(p);
    return topicOffsets(admin, p.source.topics, p.source.consumerGroup);
  }

  /** A client and the offsets read through this admin: what the checker and the daemon need of Kafka. */
  access(p: PipelineConfig): { client: Kafka; offsets: () => Promise<PartitionOffsets[]> } {
    return { client: kafkaFor(p), offsets: () => this.offsets(p) };
  }

  async close(): Promise<void> {
    const all = [...this.admins.values()];
    this.admins.clear();
    await Promise.allSettled(all.map(async (a) => (await a).disconnect()));
  }
}
