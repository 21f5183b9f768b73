/**
 * A TCP proxy in front of the test database that can stop forwarding, both ways, without
 * closing anything: a database frozen (SIGSTOP of the postmaster and its backends) or cut off
 * by a partition, as the ops review froze it. Bytes stop moving and no error comes, and the
 * server enforces none of its own timeouts on what it never received. It can also stand for a
 * PostgreSQL stopped: every connection closed, and new ones closed as they come.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class FreezingProxy {
  private frozen = false;
  private refusing = false;
  private readonly sockets = new Set<Socket>();
  private readonly held: Array<() => void> = [];
  readonly server: Server;

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      const upstream = connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => this.sockets.delete(socket));
      }
      this.forward(client, upstream);
      this.forward(upstream, client);
    });
  }

  /** Starts a proxy to the database at `url`; returns it and the same URL through it. */
  static async to(url: string): Promise<{ proxy: FreezingProxy; url: string }> {
    const through = new URL(url);
    const proxy = new FreezingProxy({ host: through.hostname, port: Number(through.port || 5432) });
    through.host = `127.0.0.1:${await proxy.listen()}`;
    return { proxy, url: through.toString() };
  }

  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.frozen) this.held.push(() => to.write(chunk));
      else to.write(chunk);
    });
    from.on('close', () => to.destroy());
  }

  async listen(): Promise<number> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return (this.server.address() as { port: number }).port;
  }

  freeze(): void {
    this.frozen = true;
  }

  /** Forwards again, the bytes held first (to a connection closed meanwhile, they are dropped). */
  thaw(): void {
    this.frozen = false;
    for (const write of this.held.splice(0)) write();
  }

  /** As if PostgreSQL stopped: the connections through the proxy are closed, and new ones closed at once. */
  stop(): void {
    this.refusing = true;
    for (const socket of this.sockets) socket.destroy();
  }

  /** As if PostgreSQL started again: connections go through. */
  start(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((done) => this.server.close(done));
  }
}
