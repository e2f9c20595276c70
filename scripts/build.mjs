#!/usr/bin/env node
// npm run build (and `prepare`, so npm ci, npm install and npm pack): compiles src/ and dev/ to dist/ with
// tsconfig.build.json, then copies every file of src/ and dev/ that is not TypeScript (the .sql templates,
// static web assets such as src/server/ui/**) to the same place under dist/, where the compiled modules
// find them through `new URL('./x', import.meta.url)` as the sources do. dist/ is rebuilt from nothing,
// so a file deleted from the sources does not linger.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = path.join(root, 'dist');
const SOURCE_DIRS = ['src', 'dev'];

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
} catch {
  process.stderr.write('winnow build: tsc failed (its errors are above)\n');
  process.exit(1);
}

/** Every file under dir (relative to root) that tsc does not emit: not .ts. */
function assets(dir) {
  const out = [];
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...assets(rel));
    else if (!entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

let copied = 0;
for (const dir of SOURCE_DIRS) {
  for (const rel of assets(dir)) {
    mkdirSync(path.dirname(path.join(dist, rel)), { recursive: true });
    cpSync(path.join(root, rel), path.join(dist, rel));
    copied++;
  }
}
process.stdout.write(`winnow build: dist/ compiled from ${SOURCE_DIRS.join(', ')}; ${copied} asset files copied\n`);
