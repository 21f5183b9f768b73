// Worker threads do not inherit the parent's module hooks on Node 20, so the audit worker
// registers tsx itself before loading its TypeScript body (audit-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./audit-worker.ts');
