#!/usr/bin/env node
// The `winnow` command: the compiled CLI in dist/ (`npm run build`; `prepare` builds it on npm ci, npm install
// and npm pack). Development runs the TypeScript sources instead: scripts/winnow-src.mjs (`npm run winnow`),
// which the tests use, so they never run a stale dist/.
let main;
try {
  ({ main } = await import('../dist/src/cli/main.js'));
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    process.stderr.write('winnow: dist/ is missing (a checkout that was not built): run `npm run build`\n');
    process.exit(1);
  }
  throw err;
}
process.exitCode = await main(process.argv.slice(2));
