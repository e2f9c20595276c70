import { WinnowError } from '../errors.ts';
import { KafkaAdmins } from '../kafka/admins.ts';
import { createLogger } from '../log.ts';
import { Daemon } from '../daemon/daemon.ts';
import { faultHooks } from '../slicing/faults.ts';
import { buildApp } from '../server/app.ts';
import { WinnowMetrics } from '../server/metrics.ts';
import { liveDeps } from '../server/live.ts';
import { parseFlags, parsePort, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, configPath, load } from './context.ts';
import type { Check } from '../provisioning/preflight.ts';
import { passesPreflight } from './preflight.ts';

const help = `Usage: winnow run [--config FILE] [--port N] [--host ADDR]

The controller daemon. Every pipeline in the file gets a tick (schedule.interval);
each tick takes the next slice of staged rows (per-partition offset ranges),
inserts its first occurrences whose key was not seen within the window into the
final table, and records the slice. Serves the HTTP API meanwhile. SIGTERM or
Ctrl-C finishes the slice in flight, releases the lease (a standby takes over
at once), then exits 0. Every line it prints is JSON.

Before it starts, the pre-flight of winnow config check runs (with the grants
run needs): each failed check is one JSON line (level error, its key), and
the exit code is 1. A server that does not answer yet is logged as a warning,
and the daemon starts and retries.

Options:
  ${CONFIG_FLAG_HELP}
  --port N        HTTP API port        (default: server.port of the file, 8080; 0 = any free port)
  --host ADDR     HTTP API address     (default 127.0.0.1)

Environment: WINNOW_LOG_LEVEL        debug | info | warn | error (default info)
             WINNOW_LEASE_EPOCH_MS  lease epoch (default 15000): one daemon processes a pipeline;
                                    a standby takes over within one epoch of the holder's death,
                                    at once when it stops, and when it fails for two epochs
             WINNOW_FAULT           testing only: <step>@<slice seq> kills the daemon at that step;
                                    fail:<step> makes every slice fail there

API: GET /healthz, /readyz, /api/v1/pipelines, /api/v1/pipelines/:name/stats,
     /api/v1/pipelines/:name/slices?limit=N, /api/v1/pipelines/:name/consistency,
     /api/v1/pipelines/:name/history?minutes=N, .../deadletters, .../checks, .../replays,
     /api/v1/pipelines/:name/replays/:id, /metrics, /api/v1/openapi.json;
     POST /api/v1/pipelines/:name/replay (queues a replay job; needs the api.replayToken)
Web page: GET / (pipelines, charts of the last hour, lag, slices, dead letters, checks, replays)

Replays: between slices, the daemon holding a pipeline runs its replay jobs (winnow
replay, winnow deadletters replay, POST .../replay) and resumes those a dead holder left.`;

const flags = {
  config: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
} as const;

export const runCommand: Command = {
  name: 'run',
  summary: 'run the controller daemon and its HTTP API',
  help,
  jsonLog: true,
  async run(args) {
    const { values, positionals } = parseFlags('run', args, flags, false);
    void positionals;
    const level = process.env['WINNOW_LOG_LEVEL'] ?? 'info';
    if (!['debug', 'info', 'warn', 'error'].includes(level)) {
      throw new WinnowError('USAGE', `WINNOW_LOG_LEVEL must be debug, info, warn or error, got "${level}"`);
    }
    const logger = createLogger({ level: level as 'info' });
    // Node's own warnings too: every line `winnow run` prints is JSON.
    process.removeAllListeners('warning');
    process.on('warning', (w) => logger.warn(`node: ${w.message}`, { name: w.name }));
    const file = configPath(values.config);
    const loaded = await load(file, undefined, logger);
    const port = parsePort('run', 'port', values.port, loaded.config.server.port);
    const preflight = {
      grants: ['run' as const],
      outcome: 'not started',
      ok: (line: string) => logger.info(line),
      fail: (line: string, check?: Check) =>
        logger.error(line, { command: 'run', ...(check ? { key: check.key } : {}) }),
      unreachable: (line: string, check: Check) =>
        logger.warn(`${line}; starting anyway, retrying until it answers`, { key: check.key }),
    };
    const passed = await passesPreflight(loaded.config, loaded.pipelines, preflight).catch(async (err: unknown) => {
      await loaded.close();
      throw err;
    });
    if (!passed) {
      await loaded.close();
      return 1;
    }
    const admins = new KafkaAdmins();
    const handles = loaded.pipelines.map((h) => ({ ...h, kafka: admins.access(h.pipeline) }));
    const metrics = new WinnowMetrics();
    const daemon = new Daemon(handles, logger, faultHooks(process.env['WINNOW_FAULT']), { observer: metrics });
    try {
      await daemon.verifyDeduplication();
    } catch (err) {
      await admins.close();
      await loaded.close();
      throw err;
    }

    const app = buildApp(liveDeps({ pipelines: loaded.pipelines, daemon, admins, logger }), { metrics });
    const address = await app.listen({ port, host: values.host ?? '127.0.0.1' });
    logger.info('winnow running', { api: address, pipelines: loaded.pipelines.map((p) => p.pipeline.name) });
    daemon.start({ api: address, config: file });

    await new Promise<void>((resolve) => {
      const onSignal = (signal: string): void => {
        logger.info('stopping: finishing the slice in flight', { signal });
        resolve();
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
    });
    await daemon.stop();
    await app.close();
    await admins.close();
    await loaded.close();
    logger.info('stopped');
    return 0;
  },
};
