/**
 * Only one daemon processes a pipeline at a time. Time is cut into epochs; a
 * daemon holds an epoch when its claim row is the one ClickHouse kept. Claims
 * for an epoch share one insert_deduplication_token, so however many daemons
 * race, exactly one row is written, and reading it back tells each who won:
 * a compare-and-set made of insert deduplication, with no coordinator.
 * The holder claims the next epoch while it holds the current one, so a
 * standby takes over only after the holder stopped claiming (within two epochs).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../clickhouse/client.ts';
import { qualified } from '../clickhouse/sql.ts';
import { tokenInsert } from '../clickhouse/token-dedup.ts';
import { WinnowError } from '../errors.ts';
import { LEASES_TABLE } from '../provisioning/objects.ts';

/**
 * Epoch length: a daemon that dies is replaced within two epochs; a slice must
 * fit in what is left of the held time. WINNOW_LEASE_EPOCH_MS overrides it
 * (tests use short epochs); every process on a pipeline must use the same.
 */
export function leaseEpochMs(env: Record<string, string | undefined> = process.env): number {
  const v = env['WINNOW_LEASE_EPOCH_MS'];
  if (v === undefined) return 15_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1_000) throw new WinnowError('USAGE', `WINNOW_LEASE_EPOCH_MS must be an integer of at least 1000, got "${v}"`);
  return n;
}

export interface LeaseState {
  held: boolean;
  /** ms since the Unix epoch until which this daemon holds the pipeline (0 when not held) */
  heldUntil: number;
  holder: string | null;
}

export interface LeaseOptions {
  /** default leaseEpochMs() */
  epochMs?: number;
  /** the clock, default Date.now */
  now?: () => number;
  /** who claims: a daemon (default), or a one-off command (check, replay, ...) that yields to any daemon: see forCommand */
  role?: 'daemon' | 'command';
}

export class Lease {
  readonly owner: string;
  readonly epochMs: number;
  private readonly now: () => number;
  private readonly table: string;
  private readonly owners = new Map<number, string>();

  constructor(
    private readonly db: Db,
    database: string,
    private readonly pipeline: string,
    { epochMs = leaseEpochMs(), now = Date.now, role = 'daemon' }: LeaseOptions = {},
  ) {
    this.epochMs = epochMs;
    this.now = now;
    this.owner = `${role === 'command' ? 'cli:' : ''}${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.table = qualified(database, LEASES_TABLE);
  }

  private async ownerOf(epoch: number, claim: boolean): Promise<string | null> {
    const known = this.owners.get(epoch);
    if (known) return known;
    if (claim) {
      await this.db.command(
        `INSERT INTO ${this.table} (pipeline, epoch, owner) VALUES ({p:String}, {e:UInt64}, {o:String})`,
        { p: this.pipeline, e: epoch, o: this.owner },
        tokenInsert(`lease:${this.pipeline}:${epoch}`),
      );
    }
    const rows = await this.db.rows<{ owner: string }>(
      `SELECT owner FROM ${this.table} WHERE pipeline = {p:String} AND epoch = {e:UInt64} ORDER BY claimed_at LIMIT 1`,
      { p: this.pipeline, e: epoch },
    );
    const owner = rows[0]?.owner ?? null;
    if (owner) this.owners.set(epoch, owner);
    for (const e of this.owners.keys()) if (e < epoch - 2) this.owners.delete(e);
    return owner;
  }

  /**
   * For one-off commands: held when no daemon holds the current epoch. Claims
   * only the current epoch (a daemon starting meanwhile waits for the next);
   * commands run one after another by an operator share it.
   */
  static async forCommand(db: Db, database: string, pipeline: string): Promise<LeaseState> {
    const lease = new Lease(db, database, pipeline, { role: 'command' });
    const e = Math.floor(Date.now() / lease.epochMs);
    const holder = await lease.ownerOf(e, true);
    const held = holder === null || holder.startsWith('cli:');
    return { held, heldUntil: held ? (e + 1) * lease.epochMs : 0, holder };
  }

  /** Claim what can be claimed and say until when this daemon holds the pipeline. */
  async acquire(): Promise<LeaseState> {
    const e = Math.floor(this.now() / this.epochMs);
    const current = await this.ownerOf(e, true);
    if (current !== this.owner) return { held: false, heldUntil: 0, holder: current };
    const next = await this.ownerOf(e + 1, true);
    return { held: true, heldUntil: (next === this.owner ? e + 2 : e + 1) * this.epochMs, holder: this.owner };
  }
}
