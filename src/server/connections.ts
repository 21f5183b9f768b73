import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { assert } from '../core/errors.ts';

/**
 * The bounds on connections (limits.connectionsMax, connectionsPerAddressMax): past either, a
 * new connection is closed as it is accepted, before a byte of it is read. Node closes those
 * over the first itself (maxConnections, telling 'drop'); the second is counted here, by the
 * address the connection comes from. Neither bound, nor the headers' timeout, can tell a
 * client behind a reverse proxy from another: there the proxy must bound each client.
 */
export class ConnectionBounds {
  /** Connections open now, those closed at once not among them. */
  open = 0;
  refused = 0;
  refusedPerAddress = 0;
  /** Open connections by remote address; an address leaves when its last one closes, so at most connectionsMax entries. */
  private readonly byAddress = new Map<string, number>();

  constructor(server: Server, readonly connectionsMax: number, private readonly perAddressMax: number) {
    assert(perAddressMax > 0 && perAddressMax <= connectionsMax, 'one address may hold at most every connection');
    server.maxConnections = connectionsMax;
    server.on('drop', () => (this.refused += 1));
    // After Node's own listener (registered when the server was made): a socket destroyed
    // here is one Node already tracks, and forgets as it closes.
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    // No address: the connection is gone already, and Node closes it.
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const held = this.byAddress.get(address) ?? 0;
    if (held >= this.perAddressMax) {
      this.refusedPerAddress += 1;
      socket.destroy();
      return;
    }
    this.byAddress.set(address, held + 1);
    this.open += 1;
    socket.once('close', () => {
      this.open -= 1;
      const left = this.byAddress.get(address)! - 1;
      if (left === 0) this.byAddress.delete(address);
      else this.byAddress.set(address, left);
    });
  }
}
