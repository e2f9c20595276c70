/**
 * Why one file over 300 lines: the lease protocol (terms, generations, releases, holder identity) is one invariant and is read as one.
 *
 * Only one daemon processes a pipeline at a time: the lease, in winnow_leases.
 *
 * Time is cut into terms of half a lease epoch. A daemon holds a term when its
 * claim is the one ClickHouse kept: claims for a term share one
 * insert_deduplication_token, so however many daemons race, exactly one row
 * is written, and reading it back tells each who won (a compare-and-set made
 * of insert deduplication, with no coordinator). The holder claims the next
 * term a fifth of an epoch into the current one, so it never holds more than
 * four fifths of an epoch ahead: a holder that dies is replaced within one
 * epoch, the standby's claim included.
 *
 * A claim cannot be undone (its token would deduplicate a second owner away),
 * so claims are per (term, generation): a term's generation is the number of
 * releases recorded for it, and the token is `lease:<pipeline>:<term>:<gen>`.
 * A holder that stops, or gives up because it cannot process, first stops
 * writing, then records a release of every term it still holds; the next claim
 * of such a term is its next generation, which anyone may win. Only a
 * generation's owner releases it, so a claimer that read an old generation
 * sends the token of a claim already written: ClickHouse drops it, and the
 * claimer reads back the current owner.
 *
 * Rows of protocol 1 are whole-epoch claims of daemons older than this
 * protocol (token `lease:<pipeline>:<epoch>`). Migration 0009 refuses new ones
 * for a migrated pipeline, and a daemon of this version stands by while one
 * still covers the present.
 */
import { randomUUID } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import path from 'node:path';
import { ClickHouseFailure, type Db } from '../clickhouse/client.ts';
import { qualified } from '../clickhouse/sql.ts';
import { tokenInsert } from '../clickhouse/token-dedup.ts';
import { WinnowError } from '../errors.ts';
import { LEASES_TABLE } from '../provisioning/objects.ts';

/** The protocol of the claims this code writes: 2, terms with generations and releases. */
export const LEASE_PROTOCOL = 2;

/**
 * Epoch length: a daemon that dies is replaced within one epoch; claims are
 * for half an epoch. WINNOW_LEASE_EPOCH_MS overrides it (tests use short
 * epochs); every process on a pipeline must use the same.
 */
export function leaseEpochMs(env: Record<string, string | undefined> = process.env): number {
  const v = env['WINNOW_LEASE_EPOCH_MS'];
  if (v === undefined) return 15_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1_000)
    throw new WinnowError('USAGE', `WINNOW_LEASE_EPOCH_MS must be an integer of at least 1000, got "${v}"`);
  return n;
}

export interface LeaseState {
  held: boolean;
  /** ms since the Unix epoch until which this process holds the pipeline (0 when not held) */
  heldUntil: number;
  /** who holds the current term, as last read (this process's identity when held) */
  holder: string | null;
  /** until when the holder holds, as far as this process knows (0: no one, or unknown) */
  holderUntil: number;
}

export interface LeaseOptions {
  /** default leaseEpochMs() */
  epochMs?: number;
  /** the clock, default Date.now */
  now?: () => number;
  /** who claims: a daemon (default), or a one-off command (check, replay, ...) yielding to any daemon: forCommand */
  role?: 'daemon' | 'command';
  /** this process's identity in the claims; default holderIdentity({ role }) */
  owner?: string;
}

/** A claim of a term's generation. */
interface Claim {
  term: number;
  gen: number;
}

/** What the leases table says about the terms from the current one on. */
interface View {
  /** per term: its current generation and that generation's owner (null: unclaimed) */
  terms: Map<number, { gen: number; owner: string | null }>;
  /** a protocol 1 claim (an older daemon) that covers the present, and until when */
  legacy: { owner: string; until: number } | null;
}

/** A one-off command's claims start with this; a daemon yields to none of them and they yield to any daemon. */
const COMMAND_PREFIX = 'cli:';

export function isCommandHolder(owner: string): boolean {
  return owner.startsWith(COMMAND_PREFIX);
}

/** The host's first external IPv4 address, if any. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return undefined;
}

/**
 * Who holds a lease, as one string an operator can act on: host name and
 * address, pid, the daemon's API address and its config file, and a random id
 * that tells two runs of one process apart, e.g.
 * `host=vm addr=10.0.0.5 pid=16038 api=http://10.0.0.5:8080 config=/etc/winnow.yaml id=c9847ce0`.
 * (Claims written before this format, `host:pid:id`, read as they are.)
 */
