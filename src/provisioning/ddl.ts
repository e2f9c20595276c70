import { renderSqlFile } from '../clickhouse/sql.ts';

/** Renders one DDL template of `src/provisioning/sql/` (`name` without `.sql`). */
export function renderDdl(name: string, vars: Record<string, string>): string {
  return renderSqlFile(new URL(`./sql/${name}.sql`, import.meta.url), vars);
}
