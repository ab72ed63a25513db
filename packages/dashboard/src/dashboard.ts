import { randomBytes, createHmac } from 'node:crypto';

import {
  InvalidInputError,
  silentLogger,
  WebSubError,
  type CallbackEndpoint,
  type CallbackRequest,
  type CallbackResponse,
  type Logger,
  type Subscriber,
  type Subscription,
  type SubscriptionFilter,
} from '@websubsub/core';
import { stringifySetCookie } from 'cookie';

import { cookiesOf, CSRF_COOKIE, CsrfGuard, SESSION_COOKIE, TokenCheck } from './auth.js';
import { isRetryable, STATUS_CHOICES, type StatusChoice } from './format.js';
import { createMemoryHistory, recordHistory, type HistoryStore } from './history.js';
import type { SafeHtml } from './html.js';
import { STYLE_SOURCE } from './style.js';
import {
  ACTIONS,
  confirmPage,
  detailPage,
  listPage,
  messagePage,
  signInPage,
  type ActionName,
  type ListFilters,
  type PageFrame,
} from './views.js';

/** Decides whether a request may see and use the dashboard. */
export type DashboardAuthorizer = (request: CallbackRequest) => boolean | Promise<boolean>;

/** Options of `createDashboard`. Give `authorize` or `token`, not both. */
export interface DashboardOptions {
  /** The subscriber whose subscriptions are shown and acted on. */
  subscriber: Subscriber;
  /** Your own check of each request (your session, your proxy's header). @default none */
  authorize?: DashboardAuthorizer;
  /**
   * A shared secret that opens the dashboard: as `Authorization: Bearer <token>`, through the
   * sign-in form, or once as `?token=`; the last two leave a session cookie. @default none
   */
  token?: string;
  /** Path the dashboard lives under. @default '/dashboard' */
  basePath?: string;
  /**
   * Where the history of each subscription is kept; `false` keeps none (no history, no chart).
   * @default an in-process `MemoryHistory`
   */
  history?: HistoryStore | false;
  /** Subscriptions per page. @default 50 */
  pageSize?: number;
  /**
   * Records a search ("topic or hub contains") looks at per page before offering to keep
   * going, so that one search never reads the whole store at once. @default 5000
   */
  searchScanLimit?: number;
  /** How long the counts by status are reused. @default 5000 */
  summaryCacheMs?: number;
  /**
   * How long a token sign-in lasts, in seconds: the session cookie ends then, even if copied
   * elsewhere. @default 43200 (12 hours)
   */
  sessionSeconds?: number;
  /** Mark cookies `Secure`. @default true when the subscriber's `baseUrl` is https */
  secureCookies?: boolean;
  /**
   * Key of the form tokens. Instances behind one load balancer must share it. @default derived
   * from `token`, or random per process with `authorize`
   */
  csrfSecret?: string;
  /** Name shown in the header and the window title. @default 'WebSub subscriptions' */
  title?: string;
  /** Told about failures of the store, the history and the actions. @default silent */
  logger?: Logger;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

/** The dashboard: a framework-neutral endpoint that every websubsub HTTP adapter can mount. */
export interface Dashboard extends CallbackEndpoint {
  /** The path the dashboard lives under, without a trailing slash. */
  readonly basePath: string;
  /** Where the history is kept, or `null` when none is. */
  readonly history: HistoryStore | null;
  /** Does this path belong to the dashboard? */
  isDashboardPath(pathname: string): boolean;
  /** Stop writing the subscriber's events into the history. */
  close(): void;
}

const FORM_BYTES = 16 * 1024;
const ID = /^[A-Za-z0-9._~-]{1,100}$/;
const SUBSCRIPTION_PATH = /^\/subscriptions\/([^/]+)(\/confirm)?$/;
const CHOICES = new Set<string>(STATUS_CHOICES.map(([value]) => value));
const FAILED = ['connerror', 'huberror', 'verifyerror'] as const;
const PENDING = ['requesting', 'connerror', 'huberror', 'verifying', 'verifyerror'] as const;

/** The store filter that stands for a status choice. */
export function statusFilter(status: StatusChoice): SubscriptionFilter {
  switch (status) {
    case 'failing':
      return { subscribeStatus: [...FAILED], unsubscribeStatus: null };
    case 'unsubscribing':
      return { unsubscribeStatus: [...PENDING] };
    case 'unsubscribed':
      return { unsubscribeStatus: 'verified' };
    default:
      return { subscribeStatus: status, unsubscribeStatus: null };
  }
}

function normaliseBase(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  const trimmed = withSlash.replace(/\/+$/, '');
  if (trimmed === '' || !/^[A-Za-z0-9/._~-]+$/.test(trimmed)) {
    throw new InvalidInputError(`basePath must be a plain path below the root, got ${path}`);
  }
  return trimmed;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen <= 0) {
    throw new InvalidInputError(`${name} must be a positive whole number`);
  }
  return chosen;
}

