import { request } from 'node:http';

import { createMemoryStore, InvalidInputError, type Subscription } from '@websubsub/core';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';

import { createDashboard, CSRF_COOKIE, SESSION_COOKIE } from '../src/index.js';
import {
  Browser,
  eventually,
  formToken,
  listedTopics,
  makeRecord,
  startDashboardApp,
  TOKEN,
  type DashboardApp,
} from './helpers.js';

describe('dashboard (Koa, over real sockets)', () => {
  let app: DashboardApp;

  afterEach(async () => {
    await app?.close();
  });

  describe('access', () => {
    it('refuses a request without the token: 401, a sign-in form, no subscription', async () => {
      app = await startDashboardApp();
      const record = await app.subscriber.store.create(makeRecord());

      const answer = await new Browser(app.origin).get('/dashboard');

      expect(answer.status).to.equal(401);
      expect(answer.headers.get('www-authenticate')).to.equal('Bearer realm="websubsub dashboard"');
      expect(answer.text).to.contain('<form method="post" action="/dashboard/login">');
      expect(answer.text).not.to.contain(record.topic);
      const detail = await new Browser(app.origin).get(`/dashboard/subscriptions/${record.id}`);
      expect(detail.status).to.equal(401);
      expect(detail.text).not.to.contain(record.topic);
    });

    it('accepts the token as Authorization: Bearer, and refuses a wrong one', async () => {
      app = await startDashboardApp();
      const record = await app.subscriber.store.create(makeRecord());
      const browser = new Browser(app.origin);

      const right = await browser.get('/dashboard', { authorization: `Bearer ${TOKEN}` });
      expect(right.status).to.equal(200);
      expect(listedTopics(right.text)).to.deep.equal([record.topic]);

      const wrong = await browser.get('/dashboard', { authorization: `Bearer ${TOKEN}x` });
      expect(wrong.status).to.equal(401);
    });

    it('?token= signs in once: a redirect without it, then a session cookie', async () => {
      app = await startDashboardApp();
      const browser = new Browser(app.origin);

      const answer = await browser.get(`/dashboard?status=verified&token=${TOKEN}`);

      expect(answer.status).to.equal(303);
      expect(answer.headers.get('location')).to.equal('/dashboard?status=verified');
      const cookie = answer.headers.getSetCookie().find((line) => line.startsWith(SESSION_COOKIE));
      expect(cookie).to.match(/; Max-Age=43200; Path=\/dashboard; HttpOnly; SameSite=Lax$/);
      expect(cookie).not.to.contain(TOKEN);
      expect((await browser.get('/dashboard?status=verified')).status).to.equal(200);

      const wrong = await new Browser(app.origin).get('/dashboard?token=guess-guess');
      expect(wrong.status).to.equal(401);
      expect(wrong.text).to.contain('That token is not right');
    });

    it('?token= sends the browser back inside the dashboard only', async () => {
      app = await startDashboardApp();
      // Raw request targets: fetch would resolve the `..` before sending.
      const locationFor = (target: string) =>
        new Promise<string | undefined>((resolve, reject) => {
          const { hostname, port } = new URL(app.origin);
          request({ host: hostname, port, path: target }, (response) => {
            response.resume();
            resolve(response.headers.location);
          })
            .on('error', reject)
            .end();
        });

      for (const path of ['/dashboard/..//evil.example/x', '/dashboard/%2e%2e//evil.example/x']) {
        expect(await locationFor(`${path}?token=${TOKEN}`), path).to.equal('/dashboard');
      }
      expect(await locationFor(`/dashboard/subscriptions?page=2&token=${TOKEN}`)).to.equal(
        '/dashboard/subscriptions?page=2',
      );
    });

    it('signs in with the form, and signs out', async () => {
      app = await startDashboardApp();
      const browser = new Browser(app.origin);

      const wrong = await browser.post('/dashboard/login', { token: 'not-the-token' });
      expect(wrong.status).to.equal(401);
      await browser.signIn();
      const page = await browser.get('/dashboard');
      expect(page.status).to.equal(200);

      const out = await browser.post('/dashboard/logout', { csrf: formToken(page.text) });
      expect(out.status).to.equal(303);
      expect(browser.cookies.has(SESSION_COOKIE)).to.equal(false);
      expect((await browser.get('/dashboard')).status).to.equal(401);
    });

    it('gives each sign-in a session of its own that ends at its time, copied or not', async () => {
      let now = new Date('2026-12-04T10:00:00Z');
      app = await startDashboardApp({ sessionSeconds: 3600, now: () => now });
      const first = new Browser(app.origin);
      const second = new Browser(app.origin);
      await first.signIn();
      await second.signIn();
      const session = first.cookies.get(SESSION_COOKIE) as string;
      expect(session).to.be.a('string').and.not.equal(second.cookies.get(SESSION_COOKIE));

      // Signing out clears the browser's cookie; a copy of it lasts only until its end.
      const copy = new Browser(app.origin);
      copy.cookies.set(SESSION_COOKIE, session);
      const page = await first.get('/dashboard');
      await first.post('/dashboard/logout', { csrf: formToken(page.text) });
      expect((await first.get('/dashboard')).status).to.equal(401);
      expect((await copy.get('/dashboard')).status).to.equal(200);
      now = new Date(now.getTime() + 3_601_000);
      expect((await copy.get('/dashboard')).status).to.equal(401);
      expect((await second.get('/dashboard')).status).to.equal(401);

      // A session whose end was moved later no longer matches its signature.
      const [, nonce, signature] = session.split('.');
      const forged = new Browser(app.origin);
      forged.cookies.set(SESSION_COOKIE, `${now.getTime() + 3_600_000}.${nonce}.${signature}`);
      expect((await forged.get('/dashboard')).status).to.equal(401);
    });

    it('asks a user-supplied authorize() and offers no token sign-in then', async () => {
      app = await startDashboardApp({
        authorize: (request) => request.headers['x-user'] === 'admin',
      });
      const browser = new Browser(app.origin);

      const refused = await browser.get('/dashboard');
      expect(refused.status).to.equal(401);
      expect(refused.text).to.contain('You are not allowed to see this dashboard');
      expect(refused.text).not.to.contain('/dashboard/login');
      expect((await browser.get(`/dashboard?token=${TOKEN}`)).status).to.equal(401);
      const allowed = await browser.get('/dashboard', { 'x-user': 'admin' });
      expect(allowed.status).to.equal(200);
      expect(allowed.text).not.to.contain('Sign out');
    });

    it('leaves other paths to the app', async () => {
      app = await startDashboardApp();
      const browser = new Browser(app.origin);

      expect((await browser.get('/dashboards')).status).to.equal(404);
      expect((await browser.get('/other')).text).to.equal('Not Found');
      expect(app.dashboard.isDashboardPath('/dashboard/subscriptions/x')).to.equal(true);
      expect(app.dashboard.isDashboardPath('/dashboardx')).to.equal(false);
    });

    it('refuses options without exactly one of authorize and token, or a short token', async () => {
      app = await startDashboardApp();
      const subscriber = app.subscriber;

      expect(() => createDashboard({ subscriber })).to.throw(InvalidInputError);
      expect(() => createDashboard({ subscriber, token: TOKEN, authorize: () => true })).to.throw(
        InvalidInputError,
      );
      expect(() => createDashboard({ subscriber, token: 'short' })).to.throw(/at least 8/);
      expect(() => createDashboard({ subscriber, token: TOKEN, basePath: '/' })).to.throw(
        /basePath/,
      );
    });
  });

  describe('forms', () => {
    async function signedIn(): Promise<{ browser: Browser; record: Subscription; csrf: string }> {
      app = await startDashboardApp();
      const record = await app.subscriber.store.create(makeRecord({ hubErrors: 3 }));
      const browser = new Browser(app.origin);
      await browser.signIn();
      const page = await browser.get(`/dashboard/subscriptions/${record.id}`);
      return { browser, record, csrf: formToken(page.text) };
    }

    it('refuses an action without the form token, or with another browser’s', async () => {
      const { browser, record } = await signedIn();
      const path = `/dashboard/subscriptions/${record.id}`;

      const missing = await browser.post(path, { action: 'reset' });
      expect(missing.status).to.equal(403);
      expect(missing.text).to.contain('Form expired');

      const other = new Browser(app.origin);
      await other.signIn();
      const otherToken = formToken((await other.get(path)).text);
      expect((await browser.post(path, { action: 'reset', csrf: otherToken })).status).to.equal(
        403,
      );

      expect((await app.subscriber.get(record.id))?.hubErrors).to.equal(3);
    });

    it('refuses a post from another site, and a body that is not a form', async () => {
      const { browser, record, csrf } = await signedIn();
      const path = `/dashboard/subscriptions/${record.id}`;

      const crossSite = await browser.post(
        path,
        { action: 'reset', csrf },
        { 'sec-fetch-site': 'cross-site' },
      );
      expect(crossSite.status).to.equal(403);
      const json = await browser.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'reset', csrf }),
      });
      expect(json.status).to.equal(415);
      expect((await app.subscriber.get(record.id))?.hubErrors).to.equal(3);

      const done = await browser.post(path, { action: 'reset', csrf });
      expect(done.status).to.equal(303);
      expect((await app.subscriber.get(record.id))?.hubErrors).to.equal(0);
    });

    it('gives a new browser its form cookie, strict and HttpOnly', async () => {
      app = await startDashboardApp();
      const answer = await new Browser(app.origin).get('/dashboard', {
        authorization: `Bearer ${TOKEN}`,
      });

      const cookie = answer.headers.getSetCookie().find((line) => line.startsWith(CSRF_COOKIE));
      expect(cookie).to.match(/; Path=\/dashboard; HttpOnly; SameSite=Strict$/);
    });

    it('sends a strict Content-Security-Policy that allows no script', async () => {
      app = await startDashboardApp();
      const answer = await new Browser(app.origin).get('/dashboard', {
        authorization: `Bearer ${TOKEN}`,
      });

      const policy = answer.headers.get('content-security-policy') as string;
      expect(policy).to.contain("default-src 'none'");
      expect(policy).not.to.contain('script-src');
      expect(policy).to.match(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
      expect(answer.headers.get('cache-control')).to.equal('no-store');
      expect(answer.headers.get('x-frame-options')).to.equal('DENY');
    });
  });

  describe('rendering', () => {
    it('escapes every value a hub or publisher chose, on the list and detail pages', async () => {
      app = await startDashboardApp();
      const record = await app.subscriber.store.create(
        makeRecord({
          topic: 'https://evil.example.com/feed?<script>alert(1)</script>&"quoted"',
          hub: 'https://hub.example.net/"><img src=x onerror=alert(2)>',
          subscribeStatus: 'denied',
          deniedReason: '<iframe src="https://evil.example.com/"></iframe>',
          lastError: 'Hub answered 400: <svg onload=alert(3)> \' "',
        }),
      );
      await app.dashboard.history?.append({
        at: new Date(),
        subscriptionId: record.id,
        kind: 'hub',
        level: 'error',
        message: 'The subscribe request failed: <script>alert(4)</script>',
      });
      const browser = new Browser(app.origin);
      await browser.signIn();

      for (const path of ['/dashboard', `/dashboard/subscriptions/${record.id}`]) {
        const page = (await browser.get(path)).text;
        expect(page).not.to.match(/<script|<img|<iframe|<svg onload/i);
        expect(page).to.contain('&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;quoted&quot;');
        expect(page).to.contain('&lt;svg onload=alert(3)&gt; &#39; &quot;');
      }
      const detail = (await browser.get(`/dashboard/subscriptions/${record.id}`)).text;
      expect(detail).to.contain(
        '&lt;iframe src=&quot;https://evil.example.com/&quot;&gt;&lt;/iframe&gt;',
      );
      expect(detail).to.contain('&lt;script&gt;alert(4)&lt;/script&gt;');
    });

    it('shows an old callback URL being ended and a secret change, never a secret', async () => {
      app = await startDashboardApp();
      const plain = await app.subscriber.store.create(makeRecord({ secret: 'new-secret-1' }));
      const changing = await app.subscriber.store.create(
        makeRecord({
          secret: 'new-secret-2',
          previousSecret: 'old-secret-2',
          retiredCallbackUrl: 'http://old.example.org/websub/news/x&y',
        }),
      );
      const browser = new Browser(app.origin);
      await browser.signIn();

      const quiet = (await browser.get(`/dashboard/subscriptions/${plain.id}`)).text;
      expect(quiet).not.to.contain('Old callback URL');
      expect(quiet).not.to.contain('Secret change');
      const detail = (await browser.get(`/dashboard/subscriptions/${changing.id}`)).text;
      expect(detail).to.contain('Old callback URL, being ended at the hub');
      expect(detail).to.contain('old.example.org/websub/news/x&amp;y');
      expect(detail).to.contain('the previous one is still taken');
      for (const page of [quiet, detail]) expect(page).not.to.match(/secret-[12]/);
    });

    it('answers 404 for an unknown subscription, a malformed id or an unknown action', async () => {
      app = await startDashboardApp();
      const record = await app.subscriber.store.create(makeRecord());
      const browser = new Browser(app.origin);
      await browser.signIn();

      expect(
        (await browser.get('/dashboard/subscriptions/00000000-0000-0000-0000-000000000000')).status,
      ).to.equal(404);
      expect((await browser.get('/dashboard/subscriptions/%E0%A4%A')).status).to.equal(404);
      expect(
        (await browser.get(`/dashboard/subscriptions/${record.id}/confirm?action=delete`)).status,
      ).to.equal(404);
      expect((await browser.get('/dashboard/nothing-here')).status).to.equal(404);
      const inherited = `/dashboard/subscriptions/${record.id}/confirm?action=constructor`;
      expect((await browser.get(inherited)).status).to.equal(404);
      const page = await browser.get(`/dashboard/subscriptions/${record.id}`);
      const posted = await browser.post(`/dashboard/subscriptions/${record.id}`, {
        action: 'toString',
        csrf: formToken(page.text),
      });
      expect(posted.status).to.equal(404);
    });
  });

  describe('the list', () => {
    async function withRecords(
      records: Subscription[],
      options: Parameters<typeof startDashboardApp>[0] = {},
    ) {
      app = await startDashboardApp({
        subscriber: { store: createMemoryStore({ initial: records }) },
        ...options,
      });
      const browser = new Browser(app.origin);
      await browser.signIn();
      return browser;
    }

    it('pages through every subscription exactly once, in id order', async () => {
      const records = Array.from({ length: 120 }, () => makeRecord());
      const browser = await withRecords(records, { pageSize: 50 });

      const seen: string[] = [];
      let path: string | null = '/dashboard';
      const sizes: number[] = [];
      while (path !== null) {
        const page: string = (await browser.get(path)).text;
        const topics = listedTopics(page);
        sizes.push(topics.length);
        seen.push(...topics);
        const next: string | undefined = /<a href="([^"]+)" rel="next">/.exec(page)?.[1];
        path = next ? next.replace(/&amp;/g, '&') : null;
        if (sizes.length > 1) expect(page).to.contain('>First page</a>');
      }

      expect(sizes).to.deep.equal([50, 50, 20]);
      const expected = records.map((record) => record).sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(seen).to.deep.equal(expected.map((record) => record.topic));
    });

    it('filters by status, handler and hub, and counts by status', async () => {
      const records = [
        makeRecord({ topic: 'https://a.example.com/verified', subscribeStatus: 'verified' }),
        makeRecord({ topic: 'https://a.example.com/denied', subscribeStatus: 'denied' }),
        makeRecord({
          topic: 'https://a.example.com/huberror',
          subscribeStatus: 'huberror',
          hubErrors: 2,
        }),
        makeRecord({ topic: 'https://a.example.com/connerror', subscribeStatus: 'connerror' }),
        makeRecord({ topic: 'https://a.example.com/gone', unsubscribeStatus: 'verified' }),
        makeRecord({ topic: 'https://a.example.com/leaving', unsubscribeStatus: 'verifying' }),
        makeRecord({
          topic: 'https://b.example.com/podcast',
          handler: 'podcasts',
          hub: 'https://other-hub.example.org/',
        }),
      ];
      const browser = await withRecords(records);
      const topics = async (query: string) =>
        listedTopics((await browser.get(`/dashboard${query}`)).text).sort();

      expect(await topics('?status=denied')).to.deep.equal(['https://a.example.com/denied']);
      expect(await topics('?status=failing')).to.deep.equal([
        'https://a.example.com/connerror',
        'https://a.example.com/huberror',
      ]);
      expect(await topics('?status=unsubscribed')).to.deep.equal(['https://a.example.com/gone']);
      expect(await topics('?status=unsubscribing')).to.deep.equal([
        'https://a.example.com/leaving',
      ]);
      expect(await topics('?handler=podcasts')).to.deep.equal(['https://b.example.com/podcast']);
      expect(
        await topics(`?hub=${encodeURIComponent('https://other-hub.example.org/')}`),
      ).to.deep.equal(['https://b.example.com/podcast']);
      expect(await topics('?status=verified&handler=news')).to.deep.equal([
        'https://a.example.com/verified',
      ]);

      const page = (await browser.get('/dashboard')).text;
      expect(page).to.contain('All: 7</a>');
      expect(page).to.contain('Verified: 2</a>');
      expect(page).to.contain('Failing (any error): 2</a>');
      expect(page).to.contain('7 matching subscriptions');
    });

    it('searches topics and hubs for text, case-insensitively', async () => {
      const records = [
        makeRecord({ topic: 'https://blog.example.com/Feed.xml' }),
        makeRecord({
          topic: 'https://news.example.org/rss',
          hub: 'https://pubsubhubbub.example.com/',
        }),
        makeRecord({ topic: 'https://other.example.net/atom' }),
      ];
      const browser = await withRecords(records);

      const feed = listedTopics((await browser.get('/dashboard?q=feed.XML')).text);
      expect(feed).to.deep.equal(['https://blog.example.com/Feed.xml']);
      const byHub = listedTopics((await browser.get('/dashboard?q=pubsubhubbub')).text);
      expect(byHub).to.deep.equal(['https://news.example.org/rss']);
    });

    it('bounds the records one search page reads, and lets the user keep searching', async () => {
      const records = Array.from({ length: 100 }, () => makeRecord());
      const sorted = [...records].sort((a, b) => (a.id < b.id ? -1 : 1));
      const needle = sorted[80] as Subscription;
      needle.topic = 'https://needle.example.com/feed';
      const browser = await withRecords(records, { searchScanLimit: 30 });

      let page = (await browser.get('/dashboard?q=needle')).text;
      expect(listedTopics(page)).to.deep.equal([]);
      expect(page).to.contain('after looking at 30 subscriptions');
      const pages = [page];
      while (listedTopics(page).length === 0) {
        const next = /<a href="([^"]+)" rel="next">Keep searching<\/a>/.exec(page)?.[1];
        expect(next, 'a link to keep searching').to.be.a('string');
        page = (await browser.get((next as string).replace(/&amp;/g, '&'))).text;
        pages.push(page);
      }

      expect(listedTopics(page)).to.deep.equal(['https://needle.example.com/feed']);
      expect(pages).to.have.length(3);
    });

    it('works with 100,000 subscriptions: pages, filters, counts by the server', async function () {
      this.timeout(60_000);
      const records: Subscription[] = [];
      for (let index = 0; index < 100_000; index++) {
        records.push(
          makeRecord({
            subscribeStatus:
              index % 1000 === 0 ? 'denied' : index % 10 === 0 ? 'huberror' : 'verified',
            handler: index % 2 === 0 ? 'news' : 'podcasts',
          }),
        );
      }
      const browser = await withRecords(records);

      const started = performance.now();
      const first = await browser.get('/dashboard');
      const firstMs = performance.now() - started;
      expect(first.status).to.equal(200);
      expect(listedTopics(first.text)).to.have.length(50);
      expect(first.text).to.contain('All: 100000</a>');
      expect(first.text).to.contain('Denied: 100</a>');
      expect(first.text).to.contain('Hub error: 9900</a>');
      expect(first.text).to.contain('rel="next"');
      // The page is built from one page of records and a few counts, not from 100,000 rows.
      expect(first.text.length).to.be.below(200_000);
      expect(firstMs).to.be.below(5000);

      const denied = await browser.get('/dashboard?status=denied&handler=news');
      expect(listedTopics(denied.text)).to.have.length(50);
      expect(denied.text).to.contain('100 matching subscriptions');
      const next = /<a href="([^"]+)" rel="next">/.exec(denied.text)?.[1] as string;
      const second = await browser.get(next.replace(/&amp;/g, '&'));
      expect(listedTopics(second.text)).to.have.length(50);
      expect(second.text).not.to.contain('rel="next"');
    });
  });

  describe('actions (a real subscriber and the test hub)', () => {
    let hub: TestHub;
    let browser: Browser;

    beforeEach(async () => {
      hub = await startTestHub();
      app = await startDashboardApp();
      browser = new Browser(app.origin);
      await browser.signIn();
    });

    afterEach(async () => {
      await hub.close();
    });

    const stored = async (id: string) => (await app.subscriber.get(id)) as Subscription;

    async function subscribed(state: 'verified' | 'denied' | 'huberror'): Promise<Subscription> {
      const topic = hub.serveFeed(`/feeds/${state}`);
      if (state === 'denied') hub.denyNext(1, 'Quota exceeded for this callback');
      if (state === 'huberror')
        hub.failNext(1, { status: 503, body: 'Hub is overloaded', retryAfter: 600 });
      const record = await app.subscriber.subscribe({ topic, hub: hub.url });
      const expected = state;
      return eventually(async () => {
        const current = await stored(record.id);
        return current.subscribeStatus === expected ? current : null;
      }, `the subscription to be ${state}`);
    }

    /** Go through the confirmation page and confirm, as a person would. */
    async function confirm(record: Subscription, action: string) {
      const confirmation = await browser.get(
        `/dashboard/subscriptions/${record.id}/confirm?action=${action}`,
      );
      expect(confirmation.status).to.equal(200);
      expect(confirmation.text).to.contain(`<input type="hidden" name="action" value="${action}"`);
      return browser.post(`/dashboard/subscriptions/${record.id}`, {
        action,
        csrf: formToken(confirmation.text),
      });
    }

    it('unsubscribes, and the hub verifies it', async () => {
      const record = await subscribed('verified');

      const answer = await confirm(record, 'unsubscribe');

      expect(answer.status).to.equal(303);
      expect(answer.headers.get('location')).to.equal(
        `/dashboard/subscriptions/${record.id}?done=unsubscribe`,
      );
      await eventually(
        async () => (await stored(record.id)).unsubscribeStatus === 'verified',
        'unsubscribed',
      );
      const page = (await browser.get(answer.headers.get('location') as string)).text;
      expect(page).to.contain('Unsubscribe requested');
      expect(page).to.contain('Unsubscribed</span>');
      expect(page).to.contain('The hub verified the unsubscription');
      expect(page).to.contain('Unsubscribe from the dashboard');
    });

    it('resubscribes a denied subscription, and the hub verifies it', async () => {
      const record = await subscribed('denied');
      const before = (await browser.get(`/dashboard/subscriptions/${record.id}`)).text;
      expect(before).to.contain(
        'The hub denied the subscription: Quota exceeded for this callback',
      );

      expect((await confirm(record, 'resubscribe')).status).to.equal(303);

      await eventually(
        async () => (await stored(record.id)).subscribeStatus === 'verified',
        'verified',
      );
      expect((await stored(record.id)).deniedReason).to.equal(null);
    });

    it('resets the error counters', async () => {
      const record = await subscribed('huberror');
      expect(record.hubErrors).to.equal(1);
      const before = (await browser.get(`/dashboard/subscriptions/${record.id}`)).text;
      expect(before).to.contain(
        'The subscribe request failed: Hub answered 503: Hub is overloaded',
      );

      expect((await confirm(record, 'reset')).status).to.equal(303);

      expect((await stored(record.id)).hubErrors).to.equal(0);
    });

    it('retries a failed request now instead of at its scheduled time', async () => {
      const record = await subscribed('huberror');
      expect(record.retryAt!.getTime()).to.be.above(Date.now() + 500_000);
      const requests = hub.requests.length;

      expect((await confirm(record, 'retry')).status).to.equal(303);

      await eventually(
        async () => (await stored(record.id)).subscribeStatus === 'verified',
        'verified',
      );
      expect(hub.requests.length).to.equal(requests + 1);
    });

    it('refuses to retry a verified subscription, saying why', async () => {
      const record = await subscribed('verified');
      const page = await browser.get(`/dashboard/subscriptions/${record.id}`);
      expect(page.text).not.to.contain('value="retry"');

      const answer = await browser.post(`/dashboard/subscriptions/${record.id}`, {
        action: 'retry',
        csrf: formToken(page.text),
      });

      expect(answer.status).to.equal(409);
      expect(answer.text).to.contain('Nothing to retry');
    });

    it('shows deliveries in the history and the chart', async () => {
      const record = await subscribed('verified');
      await hub.waitFor(() => hub.subscriptions().some((s) => s.state === 'active'));
      await hub.publish(record.topic, { body: '<feed/>' });
      await hub.publish(record.topic, { body: '<feed/>' });
      await eventually(() => app.received === 2, 'both deliveries handled');

      const page = (await browser.get(`/dashboard/subscriptions/${record.id}`)).text;

      expect(page).to.contain('Accepted content (7 bytes)');
      expect(page).to.contain('Handler news finished in');
      expect(page).to.contain('2 accepted and 0 refused in the last 1 d');
      expect(page).to.match(/<rect class="bar-accepted"/);
      const list = (await browser.get('/dashboard')).text;
      expect(list).to.contain('Content received by this process: 2 accepted and 0 refused');
    });
  });
});
