/**
 * The packaging files agree with each other and with the code: the compose daemon's configuration is valid
 * and addresses the compose network; the compose services, the Dockerfile and the systemd unit name the same
 * configuration path; the published `bin` runs what the build emits. (test/integration/pack.test.ts installs
 * and runs the tarball itself; the image cannot be built here, no Docker engine.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string): string => readFileSync(`${root}/${file}`, 'utf8');
const CONFIG_IN_IMAGE = '/etc/winnow/winnow.yaml';

describe('packaging', () => {
  it("the compose daemon's configuration is valid and uses the compose network's addresses", async () => {
    const config = await loadConfigFile(`${root}/docker/winnow/winnow.yaml`, {});
    expect(config.server.port).toBe(8080);
    for (const p of config.pipelines) {
      expect(p.sink.url).toBe('http://clickhouse:8123');
      for (const b of p.source.brokers) expect(b).toMatch(/^kafka:1909[23]$/);
    }
  });

  it('compose mounts that file where the image, its migrate step and the systemd unit read it', () => {
    const compose = parse(read('docker-compose.yaml'), { merge: true }) as {
      services: Record<string, { volumes?: string[]; command?: string[]; ports?: string[]; profiles?: string[] }>;
    };
    // The daemon and what it needs start with profile daemon, and with observability (Prometheus scrapes it).
    for (const name of ['kafka-topics', 'winnow', 'winnow-migrate']) {
      expect(compose.services[name]!.profiles).toEqual(['daemon', 'observability']);
    }
    for (const name of ['winnow', 'winnow-migrate']) {
      expect(compose.services[name]!.volumes).toContain(`./docker/winnow/winnow.yaml:${CONFIG_IN_IMAGE}:ro`);
    }
    for (const name of ['prometheus', 'grafana']) expect(compose.services[name]!.profiles).toEqual(['observability']);
    expect(compose.services['winnow-migrate']!.command).toEqual(['migrate', 'up', '--config', CONFIG_IN_IMAGE]);
    expect(compose.services['winnow']!.ports).toEqual(['127.0.0.1:8080:8080']);

    const dockerfile = read('Dockerfile');
    expect(dockerfile).toContain('ENTRYPOINT ["winnow"]');
    expect(dockerfile).toContain(`CMD ["run", "--config", "${CONFIG_IN_IMAGE}", "--host", "0.0.0.0"]`);
    expect(dockerfile).toMatch(/npm ci --omit=dev --omit=optional/);

    const unit = read('deploy/systemd/winnow.service');
    expect(unit).toMatch(new RegExp(`^ExecStart=\\S+/winnow run --config ${CONFIG_IN_IMAGE}$`, 'm'));
    for (const line of ['Restart=on-failure', 'KillSignal=SIGTERM', 'TimeoutStopSec=60', 'User=winnow']) {
      expect(unit.split('\n')).toContain(line);
    }
  });

  it('the bin runs what the build emits, and tsx is for development only', () => {
    const pkg = JSON.parse(read('package.json')) as {
      bin: Record<string, string>;
      files: string[];
      dependencies: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(pkg.bin).toEqual({ winnow: 'bin/winnow.mjs' });
    expect(pkg.files).toEqual(expect.arrayContaining(['bin/winnow.mjs', 'dist/']));
    expect(Object.keys(pkg.dependencies)).not.toContain('tsx');
    expect(pkg.scripts['prepare']).toBe(pkg.scripts['build']);
    // tsconfig.build.json compiles src/ and dev/ with rootDir "." into dist/: src/cli/main.ts -> dist/src/cli/main.js.
    const build = JSON.parse(read('tsconfig.build.json').replace(/^\s*\/\/.*$/gm, '')) as {
      compilerOptions: { rootDir: string; outDir: string };
      include: string[];
    };
    expect(build.compilerOptions).toMatchObject({ rootDir: '.', outDir: 'dist' });
    expect(build.include).toEqual(['src', 'dev']);
    expect(read('bin/winnow.mjs')).toContain("import('../dist/src/cli/main.js')");
    expect(existsSync(`${root}/src/cli/main.ts`)).toBe(true);
  });
});
