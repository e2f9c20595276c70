/**
 * Why one file over 300 lines: the cache's protocol (staging directory, marker, rename into place), Java's check and the Maven run that fills the cache share their paths and errors.
 *
 * The jars of the local Kafka broker, fetched from Maven Central with Maven and
 * cached outside the repository, so only the first run downloads (~55 jars,
 * ~46 MB). A download counts as complete only when its marker file exists; the
 * marker is written last and the directory is renamed into place, so an
 * interrupted or concurrent download is never mistaken for a finished one.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WinnowError } from '../src/errors.ts';
import { silentLogger, type Logger } from '../src/log.ts';
import { isAlive } from './process.ts';
import {
  KNOWN_JARS,
  MAVEN_CENTRAL,
  mavenUrl,
  parseDownloaded,
  renderSettings,
  type DownloadProgress,
} from './kafka-download.ts';

export type { DownloadProgress } from './kafka-download.ts';

/**
 * Apache Kafka 3.9.1 (org.apache.kafka:kafka_2.13:3.9.1): the newest line that
 * still serves every protocol version kafkajs 2.2.4 speaks. Kafka 4.x removed
 * the old API versions (KIP-896) that kafkajs still sends; 3.9 already runs
 * KRaft fully, so the broker needs no ZooKeeper. Re-exported by kafka.ts.
 */
export const KAFKA_VERSION = '3.9.1';

const MIN_JAVA = 17;
const COMPLETE_MARKER = '.winnow-complete';
const JAVA_HINT = 'install it, e.g. apt-get install -y openjdk-17-jre-headless';

export interface EnsureKafkaJarsOptions {
  /** Root of winnow's cache; default $WINNOW_CACHE_DIR, else ~/.cache/winnow. */
  cacheDir?: string;
  /** Kafka version; default KAFKA_VERSION. */
  version?: string;
  logger?: Logger;
  /** called as jars arrive: bytes of the jars downloaded so far, of `total` when the version's size is known */
  onProgress?: (p: DownloadProgress) => void;
}

export function defaultCacheDir(): string {
  const fromEnv = process.env['WINNOW_CACHE_DIR'];
  return fromEnv && fromEnv.trim() !== '' ? fromEnv : path.join(os.homedir(), '.cache', 'winnow');
}

/** `<cacheDir>/kafka-<version>/jars`, whether or not it has been downloaded. */
export function kafkaJarsDir(cacheDir: string, version: string): string {
  return path.join(cacheDir, `kafka-${version}`, 'jars');
}

/**
 * The directory holding the broker's jars (use it as `-cp '<dir>/*'`).
 * Checks Java first: Maven needs it too, and a cached download is useless without it.
 */
export async function ensureKafkaJars(opts: EnsureKafkaJarsOptions = {}): Promise<string> {
  const version = opts.version ?? KAFKA_VERSION;
  const logger = opts.logger ?? silentLogger;
  if (!/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new WinnowError('CONFIG_INVALID', `Kafka version "${version}" is not a version number`);
  }
  await checkJava();
  const repo = mavenUrl();

  const jarsDir = kafkaJarsDir(opts.cacheDir ?? defaultCacheDir(), version);
  if (existsSync(path.join(jarsDir, COMPLETE_MARKER))) return jarsDir;

  const versionDir = path.dirname(jarsDir);
  await mkdir(versionDir, { recursive: true });
  await removeAbandonedDownloads(versionDir, logger);
  const staging = path.join(versionDir, `download-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(staging, { recursive: true });
  try {
    const pom = path.join(staging, 'pom.xml');
    await writeFile(pom, renderPom(version));
    const settings = repo === MAVEN_CENTRAL ? undefined : path.join(staging, 'settings.xml');
    if (settings) await writeFile(settings, renderSettings(repo));
    const started = Date.now();
    logger.info('downloading the Kafka broker jars from Maven Central (first run only)', {
      version,
      into: jarsDir,
      from: repo,
    });
    const known = KNOWN_JARS[version];
    const total = known?.bytes;
    const counted = known ? new Set(known.names.map((n) => `${n}.jar`)) : undefined;
    const progress = opts.onProgress;
    await runMaven(pom, path.join(staging, 'jars'), logger, settings, counted, (bytes, files) =>
      progress?.({ bytes, total, files, from: repo }),
    );
    const { count, bytes } = await checkJars(path.join(staging, 'jars'), version);
    await writeFile(path.join(staging, 'jars', COMPLETE_MARKER), `${new Date().toISOString()}\n`);
    await moveIntoPlace(path.join(staging, 'jars'), jarsDir);
    progress?.({ bytes, total: bytes, files: count, from: repo, doneMs: Date.now() - started });
    logger.info('Kafka broker jars ready', {
      version,
      jars: count,
      mb: Math.round(bytes / 1e6),
      ms: Date.now() - started,
    });
    return jarsDir;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * The slf4j binding is not a dependency of kafka_2.13 (the distribution adds it
 * by hand); without it the broker logs nothing at all, not even why it exited.
 * Versions as in the Kafka 3.9 distribution's libs/.
 */
export function renderPom(version: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by winnow (dev/kafka-jars.ts): the local Kafka broker's runtime jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.winnow</groupId>
  <artifactId>winnow-local-kafka</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${version}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>1.2.25</version>
    </dependency>
  </dependencies>
</project>
`;
}

/** Throws JAVA_MISSING unless `java` on PATH is Java 17 or newer; returns its major version. */
export async function checkJava(): Promise<number> {
  let out: { code: number | null; output: string };
  try {
    out = await run('java', ['-version']);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new WinnowError(
        'JAVA_MISSING',
        'Java 17 or newer is required to run the local Kafka broker and was not found on PATH',
        { hint: JAVA_HINT, cause: err },
      );
    }
    throw err;
  }
  const major = parseJavaMajor(out.output);
  if (out.code !== 0 || major === undefined) {
    throw new WinnowError(
      'JAVA_MISSING',
      `\`java -version\` failed or was not understood: ${lastLines(out.output, 3)}`,
      {
        hint: JAVA_HINT,
      },
    );
  }
  if (major < MIN_JAVA) {
    throw new WinnowError(
      'JAVA_MISSING',
      `Java 17 or newer is required to run the local Kafka broker; \`java\` on PATH is Java ${major}`,
      { hint: JAVA_HINT },
    );
  }
  return major;
}