export function holderIdentity(opts: { role?: 'daemon' | 'command'; api?: string; config?: string } = {}): string {
  const addr = hostAddress();
  const parts = [`host=${hostname()}`];
  if (addr) parts.push(`addr=${addr}`);
  parts.push(`pid=${process.pid}`);
  // An API bound to every interface is reached at the host's address.
  if (opts.api) parts.push(`api=${opts.api.replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, `//${addr ?? hostname()}`)}`);
  if (opts.config) parts.push(`config=${path.resolve(opts.config)}`);
  parts.push(`id=${randomUUID().slice(0, 8)}`);
  return `${opts.role === 'command' ? COMMAND_PREFIX : ''}${parts.join(' ')}`;
}

export class Lease {
  readonly owner: string;
  readonly epochMs: number;
  /** a claim's length: half an epoch */
  readonly termMs: number;
  /**
   * How far into a term the holder claims the next one (a fifth of an epoch):
   * after a crash, the lease lasts at most an epoch less this margin, which
   * leaves the standby's claim its round trips within one epoch.
   */
  readonly aheadMs: number;
  private readonly now: () => number;
  private readonly table: string;
  /** the claims this process holds and has not released, by term */
  private held: Claim[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    database: string,
    private readonly pipeline: string,
    { epochMs = leaseEpochMs(), now = Date.now, role = 'daemon', owner }: LeaseOptions = {},
  ) {
    this.epochMs = epochMs;
    this.termMs = Math.floor(epochMs / 2);
    this.aheadMs = Math.floor(epochMs / 5);
    this.now = now;
    this.owner = owner ?? holderIdentity({ role });
    this.table = qualified(database, LEASES_TABLE);
  }

  /** One lease operation at a time: the runner's loop, its checker and the API share this object. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private holds(term: number): boolean {
    return this.held.some((c) => c.term === term);
  }

  /** Where this process's consecutive held terms from `term` on end (0: it does not hold `term`). */
  private heldUntil(term: number): number {
    let t = term;
    while (this.holds(t)) t++;
    return t === term ? 0 : t * this.termMs;
  }

  private async view(term: number, now: number): Promise<View> {
    let rows: { epoch: string; gen: number; kind: string; owner: string; protocol: number }[];
    try {
      rows = await this.db.rows(
        `SELECT epoch, gen, kind, owner, protocol FROM ${this.table}
         WHERE pipeline = {p:String}
           AND ((protocol >= 2 AND epoch >= {t:UInt64}) OR (protocol < 2 AND epoch >= {e:UInt64}))
         ORDER BY claimed_at, owner`,
        { p: this.pipeline, t: term, e: Math.max(0, Math.floor(now / this.epochMs) - 1) },
      );
    } catch (err) {
      throw this.explain(err);
    }
    const terms = new Map<number, { gen: number; owner: string | null }>();
    let legacy: View['legacy'] = null;
    for (const r of rows) {
      if (r.protocol >= 2 && r.kind === 'release') {
        const t = Number(r.epoch);
        terms.set(t, { gen: Math.max(terms.get(t)?.gen ?? 0, r.gen + 1), owner: null });
      }
    }
    for (const r of rows) {
      const n = Number(r.epoch);
      if (r.protocol < 2) {
        const until = (n + 1) * this.epochMs;
        if (until > now && (!legacy || until > legacy.until)) legacy = { owner: r.owner, until };
      } else if (r.kind === 'claim') {
        const cur = terms.get(n) ?? { gen: 0, owner: null };
        if (r.gen === cur.gen && cur.owner === null) terms.set(n, { gen: cur.gen, owner: r.owner });
      }
    }
    return { terms, legacy };
  }

  private explain(err: unknown): unknown {
    if (err instanceof ClickHouseFailure && (err.chCode === 47 || err.chCode === 16)) {
      return new WinnowError('MIGRATION', `${LEASES_TABLE} has no lease generations yet`, {
        hint: 'run winnow migrate up (migration 0010_lease_release)',
        cause: err,
      });
    }
    return err;
  }

  private async claim(c: Claim): Promise<void> {
    try {
      await this.db.command(
        `INSERT INTO ${this.table} (pipeline, epoch, gen, kind, owner, protocol) ` +
          `VALUES ({p:String}, {t:UInt64}, {g:UInt32}, 'claim', {o:String}, ${LEASE_PROTOCOL})`,
        { p: this.pipeline, t: c.term, g: c.gen, o: this.owner },
        tokenInsert(`lease:${this.pipeline}:${c.term}:${c.gen}`),
      );
    } catch (err) {
      throw this.explain(err);
    }
  }

  /** Claims `term` at its current generation unless it has an owner; returns the view (from `from` on) read back. */
  private async claimed(
    term: number,
    v: View,
    from: number,
    now: number,
  ): Promise<{ view: View; entry: { gen: number; owner: string | null } | undefined }> {
    const entry = v.terms.get(term);
    if (entry?.owner) return { view: v, entry };
    await this.claim({ term, gen: entry?.gen ?? 0 });
    const view = await this.view(from, now);
    return { view, entry: view.terms.get(term) };
  }

  /**
   * Claims what can be claimed and says until when this process holds the
   * pipeline. `ahead` (daemons): also the next term, once the current one is held.
   */
  acquire(ahead = true): Promise<LeaseState> {
    return this.serial(async () => {
      const now = this.now();
      const h = Math.floor(now / this.termMs);
      this.held = this.held.filter((c) => (c.term + 1) * this.termMs > now);
      const aheadDue = now >= h * this.termMs + this.aheadMs;
      if (this.holds(h) && (!ahead || !aheadDue || this.holds(h + 1))) return this.mine(h);
      let v = await this.view(h, now);
      if (v.legacy) {
        return {
          held: false,
          heldUntil: 0,
          holder: `${v.legacy.owner} (a winnow older than lease protocol 2)`,
          holderUntil: v.legacy.until,
        };
      }
      if (!this.holds(h)) {
        const r = await this.claimed(h, v, h, now);
        v = r.view;
        if (!r.entry?.owner || r.entry.owner !== this.owner) {
          const holder = r.entry?.owner ?? null;
          const next = v.terms.get(h + 1);
          const holderUntil = holder === null ? 0 : (next?.owner === holder ? h + 2 : h + 1) * this.termMs;
          return { held: false, heldUntil: 0, holder, holderUntil };
        }
        this.held.push({ term: h, gen: r.entry.gen });
      }
      if (ahead && aheadDue && !this.holds(h + 1)) {
        const r = await this.claimed(h + 1, v, h, now);
        if (r.entry?.owner === this.owner) this.held.push({ term: h + 1, gen: r.entry.gen });
      }
      return this.mine(h);
    });
  }

  /** Who holds the current term, read only (claims nothing): for views such as `winnow top`. */
  peek(): Promise<{ holder: string | null; holderUntil: number }> {
    return this.serial(async () => {
      const now = this.now();
      const h = Math.floor(now / this.termMs);
      const v = await this.view(h, now);
      if (v.legacy)
        return { holder: `${v.legacy.owner} (a winnow older than lease protocol 2)`, holderUntil: v.legacy.until };
      const holder = v.terms.get(h)?.owner ?? null;
      const next = v.terms.get(h + 1);
      return { holder, holderUntil: holder === null ? 0 : (next?.owner === holder ? h + 2 : h + 1) * this.termMs };
    });
  }

  /** When this process should next claim, as the holder: the next term, a fifth of an epoch into the current one. */
  renewalDueAt(now: number): number {
    const h = Math.floor(now / this.termMs);
    return (this.holds(h + 1) ? h + 1 : h) * this.termMs + this.aheadMs;
  }

  /** The longest slice a holder may start: what it holds just before it claims the next term. */
  get maxSliceMs(): number {
    return this.termMs - this.aheadMs;
  }

  private mine(h: number): LeaseState {
    const until = this.heldUntil(h);
    return { held: until > 0, heldUntil: until, holder: this.owner, holderUntil: until };
  }

  /**
   * Gives up every term this process holds: one release row each (one insert),
   * after which the next claim of those terms is a new generation. The caller
   * must have stopped writing: whoever reads the release may write at once.
   * Forgets the terms even if the insert fails (they then run out by
   * themselves). Returns how many terms it released.
   */
  release(note: string): Promise<number> {
    return this.serial(async () => {
      const now = this.now();
      const mine = this.held.filter((c) => (c.term + 1) * this.termMs > now);
      this.held = [];
      if (mine.length === 0) return 0;
      const params: Record<string, unknown> = { p: this.pipeline, o: this.owner, n: note };
      const values = mine.map((c, i) => {
        params[`t${i}`] = c.term;
        params[`g${i}`] = c.gen;
        return `({p:String}, {t${i}:UInt64}, {g${i}:UInt32}, 'release', {o:String}, ${LEASE_PROTOCOL}, {n:String})`;
      });
      try {
        await this.db.command(
          `INSERT INTO ${this.table} (pipeline, epoch, gen, kind, owner, protocol, note) VALUES ${values.join(', ')}`,
          params,
          tokenInsert(`release:${this.pipeline}:${mine.map((c) => `${c.term}.${c.gen}`).join(',')}`),
        );
      } catch (err) {
        throw this.explain(err);
      }
      return mine.length;
    });
  }

  /**
   * For one-off commands: held when no daemon holds the current term. Claims
   * only the current term (a daemon starting meanwhile waits for the next);
   * commands run one after another by an operator share it.
   */
  static async forCommand(db: Db, database: string, pipeline: string): Promise<LeaseState> {
    const lease = new Lease(db, database, pipeline, { role: 'command' });
    const s = await lease.acquire(false);
    const held = s.held || s.holder === null || isCommandHolder(s.holder);
    const end = (Math.floor(Date.now() / lease.termMs) + 1) * lease.termMs;
    return { held, heldUntil: held ? end : 0, holder: s.holder, holderUntil: s.holderUntil };
  }
}
