import { startTestHub, type TestHub } from '@websubsub/testing';
import { expect } from 'chai';

import type { SampleApp } from '../src/index.js';
import { startSample } from './servers.js';

describe('sample app upkeep with one-second intervals, over real sockets', () => {
  let hub: TestHub;
  let sample: SampleApp;
  let api: string;

  before(async () => {
    hub = await startTestHub({ maxLeaseSeconds: 4 });
    ({ sample, api } = await startSample({
      WEBSUBSUB_REFRESH_INTERVAL: '1',
      WEBSUBSUB_RETRY_INTERVAL: '1',
      WEBSUBSUB_RENEW_BEFORE: '3',
      WEBSUBSUB_VERIFY_WAIT_TIME: '1',
    }));
  });

  after(async () => {
    await sample.close();
    await hub.close();
  });

  const subscribe = async (topic: string) => {
    const response = await fetch(`${api}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic, hub: hub.url }),
    });
    expect(response.status).to.equal(202);
    return (await response.json()) as { id: string; callbackUrl: string };
  };
  const requestsFor = (callback: string) =>
    hub.requests.filter((request) => request.callback === callback && request.mode === 'subscribe');

  it("renews a lease of a few seconds before it ends, by the hub's own clock", async () => {
    const topic = hub.serveFeed('/short-lease');
    const created = await subscribe(topic);

    await hub.waitFor(() => requestsFor(created.callbackUrl).length >= 2, 6000);

    const second = requestsFor(created.callbackUrl)[1]!;
    const firstVerified = hub.verifications.find(
      (v) => v.callback === created.callbackUrl && v.confirmed,
    )!;
    // The renewal request reached the hub before the 4-second lease it renews ran out.
    expect(second.receivedAt.getTime()).to.be.below(firstVerified.at.getTime() + 4000);
    await hub.waitFor(
      () =>
        hub.verifications.filter((v) => v.callback === created.callbackUrl && v.confirmed).length >=
        2,
      3000,
    );
    const state = hub.subscriptions().find((entry) => entry.callback === created.callbackUrl);
    expect(state?.state).to.equal('active');
  });

  it('retries a hub that fails first and succeeds later', async () => {
    const topic = hub.serveFeed('/flaky');
    hub.failNext(1, { status: 500, body: 'temporarily broken' });
    const created = await subscribe(topic);

    await hub.waitFor(
      () => hub.verifications.some((v) => v.callback === created.callbackUrl && v.confirmed),
      6000,
    );
    const record = (await (await fetch(`${api}/subscriptions/${created.id}`)).json()) as Record<
      string,
      unknown
    >;
    expect(record['hubErrors']).to.equal(1);
    expect(record['subscribeStatus']).to.equal('verified');
  });
});

describe('sample app: a subscription given up on is shown as such', () => {
  let hub: TestHub;
  let sample: SampleApp;
  let api: string;

  before(async () => {
    hub = await startTestHub();
    ({ sample, api } = await startSample({
      WEBSUBSUB_RETRY_INTERVAL: '1',
      WEBSUBSUB_MAX_HUB_ERROR_RETRIES: '2',
    }));
  });

  after(async () => {
    await sample?.close();
    await hub?.close();
  });

  it('stops after the maximum of hub errors and says so in its JSON', async () => {
    hub.failNext(10, { status: 400, body: 'topic not allowed' });
    const response = await fetch(`${api}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: hub.serveFeed('/refused'), hub: hub.url }),
    });
    const { id } = (await response.json()) as { id: string };

    let record: Record<string, unknown> = {};
    for (let attempt = 0; attempt < 100 && record['gaveUp'] !== true; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      record = (await (await fetch(`${api}/subscriptions/${id}`)).json()) as Record<
        string,
        unknown
      >;
    }
    expect(record['gaveUp']).to.equal(true);
    expect(record['hubErrors']).to.equal(2);
    expect(record['subscribeStatus']).to.equal('huberror');
    expect(record['retryAt']).to.equal(null);
    expect(String(record['lastError'])).to.match(/^Gave up after 2 hub errors: Hub answered 400/);
    const requests = hub.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(hub.requests.length).to.equal(requests);
  });
});