/** `openjdk version "17.0.15"` -> 17, `java version "1.8.0_381"` -> 8, `openjdk version "21" ...` -> 21. */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m?.[1]) return undefined;
  const first = Number(m[1]);
  return first === 1 && m[2] ? Number(m[2]) : first;
}

async function runMaven(
  pom: string,
  outDir: string,
  logger: Logger,
  settings: string | undefined,
  counted: Set<string> | undefined,
  onBytes: (bytes: number, files: number) => void,
): Promise<void> {
  const args = [
    '-B', // batch mode: one line per downloaded file, no progress bars
    ...(settings ? ['-s', settings] : []),
    '-f',
    pom,
    'dependency:copy-dependencies',
    `-DoutputDirectory=${outDir}`,
    '-DincludeScope=runtime',
  ];
  let result: { code: number | null; output: string };
  let files = 0;
  let jarBytes = 0;
  let jars = 0;
  onBytes(0, 0);
  const started = Date.now();
  const progress = setInterval(() => {
    logger.info('still downloading the Kafka broker jars', {
      files,
      seconds: Math.round((Date.now() - started) / 1000),
    });
  }, 5000);
  try {
    result = await run('mvn', args, (line) => {
      const m = /^\[INFO\] ((Downloaded from|Copying) .*)/.exec(line);
      if (!m?.[1]) return;
      if (m[2] === 'Downloaded from') files++;
      const d = parseDownloaded(line);
      const name = d?.url.slice(d.url.lastIndexOf('/') + 1) ?? '';
      if (d && name.endsWith('.jar') && (counted === undefined || counted.has(name))) {
        jarBytes += d.bytes;
        onBytes(jarBytes, ++jars);
      }
      logger.debug('maven', { line: m[1] });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new WinnowError(
        'MAVEN_MISSING',
        'Maven (`mvn`) is needed once to download the Kafka broker jars and was not found on PATH',
        { hint: 'apt-get install -y maven', cause: err },
      );
    }
    throw err;
  } finally {
    clearInterval(progress);
  }
  if (result.code !== 0) {
    throw new WinnowError(
      'DOWNLOAD_FAILED',
      `Maven could not download the Kafka broker jars (exit code ${result.code}):\n${mavenErrors(result.output)}`,
      {
        hint: `check network access to ${settings ? 'WINNOW_MAVEN_URL' : 'https://repo.maven.apache.org (or a mirror in ~/.m2/settings.xml, or set WINNOW_MAVEN_URL)'}, then retry`,
        retryable: true,
      },
    );
  }
}

async function checkJars(dir: string, version: string): Promise<{ count: number; bytes: number }> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jar'));
  if (!names.includes(`kafka_2.13-${version}.jar`)) {
    throw new WinnowError(
      'DOWNLOAD_FAILED',
      `Maven finished but kafka_2.13-${version}.jar is not among the ${names.length} jars in ${dir}`,
      {
        hint: 'check that the version exists on Maven Central',
      },
    );
  }
  let bytes = 0;
  for (const n of names) bytes += (await stat(path.join(dir, n))).size;
  return { count: names.length, bytes };
}

/** Staging dirs left by a download whose process is gone (killed mid-download). */
async function removeAbandonedDownloads(versionDir: string, logger: Logger): Promise<void> {
  for (const name of await readdir(versionDir)) {
    const pid = Number(/^download-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    logger.debug('removing an interrupted Kafka jar download', { dir: name });
    await rm(path.join(versionDir, name), { recursive: true, force: true });
  }
}

/** Renames the finished download over an unfinished one; a concurrent finished one wins. */
async function moveIntoPlace(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      if (existsSync(path.join(to, COMPLETE_MARKER))) return; // another process finished first
      if (attempt > 0) throw err;
      await rm(to, { recursive: true, force: true }); // an interrupted download
    }
  }
}

function run(
  cmd: string,
  args: string[],
  onLine?: (line: string) => void,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let pending = '';
    const take = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output += text;
      if (output.length > 200_000) output = output.slice(-100_000);
      if (!onLine) return;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** Maven's own [ERROR] lines without its boilerplate advice, else the last lines of its output. */
function mavenErrors(output: string): string {
  const lines = output.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const errors = lines.filter(
    (l) =>
      /^\[ERROR\] \S/.test(l) &&
      !/To see the full stack trace|Re-run Maven|For more information|\[Help \d+\] http/.test(l),
  );
  return errors.length > 0 ? errors.slice(0, 10).join('\n') : lastLines(lines.join('\n'), 20);
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
