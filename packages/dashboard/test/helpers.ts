import { randomUUID } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  createMemoryQueue,
  createSubscriber,
  type MemoryQueue,
  type Subscriber,
  type SubscriberOptions,
  type Subscription,
} from '@websubsub/core';
import { createKoaMiddleware } from '@websubsub/koa';
import Koa from 'koa';

import { createDashboard, type Dashboard, type DashboardOptions } from '../src/index.js';

/** A subscriber and its dashboard served by one Koa app on a real port of 127.0.0.1. */
export interface DashboardApp {
  origin: string;
  subscriber: Subscriber;
  dashboard: Dashboard;
  queue: MemoryQueue;
  received: number;
  close(): Promise<void>;
}

export type AppOptions = Partial<Omit<DashboardOptions, 'subscriber'>> & {
  subscriber?: Partial<SubscriberOptions>;
  /** Leave out `token` and `authorize` as given (to test the options' checks). */
  raw?: boolean;
};

/** The token the test apps use unless told otherwise. */
export const TOKEN = 'test-dashboard-token';

export async function startDashboardApp(options: AppOptions = {}): Promise<DashboardApp> {
  let listener: RequestListener | null = null;
  const server: Server = createServer((request, response) => {
    if (listener) listener(request, response);
    else response.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const queue = createMemoryQueue({ backoffMs: 10 });
  const state = { received: 0 };
  const { subscriber: subscriberOptions, raw: _raw, ...dashboardOptions } = options;
  const subscriber = createSubscriber({
    baseUrl: origin,
    handlers: {
      news: () => void state.received++,
      podcasts: () => void state.received++,
    },
    queue,
    upkeep: false,
    ...subscriberOptions,
  });
  const auth =
    dashboardOptions.authorize || dashboardOptions.token ? {} : { token: TOKEN as string };
  const dashboard = createDashboard({ subscriber, ...auth, ...dashboardOptions });

  const app = new Koa();
  app.use(createKoaMiddleware(subscriber));
  app.use(createKoaMiddleware(dashboard));
  listener = app.callback();
  await subscriber.start();

  return {
    origin,
    subscriber,
    dashboard,
    queue,
    get received() {
      return state.received;
    },
    async close() {
      dashboard.close();
      await subscriber.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An answer with its body read, white space squashed (see `squash`). */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * Markup with every run of white space made one space, none before `>`, and no `<wbr>`: the
 * formatter lays out the templates freely, URLs get line-break hints, and a browser shows the
 * same text either way.
 */
export function squash(markup: string): string {
  return markup
    .replace(/\s+/g, ' ')
    .replace(/ >/g, '>')
    .replace(/<wbr ?\/?>/g, '');
}

/** A fetch client that keeps cookies, as a browser would, and never follows redirects. */
export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(private readonly origin: string) {}

  async request(path: string, init: RequestInit = {}): Promise<Answer> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set(
        'cookie',
        [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; '),
      );
    }
    const response = await fetch(`${this.origin}${path}`, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const separator = (pair as string).indexOf('=');
      const name = (pair as string).slice(0, separator);
      const value = (pair as string).slice(separator + 1);
      if (value === '' || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return {
      status: response.status,
      headers: response.headers,
      text: squash(await response.text()),
    };
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.request(path, { headers });
  }

  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    return this.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** Sign in with the token, as the sign-in form does. */
  async signIn(base = '/dashboard', token = TOKEN): Promise<void> {
    const answer = await this.post(`${base}/login`, { token });
    if (answer.status !== 303) throw new Error(`Sign-in answered ${answer.status}`);
  }
}

/** The value of the hidden form field `csrf` on a page. */
export function formToken(page: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(page);
  if (!match) throw new Error('The page has no form token');
  return match[1] as string;
}

/** A stored record in any state, for tests that need many of them or exact values. */
export function makeRecord(fields: Partial<Subscription> = {}): Subscription {
  const id = fields.id ?? randomUUID();
  return {
    id,
    topic: `https://publisher.example.com/feeds/${id}`,
    hub: 'https://hub.example.net/',
    handler: 'news',
    callbackUrl: `http://127.0.0.1:1/websub/news/${id}`,
    secret: null,
    previousSecret: null,
    retiredCallbackUrl: null,
    leaseSeconds: null,
    leaseExpiresAt: null,
    subscribeStatus: 'verified',
    unsubscribeStatus: null,
    connectionErrors: 0,
    hubErrors: 0,
    verifyTimeouts: 0,
    verifyErrors: 0,
    lastSubscribeAt: null,
    lastUnsubscribeAt: null,
    createdAt: new Date('2026-11-01T00:00:00Z'),
    lastDeliveryAt: null,
    deniedReason: null,
    lastError: null,
    retryAt: null,
    static: false,
    discoveredFrom: null,
    hubDiscovered: false,
    ...fields,
  };
}

/** Rows of the subscriptions table: the topic text of each, in order. */
export function listedTopics(page: string): string[] {
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(page)?.[1] ?? '';
  return [...body.matchAll(/data-label="Topic">\s*<a href="[^"]*">([^<]*)<\/a>/g)].map((match) =>
    decodeEntities(match[1] as string),
  );
}

/** Undo the escaping of `escape-html`. */
export function decodeEntities(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Poll until `check` gives a truthy value, or fail naming `what`. */
export async function eventually<T>(
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
