#!/usr/bin/env node
// `winnow` from the TypeScript sources through tsx (a development dependency): `npm run winnow -- <args>`.
// Tests spawn this one (test/support/cli.ts), so they always run the code as it is, never a stale dist/;
// bin/winnow.mjs runs the compiled dist/ and is what installs ship (test/integration/pack.test.ts runs it).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
