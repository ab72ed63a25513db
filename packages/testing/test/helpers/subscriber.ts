import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A GET the subscriber received (verification of intent or denial). */
export interface ReceivedGet {
  /** The request target exactly as it arrived. */
  rawUrl: string;
  query: URLSearchParams;
  /** What the subscriber answered. */
  status: number;
}

/** A content distribution request the subscriber received. */
export interface ReceivedDelivery {
  path: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The subscriber's own verdict on X-Hub-Signature. */
  signature: 'valid' | 'invalid' | 'missing' | 'not-expected';
}

type VerifyAnswer = { status: number; body: string };

/**
 * A small WebSub subscriber written for these tests with node:http and node:crypto only: it
 * confirms only the intents it asked for, records deliveries and checks their HMAC.
 */
export interface TestSubscriber {
  readonly origin: string;
  readonly gets: ReceivedGet[];
  readonly deliveries: ReceivedDelivery[];
  /** Override the answer to a verification of intent; undefined falls back to the default. */
  onVerify?: (query: URLSearchParams) => VerifyAnswer | undefined;
  /** Stall deliveries without answering (to test timeouts and close()). */
  stall: boolean;
  callback(path: string): string;
  subscribe(
    hub: string,
    request: {
      topic: string;
      callback: string;
      mode?: 'subscribe' | 'unsubscribe';
      secret?: string;
      leaseSeconds?: number;
    },
  ): Promise<{ status: number; body: string; headers: Headers }>;
  close(): Promise<void>;
}

const DIGEST_HEX_LENGTH: Record<string, number> = {
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

function checkSignature(
  header: string | undefined,
  secret: string | undefined,
  body: Buffer,
): ReceivedDelivery['signature'] {
  if (secret === undefined) return 'not-expected';
  if (header === undefined) return 'missing';

  const [method, hex] = header.split('=', 2);
  const length = method ? DIGEST_HEX_LENGTH[method] : undefined;
  if (!method || !hex || length === undefined || hex.length !== length) return 'invalid';

  const expected = createHmac(method, secret).update(body).digest();
  const given = Buffer.from(hex, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'valid' : 'invalid';
}

export async function startTestSubscriber(): Promise<TestSubscriber> {
  const pending = new Map<string, { mode: string; topic: string; secret?: string }>();
  const secrets = new Map<string, string | undefined>();
  const gets: ReceivedGet[] = [];
  const deliveries: ReceivedDelivery[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://subscriber.invalid');

      if (req.method === 'GET') {
        const query = url.searchParams;
        const answer = subscriber.onVerify?.(query) ?? defaultAnswer(url.pathname, query);
        gets.push({ rawUrl: req.url ?? '/', query, status: answer.status });
        res.writeHead(answer.status, { 'Content-Type': 'text/plain' });
        res.end(answer.body);
        return;
      }

      const body = Buffer.concat(chunks);
      const signatureHeader = req.headers['x-hub-signature'];
      const signature = checkSignature(
        Array.isArray(signatureHeader) ? signatureHeader[0] : signatureHeader,
        secrets.get(url.pathname),
        body,
      );
      deliveries.push({
        path: url.pathname,
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body,
        signature,
      });
      if (subscriber.stall) return;

      // WebSub §8: a bad signature is acknowledged and ignored; a missing one is refused.
      res.writeHead(signature === 'missing' ? 403 : 202);
      res.end();
    });
  });

  function defaultAnswer(path: string, query: URLSearchParams): VerifyAnswer {
    const mode = query.get('hub.mode');
    if (mode === 'denied') return { status: 200, body: '' };

    const asked = pending.get(path);
    const challenge = query.get('hub.challenge');
    if (!asked || asked.mode !== mode || asked.topic !== query.get('hub.topic') || !challenge) {
      return { status: 404, body: 'not expected' };
    }

    secrets.set(path, mode === 'subscribe' ? asked.secret : undefined);
    return { status: 200, body: challenge };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  const subscriber: TestSubscriber = {
    origin,
    gets,
    deliveries,
    stall: false,
    callback: (path) => `${origin}${path}`,

    async subscribe(hub, request) {
      const mode = request.mode ?? 'subscribe';
      const form = new URLSearchParams({
        'hub.mode': mode,
        'hub.topic': request.topic,
        'hub.callback': request.callback,
      });
      if (request.secret !== undefined) form.set('hub.secret', request.secret);
      if (request.leaseSeconds !== undefined) {
        form.set('hub.lease_seconds', String(request.leaseSeconds));
      }

      // Stored before the request is sent: a hub may verify before it answers.
      pending.set(new URL(request.callback).pathname, {
        mode,
        topic: request.topic,
        secret: request.secret,
      });

      const response = await fetch(hub, { method: 'POST', body: form });
      return { status: response.status, body: await response.text(), headers: response.headers };
    },

    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  return subscriber;
}
