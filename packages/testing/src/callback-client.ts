import http from 'node:http';
import https from 'node:https';

import { TestHubError } from './errors.js';

/** A callback's answer, with the body as raw bytes. */
export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request from the hub to a callback. */
export interface CallbackRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Array<[string, string]>;
  body?: Buffer;
  timeoutMs: number;
  signal: AbortSignal;
  /** Agents without keep-alive, so that no pooled socket outlives the hub. */
  agents: { http: http.Agent; https: https.Agent };
}

// A callback has no business answering with more; beyond this it is broken or hostile.
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * Send one request to a callback and read the whole answer. Uses node:http rather than fetch
 * so that the fields on the wire are exactly the ones given, in order, repeated names included.
 */
export function sendToCallback(request: CallbackRequest): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const secure = request.url.protocol === 'https:';
    const client = (secure ? https : http).request(request.url, {
      method: request.method,
      signal: request.signal,
      agent: secure ? request.agents.https : request.agents.http,
    });

    const timer = setTimeout(() => {
      client.destroy(
        new TestHubError(
          'timeout',
          `${request.url.origin} did not answer within ${request.timeoutMs} ms`,
        ),
      );
    }, request.timeoutMs);

    for (const [name, value] of request.headers) client.appendHeader(name, value);
    if (request.body) client.setHeader('Content-Length', String(request.body.length));

    client.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });

    client.on('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;

      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          client.destroy(new Error(`Answer from ${request.url.origin} exceeds 1 MiB`));
          return;
        }
        chunks.push(chunk);
      });

      response.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks),
        });
      });

      response.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });

    client.end(request.body);
  });
}

/**
 * Add parameters to a callback URL without touching the query string it already has: the
 * subscriber may rely on its own parameters arriving byte for byte (WebSub §5.3).
 */
export function withParams(callback: string, params: Record<string, string>): URL {
  const url = new URL(callback);
  const added = new URLSearchParams(params).toString();

  url.hash = '';
  url.search = url.search ? `${url.search}&${added}` : `?${added}`;
  return url;
}
