/**
 * A local HTTP server that stands in for the chipledger API in the CLI's tests: CHIPLEDGER_URL
 * points at it, and its handler records what the CLI sent, so that "nothing was sent" is seen,
 * not assumed.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInApi {
  /** http://127.0.0.1:PORT, a port of its own. */
  url: string;
  close(): Promise<void>;
}

export async function startStandInApi(handler: RequestListener): Promise<StandInApi> {
  const server = createServer(handler);
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((closed) => server.close(() => closed())),
  };
}
