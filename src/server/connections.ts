import type { Server } from 'node:http';
import { isIPv6, type Socket } from 'node:net';
import { assert } from '../core/errors.ts';

/**
 * The bounds on connections (limits.connectionsMax, connectionsPerAddressMax): past either, a
 * new connection is closed as it is accepted, before a byte of it is read. Node closes those
 * over the first itself (maxConnections, telling 'drop'); the second is counted here, by the
 * address the connection comes from (an IPv6 address by its /64, addressGroup). Neither bound, nor the headers' timeout, can tell a
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
    if (socket.remoteAddress === undefined) return;
    const address = addressGroup(socket.remoteAddress);
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

/**
 * The client an address stands for, as the per-address bound counts it. An IPv4 address is
 * one client, also written IPv4-mapped (::ffff:192.0.2.1, as a dual-stack socket reports it).
 * An IPv6 address counts by its /64: a /64 is the least a network hands one subscriber, so a
 * single client holds 2^64 addresses and would otherwise pass the bound with a new one per
 * connection.
 */
export function addressGroup(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.split('%', 1)[0]!.toLowerCase().split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const after = tail === '' ? [] : tail.split(':');
    // An IPv4 tail (::1.2.3.4 forms) takes two groups; only the first four groups count here.
    const width = after.reduce((sum, group) => sum + (group.includes('.') ? 2 : 1), 0);
    groups.push(...Array.from({ length: 8 - groups.length - width }, () => '0'), ...after);
  }
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
