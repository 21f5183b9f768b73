/**
 * A small JSON client over node:http for tests that kill the server under it. Each client
 * has its own keep-alive agent (so connections to a killed server are never reused for the
 * next one: `close()` destroys them), and every request has a time bound. A request either
 * gets a complete answer (status, headers, parsed body) or throws: a throw is a request the
 * server never acknowledged.
 */
import { Agent, request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface HttpClient {
  send(method: 'GET' | 'POST', path: string, options?: { body?: unknown; headers?: Record<string, string> }): Promise<HttpAnswer>;
  close(): void;
}

export function httpClient(baseUrl: string, token: string, options: { connections: number; timeoutMs: number }): HttpClient {
  const base = new URL(baseUrl);
  if (base.hostname !== '127.0.0.1' && base.hostname !== 'localhost' && base.hostname !== '[::1]') throw new Error(`httpClient: loopback only, not ${baseUrl}`);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  return {
    send(method, path, { body, headers = {} } = {}) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
      return new Promise<HttpAnswer>((done, fail) => {
        const req = request(new URL(path, base), {
          method,
          agent,
          timeout: options.timeoutMs,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...headers,
          },
        }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', fail);
          res.on('aborted', () => fail(new Error(`${method} ${path}: the answer was cut off`)));
          res.on('end', () => {
            if (!res.complete) return fail(new Error(`${method} ${path}: the answer was cut off`));
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? null : JSON.parse(text);
            } catch {
              // not JSON: keep the text, the caller's expectations will show it
            }
            done({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs} ms`)));
        req.on('error', fail);
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}
