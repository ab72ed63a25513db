import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { skipUnlessCi } from '@websubsub/core/testing';
import type { Subscription } from '@websubsub/core';
import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

import { eventually, startDashboardApp, type DashboardApp } from './helpers.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const REPOSITORY = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SCREENSHOTS = join(REPOSITORY, 'test-output', 'screenshots');
const TOKEN = 'browser-test-token';

// Debian's Chromium, headless, with nothing that reaches beyond this machine. Playwright gives
// every launch a fresh profile directory of its own.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface SilentHub {
  url: string;
  /** Requests received so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/** A hub that accepts every request and never verifies: its subscriptions stay "verifying". */
async function startSilentHub(): Promise<SilentHub> {
  let requests = 0;
  const server: Server = createServer((request, response) => {
    requests++;
    request.resume();
    request.on('end', () => response.writeHead(202).end());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hub`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** WCAG contrast ratio between two CSS colours given as `rgb(r, g, b)`. */
function contrast(foreground: string, background: string): number {
  const luminance = (color: string) => {
    const [r, g, b] = (color.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((part) => {
      const channel = Number(part) / 255;
      return channel <= 0.03928 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * (r as number) + 0.7152 * (g as number) + 0.0722 * (b as number);
  };
  const [light, dark] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
  return ((light as number) + 0.05) / ((dark as number) + 0.05);
}

// Code run in the page is sent as text: it needs no DOM types here, and the test runner's
// transform cannot add helpers to it that the page lacks.
describe('dashboard in headless Chromium (Debian chromium driven by playwright-core)', function () {
  this.timeout(60_000);

  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let hub: TestHub;
  let silentHub: SilentHub;
  let app: DashboardApp;
  let base: string;
  const records: Record<string, Subscription> = {};
  const problems: string[] = [];

  const stored = async (name: string) =>
    (await app.subscriber.get(records[name]!.id)) as Subscription;
  const shot = (name: string, target: Page = page, fullPage = true) =>
    target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage });

  /** Wait until the stored record of `name` satisfies a check. */
  const until = (name: string, check: (record: Subscription) => boolean, what: string) =>
    eventually(async () => check(await stored(name)), what);

  /** Subscribe, with the hub set up to answer as wished, and wait for the state that results. */
  async function subscribeAs(
    name: string,
    state: Subscription['subscribeStatus'],
    setUp: () => void = () => undefined,
    input: { hub?: string; handler?: string; secret?: string } = {},
  ) {
    const topic = hub.serveFeed(`/feeds/${name}`);
    setUp();
    records[name] = await app.subscriber.subscribe({ topic, hub: input.hub ?? hub.url, ...input });
    await until(name, (record) => record.subscribeStatus === state, `${name} to be ${state}`);
  }

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      skipUnlessCi(
        this,
        `no Chromium at ${CHROMIUM}: ` +
          'install it with scripts/ensure-chromium.sh or set CHROMIUM_PATH',
      );
    }
    mkdirSync(SCREENSHOTS, { recursive: true });

    hub = await startTestHub();
    silentHub = await startSilentHub();
    app = await startDashboardApp({ token: TOKEN });
    base = `${app.origin}/dashboard`;

    // Subscriptions in each real state the lifecycle reaches, made one after the other so that
    // each failure set up at the hub meets the request it is meant for.
    await subscribeAs('news-verified', 'verified', undefined, { secret: 'news-secret' });
    await subscribeAs('podcast-verified', 'verified', undefined, { handler: 'podcasts' });
    await subscribeAs('denied', 'denied', () =>
      hub.denyNext(1, '<script>window.__xss = 1</script> Quota exceeded for this callback'),
    );
    await subscribeAs('hub-error', 'huberror', () =>
      hub.failNext(1, { status: 503, body: 'Hub is overloaded, try later', retryAfter: 3600 }),
    );
    await subscribeAs('unreachable', 'connerror', () => hub.failNext(1, 'drop'));
    await subscribeAs('never-verified', 'verifying', undefined, { hub: silentHub.url });
    await subscribeAs('ended', 'verified');
    await app.subscriber.unsubscribe(records['ended']!.id);
    await until('ended', (r) => r.unsubscribeStatus === 'verified', 'unsubscribed');

    // Content for the news feed: three signed deliveries and one with a forged signature.
    const news = records['news-verified']!;
    await hub.waitFor(() =>
      hub.subscriptions().some((s) => s.callback === news.callbackUrl && s.state === 'active'),
    );
    for (let index = 0; index < 3; index++) {
      await hub.publish(news.topic, {
        body: `<feed><entry>${index}</entry></feed>`,
        contentType: 'application/atom+xml',
      });
    }
    await hub.publish(news.topic, { body: '<feed/>', signature: 'invalid' });
    await eventually(() => app.received === 3, 'the deliveries to be handled');
    await until('news-verified', (r) => r.lastDeliveryAt !== null, 'the delivery time');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    // Refused resources (a blocked style sheet, say) and script errors; not the 401s asked for.
    page.on('console', (message) => {
      if (message.type() === 'error' && !/status of 401/.test(message.text())) {
        problems.push(message.text());
      }
    });
    page.on('pageerror', (error) => problems.push(error.message));
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await hub?.close();
    await silentHub?.close();
  });

  it('refuses the page without the token, and offers a sign-in form', async () => {
    const answer = await page.goto(base);
    expect(answer?.status()).to.equal(401);
    expect(await page.locator('h1').textContent()).to.equal('Sign in');
    expect(await page.content()).not.to.contain(records['news-verified']!.topic);
    await shot('sign-in');

    const detail = await page.goto(`${base}/subscriptions/${records['denied']!.id}`);
    expect(detail?.status()).to.equal(401);

    // A script posting an action without the token is refused, and nothing changes.
    const post = await fetch(`${base}/subscriptions/${records['hub-error']!.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'action=reset',
    });
    expect(post.status).to.equal(401);
    expect((await stored('hub-error')).hubErrors).to.equal(1);
  });

  it('signs in and lists every subscription in its real state', async () => {
    await page.goto(base);
    await page.getByLabel('Dashboard token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(base);

    const expected: Record<string, string> = {
      'news-verified': 'Verified',
      'podcast-verified': 'Verified',
      denied: 'Denied',
      'hub-error': 'Hub error',
      unreachable: 'Connection error',
      'never-verified': 'Waiting for verification',
      ended: 'Unsubscribed',
    };
    expect(await page.locator('#subscriptions tbody tr').count()).to.equal(7);
    for (const [name, status] of Object.entries(expected)) {
      const row = page.locator('#subscriptions tbody tr', { hasText: records[name]!.topic });
      expect((await row.locator('td[data-label="Status"]').textContent())?.trim(), name).to.equal(
        status,
      );
    }
    const hubError = page.locator('#subscriptions tbody tr', {
      hasText: records['hub-error']!.topic,
    });
    expect(await hubError.locator('td[data-label="Last error"]').textContent()).to.contain(
      'Hub answered 503: Hub is overloaded, try later',
    );
    const news = page.locator('#subscriptions tbody tr', {
      hasText: records['news-verified']!.topic,
    });
    expect(await news.locator('td[data-label="Lease"]').textContent()).to.contain('left');
    expect(await news.locator('td[data-label="Last delivery"]').textContent()).to.contain('ago');

    // The style sheet is allowed by the Content-Security-Policy, and nothing was refused.
    const header = await page.evaluate(
      `getComputedStyle(document.querySelector('header.top')).backgroundColor`,
    );
    expect(header).to.equal('rgb(243, 243, 246)');
    expect(problems).to.deep.equal([]);
    await shot('list');
  });

  it('filters by status, handler and search text', async () => {
    await page.goto(base);

    await page.getByLabel('Status', { exact: true }).selectOption('denied');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/status=denied/);
    expect(await page.locator('#subscriptions tbody tr').count()).to.equal(1);
    expect(await page.locator('#subscriptions tbody tr').textContent()).to.contain(
      records['denied']!.topic,
    );

    await page.getByRole('link', { name: 'Clear' }).click();
    await page.getByLabel('Status', { exact: true }).selectOption('failing');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/status=failing/);
    const failing = await page.locator('#subscriptions td[data-label="Topic"]').allTextContents();
    expect(failing.map((text) => text.trim()).sort()).to.deep.equal(
      [records['hub-error']!.topic, records['unreachable']!.topic].sort(),
    );

    await page.getByRole('link', { name: 'Clear' }).click();
    await page.getByLabel('Handler', { exact: true }).selectOption('podcasts');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/handler=podcasts/);
    expect(await page.locator('#subscriptions tbody tr').count()).to.equal(1);
    expect(await page.locator('#subscriptions tbody tr').textContent()).to.contain(
      records['podcast-verified']!.topic,
    );

    await page.getByRole('link', { name: 'Clear' }).click();
    await page.getByLabel('Topic or hub contains').fill('feeds/NEVER');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/q=feeds/);
    expect(await page.locator('#subscriptions tbody tr').count()).to.equal(1);
    expect(await page.locator('#subscriptions tbody tr').textContent()).to.contain(
      records['never-verified']!.topic,
    );
    await shot('list-filtered');

    // The hub link of a row filters by that hub.
    await page.getByRole('link', { name: 'Clear' }).click();
    await page
      .locator('tbody tr', { hasText: records['never-verified']!.topic })
      .getByRole('link', { name: silentHub.url })
      .click();
    await page.waitForURL(/hub=/);
    expect(await page.locator('#subscriptions tbody tr').count()).to.equal(1);
  });

  it("shows a subscription's history, the hub's reasons as text, and its deliveries", async () => {
    await page.goto(base);
    await page.getByRole('link', { name: records['denied']!.topic }).click();
    await page.waitForURL(/subscriptions\//);

    const reason = '<script>window.__xss = 1</script> Quota exceeded for this callback';
    expect(await page.locator('main').textContent()).to.contain(
      `The hub denied the subscription: ${reason}`,
    );
    expect(await page.evaluate('typeof window.__xss')).to.equal('undefined');
    expect(await page.locator('dd', { hasText: 'Quota exceeded' }).first().textContent()).to.equal(
      reason,
    );
    await shot('detail-denied');

    await page.goto(`${base}/subscriptions/${records['news-verified']!.id}`);
    const chart = page.getByRole('img', { name: /Content received for this subscription/ });
    expect(await chart.getAttribute('aria-labelledby')).to.equal('deliveries-title');
    expect(await page.locator('#deliveries-title').textContent()).to.contain(
      '3 accepted and 1 refused',
    );
    expect(await page.locator('rect.bar-accepted').count()).to.equal(1);
    expect(await page.locator('rect.bar-rejected').count()).to.equal(1);
    const history = await page.locator('table.cards tbody').textContent();
    expect(history).to.contain('Refused content: X-Hub-Signature did not match the body');
    expect(history).to.contain('Accepted content');
    expect(history).to.contain('The hub verified the subscription (lease');
    expect(await page.locator('dd', { hasText: 'left (ends' }).count()).to.equal(1);
    await shot('detail');
  });

  it('resets counters and retries now, each after a confirmation', async () => {
    await page.goto(`${base}/subscriptions/${records['hub-error']!.id}`);

    await page.getByRole('button', { name: 'Reset counters…' }).click();
    await page.waitForURL(/confirm\?action=reset/);
    expect(await page.locator('h1').textContent()).to.equal('Reset the error counters?');
    expect((await stored('hub-error')).hubErrors).to.equal(1);
    await shot('confirm');
    await page.getByRole('button', { name: 'Yes, reset counters' }).click();
    await page.waitForURL(/done=reset/);
    expect(await page.getByRole('status').textContent()).to.equal('Error counters reset.');
    expect((await stored('hub-error')).hubErrors).to.equal(0);

    const topic = records['hub-error']!.topic;
    const requests = hub.requests.filter((request) => request.topic === topic).length;
    await page.getByRole('button', { name: 'Retry now…' }).click();
    await page.getByRole('button', { name: 'Yes, retry now' }).click();
    await page.waitForURL(/done=retry/);
    await until(
      'hub-error',
      (r) => r.subscribeStatus === 'verified',
      'the retried subscription to be verified',
    );
    expect(hub.requests.filter((request) => request.topic === topic).length).to.equal(requests + 1);
    await page.reload();
    expect((await page.locator('dd .badge').textContent())?.trim()).to.equal('Verified');
    await shot('detail-after-retry');
  });

  it('cancels an action without changing anything', async () => {
    await page.goto(`${base}/subscriptions/${records['unreachable']!.id}`);
    await page.getByRole('button', { name: 'Unsubscribe…' }).click();
    await page.getByRole('link', { name: 'Cancel' }).click();

    await page.waitForURL(`${base}/subscriptions/${records['unreachable']!.id}`);
    expect((await stored('unreachable')).unsubscribeStatus).to.equal(null);
  });

  it('unsubscribes and resubscribes, each after a confirmation', async () => {
    await page.goto(`${base}/subscriptions/${records['news-verified']!.id}`);
    await page.getByRole('button', { name: 'Unsubscribe…' }).click();
    await page.getByRole('button', { name: 'Yes, unsubscribe' }).click();
    await page.waitForURL(/done=unsubscribe/);
    await until('news-verified', (r) => r.unsubscribeStatus === 'verified', 'the unsubscription');

    await page.goto(`${base}/subscriptions/${records['denied']!.id}`);
    await page.getByRole('button', { name: 'Resubscribe…' }).click();
    await page.getByRole('button', { name: 'Yes, resubscribe' }).click();
    await page.waitForURL(/done=resubscribe/);
    await until('denied', (r) => r.subscribeStatus === 'verified', 'the resubscription');

    await page.goto(`${base}?status=unsubscribed`);
    const ended = await page.locator('#subscriptions td[data-label="Topic"]').allTextContents();
    expect(ended.map((text) => text.trim()).sort()).to.deep.equal(
      [records['news-verified']!.topic, records['ended']!.topic].sort(),
    );
  });

  it('works from the keyboard alone: skip link first, then through the confirmation', async () => {
    await page.goto(`${base}/subscriptions/${records['never-verified']!.id}`);

    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).to.equal('Skip to content');

    // Tab to "Retry now…", press Enter; on the confirmation, Tab to the button and press Enter.
    const tabTo = async (text: string) => {
      for (let presses = 0; presses < 40; presses++) {
        await page.keyboard.press('Tab');
        const focused = await page.evaluate('document.activeElement.textContent.trim()');
        if (focused === text) return;
      }
      throw new Error(`Could not reach "${text}" with Tab`);
    };
    const requests = silentHub.requests;
    await tabTo('Retry now…');
    await page.keyboard.press('Enter');
    await page.waitForURL(/confirm\?action=retry/);
    await tabTo('Yes, retry now');
    await page.keyboard.press('Enter');
    await page.waitForURL(/done=retry/);
    // The silent hub takes the request again, and still never verifies it.
    await until(
      'never-verified',
      (r) => r.verifyTimeouts === 1,
      'the retry to count a verification timeout',
    );
    await eventually(
      () => silentHub.requests === requests + 1,
      'the request to reach the hub again',
    );
  });

  it('labels every control and keeps text contrast at 4.5:1 or more', async () => {
    await page.goto(`${base}?status=failing`);

    const unlabelled = await page.evaluate(`[...document.querySelectorAll(
      'input:not([type=hidden]), select',
    )].filter((control) => control.labels.length === 0).map((control) => control.outerHTML)`);
    expect(unlabelled).to.deep.equal([]);

    const pairs = (await page.evaluate(`(() => {
      const backgroundOf = (element) => {
        for (let node = element; node; node = node.parentElement) {
          const color = getComputedStyle(node).backgroundColor;
          if (color !== 'rgba(0, 0, 0, 0)' && color !== 'transparent') return color;
        }
        return 'rgb(255, 255, 255)';
      };
      const selectors = [
        'h1', 'main p', 'a', 'label', 'button', '.badge', 'td', 'th', '.summary a',
      ];
      return selectors.flatMap((selector) =>
        [...document.querySelectorAll(selector)].slice(0, 20).map((element) => ({
          selector,
          text: (element.textContent || '').trim().slice(0, 40),
          color: getComputedStyle(element).color,
          background: backgroundOf(element),
        })),
      );
    })()`)) as Array<{ selector: string; text: string; color: string; background: string }>;
    expect(pairs.length).to.be.above(20);
    for (const pair of pairs) {
      expect(
        contrast(pair.color, pair.background),
        `${pair.selector} "${pair.text}"`,
      ).to.be.at.least(4.5);
    }
  });

  it('fits a phone screen without sideways scrolling', async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      const small = await phone.newPage();
      await small.goto(`${base}?token=${TOKEN}`);
      await small.waitForURL(base);

      for (const path of ['', `/subscriptions/${records['news-verified']!.id}`]) {
        await small.goto(`${base}${path}`);
        const overflow = await small.evaluate(
          'document.documentElement.scrollWidth - window.innerWidth',
        );
        expect(overflow, `sideways overflow of ${path || 'the list'}`).to.be.at.most(0);
      }
      // The table turns into one card per subscription, each cell labelled.
      await small.goto(base);
      const display = await small.evaluate(
        `getComputedStyle(document.querySelector('#subscriptions tbody tr')).display`,
      );
      expect(display).to.equal('block');
      await shot('list-phone', small, false);
      await small.goto(`${base}/subscriptions/${records['news-verified']!.id}`);
      await shot('detail-phone', small, false);
    } finally {
      await phone.close();
    }
  });
});
