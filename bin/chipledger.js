#!/usr/bin/env node
// Thin launcher: runs the TypeScript CLI through tsx so no build step is needed.
//
// tsx's disk cache is off: it keeps compiled files in $TMPDIR/tsx-<uid> and runs what it finds
// there without checking who made the folder, so another local user who made it first (after
// a reboot empties /tmp) would run code as chipledger's user. Compiling at each start costs
// about a second. The setting must be in place before tsx loads, so tsx is imported here, not
// by a static import (those run before this file's first line).
process.env.TSX_DISABLE_CACHE = '1';
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/main.ts');