/** Is this the name of an action (and not of something every object has, like `toString`)? */
function isAction(name: string): name is ActionName {
  return Object.hasOwn(ACTIONS, name);
}

/** The subscription id a path segment names, or `null` when it cannot be one. */
function subscriptionId(segment: string): string | null {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return ID.test(id) ? id : null;
}

function headerValue(request: CallbackRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy':
    `default-src 'none'; style-src ${STYLE_SOURCE}; img-src 'self' data:; ` +
    `form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

class DashboardEndpoint implements Dashboard {
  readonly basePath: string;
  readonly history: HistoryStore | null;
  readonly maxBodyBytes = FORM_BYTES;
  readonly callbackPaths: string[];

  private readonly subscriber: Subscriber;
  private readonly authorize: DashboardAuthorizer | null;
  private readonly token: TokenCheck | null;
  private readonly csrf: CsrfGuard;
  private readonly pageSize: number;
  private readonly searchScanLimit: number;
  private readonly summaryCacheMs: number;
  private readonly secureCookies: boolean;
  private readonly title: string;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly stopRecording: () => void;
  private summary: { at: number; value: Promise<ListSummary> } | null = null;

  constructor(options: DashboardOptions) {
    const hasToken = options.token !== undefined;
    if (hasToken === (options.authorize !== undefined)) {
      throw new InvalidInputError('Give the dashboard either authorize or token');
    }
    if (hasToken && (typeof options.token !== 'string' || options.token.length < 8)) {
      throw new InvalidInputError('The dashboard token must be at least 8 characters long');
    }

    this.subscriber = options.subscriber;
    this.basePath = normaliseBase(options.basePath ?? '/dashboard');
    // Mount with the adapters' middleware: their route helpers add `/:id`, which fits callbacks
    // only.
    this.callbackPaths = [this.basePath];
    this.authorize = options.authorize ?? null;
    this.now = options.now ?? (() => new Date());
    const sessionSeconds = positive(options.sessionSeconds, 43_200, 'sessionSeconds');
    this.token = hasToken
      ? new TokenCheck(options.token as string, sessionSeconds, this.now)
      : null;
    const secret =
      options.csrfSecret !== undefined
        ? Buffer.from(options.csrfSecret)
        : hasToken
          ? createHmac('sha256', options.token as string)
              .update('websubsub dashboard csrf')
              .digest()
          : randomBytes(32);
    this.csrf = new CsrfGuard(secret);
    this.pageSize = positive(options.pageSize, 50, 'pageSize');
    this.searchScanLimit = positive(options.searchScanLimit, 5000, 'searchScanLimit');
    this.summaryCacheMs = options.summaryCacheMs ?? 5000;
    this.secureCookies =
      options.secureCookies ?? this.subscriber.settings.baseUrl.startsWith('https:');
    this.title = options.title ?? 'WebSub subscriptions';
    this.logger = options.logger ?? silentLogger;

    this.history = options.history === false ? null : (options.history ?? createMemoryHistory());
    this.stopRecording = this.history
      ? recordHistory(this.subscriber, this.history, {
          now: this.now,
          onError: (error) => this.logger.warn({ error }, 'Could not record dashboard history'),
        })
      : () => undefined;
  }

  isDashboardPath(pathname: string): boolean {
    return pathname === this.basePath || pathname.startsWith(`${this.basePath}/`);
  }

  /** For the HTTP adapters, which mount any endpoint by its paths. */
  isCallbackPath(pathname: string): boolean {
    return this.isDashboardPath(pathname);
  }

  close(): void {
    this.stopRecording();
  }

  async handle(request: CallbackRequest): Promise<CallbackResponse> {
    try {
      return await this.route(request);
    } catch (error) {
      this.logger.error({ error, url: request.url }, 'Dashboard request failed');
      const frame = this.frame(null);
      return this.page(
        500,
        messagePage(frame, 'Something went wrong', 'The request failed; see the logs.'),
      );
    }
  }

  private async route(request: CallbackRequest): Promise<CallbackResponse> {
    const url = new URL(request.url, 'http://dashboard.invalid');
    const rest = url.pathname.slice(this.basePath.length).replace(/\/+$/, '') || '/';
    const method = request.method.toUpperCase();
    const reading = method === 'GET' || method === 'HEAD';

    // A browser says when a request comes from another site; no form of ours ever does.
    if (!reading && headerValue(request, 'sec-fetch-site') === 'cross-site') {
      return this.page(
        403,
        messagePage(this.frame(null), 'Refused', 'Requests from other sites are refused.'),
      );
    }

    if (this.token && rest === '/login' && method === 'POST') return this.signIn(request);
    if (this.token && reading && url.searchParams.has('token')) {
      return this.signInFromQuery(url);
    }

    const allowed = this.token
      ? this.token.allows(request)
      : await (this.authorize as DashboardAuthorizer)(request);
    if (!allowed) {
      return this.page(401, signInPage(this.frame(null), this.token !== null, false), {
        'www-authenticate': 'Bearer realm="websubsub dashboard"',
      });
    }

    // Every browser gets its own form key on its first page.
    const cookies = cookiesOf(request);
    let csrfCookie = cookies[CSRF_COOKIE];
    const extra: Record<string, string> = {};
    if (!csrfCookie || !/^[A-Za-z0-9_-]{20,64}$/.test(csrfCookie)) {
      csrfCookie = CsrfGuard.newCookieValue();
      extra['set-cookie'] = this.cookie(CSRF_COOKIE, csrfCookie, 'strict');
    }
    const formToken = this.csrf.tokenFor(csrfCookie);
    const frame = this.frame(formToken);

    if (method === 'POST') return this.post(request, rest, frame, cookies[CSRF_COOKIE], extra);
    if (!reading) {
      return this.page(405, messagePage(frame, 'Not allowed', 'Use GET or POST.'), {
        allow: 'GET, HEAD, POST',
        ...extra,
      });
    }

    if (rest === '/') return this.page(200, await this.listView(url, frame), extra);
    const match = SUBSCRIPTION_PATH.exec(rest);
    const id = match ? subscriptionId(match[1] as string) : null;
    if (id === null) return this.notFound(frame, extra);

    const record = await this.subscriber.get(id);
    if (!record) return this.notFound(frame, extra);
    if (match?.[2]) {
      const action = url.searchParams.get('action') ?? '';
      if (!isAction(action)) return this.notFound(frame, extra);
      return this.page(200, confirmPage(frame, record, action, formToken), extra);
    }

    const done = url.searchParams.get('done') ?? '';
    const notice = isAction(done) ? { kind: 'ok' as const, text: ACTIONS[done].done } : null;
    return this.page(200, await this.detailView(record, frame, notice), extra);
  }

  private async post(
    request: CallbackRequest,
    rest: string,
    frame: PageFrame,
    csrfCookie: string | undefined,
    extra: Record<string, string>,
  ): Promise<CallbackResponse> {
    const form = this.readForm(request);
    if (!form) {
      return this.page(415, messagePage(frame, 'Not a form', 'Send it as the page does.'), extra);
    }
    if (!this.csrf.check(csrfCookie, form.get('csrf'))) {
      return this.page(
        403,
        messagePage(
          frame,
          'Form expired',
          'This form is no longer valid. Go back, reload the page and try again.',
        ),
        extra,
      );
    }

    if (rest === '/logout' && this.token) {
      return this.redirect(this.basePath, this.cookie(SESSION_COOKIE, '', 'lax', 0));
    }
    const match = SUBSCRIPTION_PATH.exec(rest);
    if (!match || match[2]) return this.notFound(frame, extra);
    const id = subscriptionId(match[1] as string);
    const action = form.get('action') ?? '';
    if (id === null || !isAction(action)) return this.notFound(frame, extra);

    const record = await this.subscriber.get(id);
    if (!record) return this.notFound(frame, extra);
    const failure = await this.act(record, action);
    if (failure !== null) {
      const notice = { kind: 'error' as const, text: failure };
      return this.page(409, await this.detailView(record, frame, notice), extra);
    }

    this.summary = null;
    await this.history
      ?.append({
        at: this.now(),
        subscriptionId: id,
        kind: 'action',
        level: 'info',
        message: `${ACTIONS[action].button} from the dashboard`,
      })
      .catch((error: unknown) => this.logger.warn({ error }, 'Could not record dashboard history'));
    return this.redirect(`${this.basePath}/subscriptions/${encodeURIComponent(id)}?done=${action}`);
  }

  /** Carry out an action; the reason it could not be done, or `null` when it was. */
  private async act(record: Subscription, action: ActionName): Promise<string | null> {
    try {
      switch (action) {
        case 'resubscribe':
          await this.subscriber.resubscribe(record.id);
          break;
        case 'unsubscribe':
          await this.subscriber.unsubscribe(record.id);
          break;
        case 'reset':
          await this.subscriber.resetCounters([record.id]);
          break;
        case 'retry': {
          if (!isRetryable(record)) {
            return 'Nothing to retry: no request of this subscription is pending or failed.';
          }
          const retried = await this.subscriber.retryNow(record.id);
          if (!retried) return 'The subscription changed in the meantime; look at it again.';
          break;
        }
      }

      this.logger.info({ subscriptionId: record.id, action }, 'Dashboard action');
      return null;
    } catch (error) {
      if (!(error instanceof WebSubError)) throw error;
      this.logger.warn({ subscriptionId: record.id, action, error }, 'Dashboard action refused');
      return error.message;
    }
  }

  private async signIn(request: CallbackRequest): Promise<CallbackResponse> {
    const form = this.readForm(request);
    const given = form?.get('token') ?? '';
    if (!(this.token as TokenCheck).matches(given)) {
      return this.page(401, signInPage(this.frame(null), true, true), {
        'www-authenticate': 'Bearer realm="websubsub dashboard"',
      });
    }
    return this.redirect(this.basePath, this.sessionCookie());
  }

  /** `?token=` signs in once: the answer moves it into a cookie and drops it from the address. */
  private signInFromQuery(url: URL): CallbackResponse {
    const given = url.searchParams.get('token') ?? '';
    if (!(this.token as TokenCheck).matches(given)) {
      return this.page(401, signInPage(this.frame(null), true, true), {
        'www-authenticate': 'Bearer realm="websubsub dashboard"',
      });
    }
    url.searchParams.delete('token');
    // Back to the page asked for, only when it is one of the dashboard's: the URL was normalised
    // (`..` resolved), and `/dashboard/..//evil.example/` would leave for another host.
    const { pathname } = url;
    const inside = pathname === this.basePath || pathname.startsWith(`${this.basePath}/`);
    const target = inside && !/^\/[/\\]/.test(pathname) ? pathname : this.basePath || '/';
    return this.redirect(`${target}${url.search}`, this.sessionCookie());
  }

  private async listView(url: URL, frame: PageFrame): Promise<SafeHtml> {
    const text = (name: string, max: number) =>
      (url.searchParams.get(name) ?? '').trim().slice(0, max);
    const handlers = [...this.subscriber.settings.handlers.keys()];
    const status = text('status', 20);
    const handler = text('handler', 200);
    const filters: ListFilters = {
      q: text('q', 200),
      status: CHOICES.has(status) ? (status as StatusChoice) : '',
      handler,
      hub: text('hub', 2048),
    };
    const after = text('after', 100) || undefined;

    const filter: SubscriptionFilter = {
      ...(filters.status ? statusFilter(filters.status) : {}),
      ...(filters.handler ? { handler: filters.handler } : {}),
      ...(filters.hub ? { hub: filters.hub } : {}),
    };
    let items: Subscription[];
    let next: string | null;
    let matching: number | null = null;
    let scan: { examined: number; stoppedAtLimit: boolean } | null = null;
    if (filters.q) {
      const found = await this.search(filter, filters.q, after);
      ({ items, next } = found);
      scan = { examined: found.examined, stoppedAtLimit: found.stoppedAtLimit };
    } else {
      // One record more than shown tells whether a next page exists, so none is ever empty.
      const page = await this.subscriber.list(filter, {
        limit: this.pageSize + 1,
        ...(after ? { after } : {}),
      });
      items = page.items.slice(0, this.pageSize);
      next =
        page.items.length > this.pageSize ? (items[items.length - 1] as Subscription).id : null;
      matching = await this.subscriber.store.count(filter);
    }

    const query = (extra: Record<string, string>) => {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries({ ...filters, ...extra }))
        if (value) params.set(name, value);
      const string = params.toString();
      return string ? `?${string}` : '';
    };
    const now = this.now();
    return listPage({
      frame,
      filters,
      handlers: handlers.includes(handler) || handler === '' ? handlers : [...handlers, handler],
      items,
      matching,
      summary: await this.statusSummary(),
      nextQuery: next !== null ? query({ after: next }) : null,
      firstQuery: after !== undefined ? query({}) : null,
      scan,
      chart: this.history ? await this.history.deliveries(null, now) : null,
      now,
    });
  }

  /**
   * Look through the filtered records in id order for a topic or hub containing the text, at
   * most `searchScanLimit` of them per page, so a search costs a bounded amount whatever the
   * size of the store; the cursor lets the next page carry on where this one stopped.
   */
  private async search(
    filter: SubscriptionFilter,
    text: string,
    after: string | undefined,
  ): Promise<{
    items: Subscription[];
    next: string | null;
    examined: number;
    stoppedAtLimit: boolean;
  }> {
    const needle = text.toLowerCase();
    const items: Subscription[] = [];
    let examined = 0;
    let cursor = after;

    while (examined < this.searchScanLimit) {
      const limit = Math.min(500, this.searchScanLimit - examined);
      const page = await this.subscriber.list(filter, {
        limit,
        ...(cursor ? { after: cursor } : {}),
      });
      for (const [index, record] of page.items.entries()) {
        examined++;
        cursor = record.id;
        const found =
          record.topic.toLowerCase().includes(needle) || record.hub.toLowerCase().includes(needle);
        if (found) items.push(record);
        if (items.length === this.pageSize) {
          const more = index < page.items.length - 1 || page.next !== null;
          return { items, next: more ? record.id : null, examined, stoppedAtLimit: false };
        }
      }
      if (page.next === null) return { items, next: null, examined, stoppedAtLimit: false };
      cursor = page.next;
    }
    return { items, next: cursor ?? null, examined, stoppedAtLimit: true };
  }

  private statusSummary(): Promise<ListSummary> {
    const now = Date.now();
    if (this.summary && now - this.summary.at < this.summaryCacheMs) return this.summary.value;

    const store = this.subscriber.store;
    const value = Promise.all([
      store.count({}),
      ...STATUS_CHOICES.map(([status]) => store.count(statusFilter(status))),
    ]).then(([total, ...counts]) => ({
      total: total as number,
      byStatus: STATUS_CHOICES.map(([status], index): [StatusChoice, number] => [
        status,
        counts[index] as number,
      ]),
    }));
    // A failed count is not kept: the next page asks again.
    value.catch(() => {
      this.summary = null;
    });
    this.summary = { at: now, value };
    return value;
  }

  private async detailView(
    record: Subscription,
    frame: PageFrame,
    notice: { kind: 'ok' | 'error'; text: string } | null,
  ): Promise<SafeHtml> {
    const now = this.now();
    const [history, chart] = this.history
      ? await Promise.all([
          this.history.recent(record.id, 50),
          this.history.deliveries(record.id, now),
        ])
      : [null, null];
    return detailPage({ frame, record, history, chart, notice, now });
  }

  private readForm(request: CallbackRequest): URLSearchParams | null {
    const type = headerValue(request, 'content-type') ?? '';
    if (!/^application\/x-www-form-urlencoded\b/i.test(type)) return null;
    return new URLSearchParams(Buffer.from(request.body ?? new Uint8Array(0)).toString('utf8'));
  }

  private frame(csrf: string | null): PageFrame {
    return {
      basePath: this.basePath,
      title: this.title,
      signOut: this.token && csrf !== null ? { csrf } : null,
    };
  }

  private cookie(name: string, value: string, sameSite: 'lax' | 'strict', maxAge?: number): string {
    return stringifySetCookie(name, value, {
      path: this.basePath,
      httpOnly: true,
      sameSite,
      secure: this.secureCookies,
      ...(maxAge !== undefined ? { maxAge } : {}),
    });
  }

  // Lax, so that following a link to the dashboard from elsewhere still finds the session.
  private sessionCookie(): string {
    const token = this.token as TokenCheck;
    return this.cookie(SESSION_COOKIE, token.newSession(), 'lax', token.sessionSeconds);
  }

  private notFound(frame: PageFrame, extra: Record<string, string>): CallbackResponse {
    return this.page(
      404,
      messagePage(frame, 'Not found', 'There is no such page or subscription.'),
      extra,
    );
  }

  private page(
    status: number,
    body: SafeHtml,
    headers: Record<string, string> = {},
  ): CallbackResponse {
    return {
      status,
      headers: { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS, ...headers },
      body: body.value,
    };
  }

  private redirect(location: string, setCookie?: string): CallbackResponse {
    return {
      status: 303,
      headers: {
        location,
        'content-type': 'text/plain; charset=utf-8',
        ...SECURITY_HEADERS,
        ...(setCookie ? { 'set-cookie': setCookie } : {}),
      },
      body: `See ${location}`,
    };
  }
}

interface ListSummary {
  total: number;
  byStatus: Array<[StatusChoice, number]>;
}

/**
 * Create the dashboard. Mount it with the same adapters as the callbacks, before any body
 * parser: `app.use(createKoaMiddleware(dashboard))` or
 * `app.use(createExpressMiddleware(dashboard))`. Throws `InvalidInputError` for bad options.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  return new DashboardEndpoint(options);
}
