import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One form POST the recording hub received. */
export interface RecordedRequest {
  params: URLSearchParams;
  url: string;
  contentType: string | undefined;
}

/**
 * A hub that only records subscription requests and answers them, never verifying: for tests
 * that look at what the subscriber sent and at states before verification. Real socket.
 */
export interface RecordingHub {
  url: string;
  requests: RecordedRequest[];
  /** Status (and optional headers and body) of the next answers. */
  answer: { status: number; body?: string; headers?: Record<string, string> };
  close(): Promise<void>;
}

function readAll(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export async function startRecordingHub(path = '/hub'): Promise<RecordingHub> {
  const requests: RecordedRequest[] = [];
  const hub = { answer: { status: 202 } as RecordingHub['answer'] };

  const server: Server = createServer((request, response) => {
    void readAll(request).then((body) => {
      requests.push({
        params: new URLSearchParams(body),
        url: request.url ?? '',
        contentType: request.headers['content-type'],
      });
      response.writeHead(hub.answer.status, hub.answer.headers ?? {});
      response.end(hub.answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return Object.assign(hub, {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
