import type cron from 'node-cron';
import type { Logger } from '../log.ts';

/**
 * node-cron's messages (a run skipped because the previous check still runs,
 * a missed run) as JSON lines of winnow's logger: debug level, since the check
 * reports its own outcome.
 */
export function cronLogger(logger: Logger, pipeline: string): CronLogger {
  const text = (m: string | Error): string => (m instanceof Error ? m.message : m).replace(/\x1b\[[0-9;]*m/g, '');
  return {
    info: (m) => logger.debug('scheduler', { pipeline, message: text(m) }),
    warn: (m) => logger.debug('scheduler', { pipeline, message: text(m) }),
    error: (m, err) => logger.warn('scheduler', { pipeline, message: text(m), ...(err ? { error: err.message } : {}) }),
    debug: (m) => logger.debug('scheduler', { pipeline, message: text(m) }),
  };
}

type CronLogger = NonNullable<Parameters<typeof cron.schedule>[2]>['logger'] & object;
