import http from 'node:http';

/** A response with its header fields exactly as they came (repeated names kept apart). */
export interface RawResponse {
  status: number;
  rawHeaders: Array<[string, string]>;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One plain node:http request that follows no redirects, to see exactly what a server sends. */
export function rawRequest(
  url: string,
  options: { method?: string; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const rawHeaders: Array<[string, string]> = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          rawHeaders.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
        }
        resolve({
          status: res.statusCode ?? 0,
          rawHeaders,
          headers: res.headers,
          body: Buffer.concat(chunks),
        });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The values of every field with this name, in order. */
export function fieldValues(rawHeaders: Array<[string, string]>, name: string): string[] {
  return rawHeaders.filter(([field]) => field.toLowerCase() === name).map(([, value]) => value);
}
