import { expect } from 'chai';

import { startTestHub, type TestHub } from '../src/index.js';
import { fixtureBytes, fixtureHeaders } from './helpers/fixtures.js';
import { fieldValues, rawRequest } from './helpers/raw-http.js';

describe('test hub: topic documents, feeds and redirects', () => {
  let hub: TestHub;

  beforeEach(async () => {
    hub = await startTestHub();
  });

  afterEach(async () => {
    await hub.close();
  });

  it('serves a topic with repeated Link fields in order and the exact body bytes', async () => {
    const headers = fixtureHeaders('discovery/wordpress-three-hubs.headers');
    const body = fixtureBytes('discovery/wordpress-three-hubs.body');

    const topic = hub.serveTopic('/feed/', { headers, body });
    const response = await rawRequest(topic);

    expect(topic).to.equal(`${hub.origin}/feed/`);
    expect(response.status).to.equal(200);
    expect(fieldValues(response.rawHeaders, 'link')).to.deep.equal(fieldValues(headers, 'link'));
    expect(fieldValues(response.rawHeaders, 'link')).to.have.length(4);
    expect(response.headers['content-length']).to.equal(String(body.length));
    expect(response.body.equals(body)).to.equal(true);
  });

  it('answers HEAD with the same header fields and no body', async () => {
    const topic = hub.serveTopic('/doc', {
      headers: { 'Content-Type': 'text/html', Link: '<https://hub.example.net/>; rel="hub"' },
      body: '<!doctype html><title>x</title>',
    });

    const response = await rawRequest(topic, { method: 'HEAD' });

    expect(response.status).to.equal(200);
    expect(response.headers['content-type']).to.equal('text/html');
    expect(response.headers['link']).to.equal('<https://hub.example.net/>; rel="hub"');
    expect(response.body).to.have.length(0);
  });

  it('serves any status, routes a path with a query string apart from the bare one', async () => {
    hub.serveTopic('/feed', { body: 'bare' });
    hub.serveTopic('/feed?page=2', { status: 410, body: 'gone' });

    const bare = await rawRequest(hub.topicUrl('/feed'));
    const other = await rawRequest(hub.topicUrl('/feed?page=3'));
    const paged = await rawRequest(hub.topicUrl('/feed?page=2'));

    expect([bare.status, bare.body.toString()]).to.deep.equal([200, 'bare']);
    expect([other.status, other.body.toString()]).to.deep.equal([200, 'bare']);
    expect([paged.status, paged.body.toString()]).to.deep.equal([410, 'gone']);
  });

  it('answers 404 at a path nothing is served at, and 405 to a POST to a topic', async () => {
    hub.serveTopic('/feed', { body: 'x' });

    expect((await rawRequest(hub.topicUrl('/nothing'))).status).to.equal(404);
    const post = await rawRequest(hub.topicUrl('/feed'), { method: 'POST', body: 'a=b' });
    expect(post.status).to.equal(405);
    expect(post.headers['allow']).to.equal('GET, HEAD');
  });

  it('serveFeed advertises the hub and topic in two Link fields and in the Atom body', async () => {
    const topic = hub.serveFeed('/atom');

    const response = await rawRequest(topic);

    expect(fieldValues(response.rawHeaders, 'link')).to.deep.equal([
      `<${hub.url}>; rel="hub"`,
      `<${topic}>; rel="self"`,
    ]);
    expect(response.headers['content-type']).to.equal('application/atom+xml; charset=utf-8');
    const text = response.body.toString();
    expect(text).to.include(`<link rel="hub" href="${hub.url}"/>`);
    expect(text).to.include(`<link rel="self" href="${topic}"/>`);
  });

  it('serveFeed without Link headers, with a given body and content type', async () => {
    const body = fixtureBytes('discovery/rss-atom-link.body');
    const topic = hub.serveFeed('/rss', {
      body,
      contentType: 'text/xml; charset=utf-8',
      linkHeaders: false,
    });

    const response = await rawRequest(topic);

    expect(fieldValues(response.rawHeaders, 'link')).to.deep.equal([]);
    expect(response.headers['content-type']).to.equal('text/xml; charset=utf-8');
    expect(response.body.equals(body)).to.equal(true);
  });

  for (const status of [301, 302, 307, 308] as const) {
    it(`redirects with ${status} and the Location given`, async () => {
      const target = hub.serveFeed('/new');
      hub.redirect('/old', target, status);

      const response = await rawRequest(hub.topicUrl('/old'));

      expect(response.status).to.equal(status);
      expect(response.headers['location']).to.equal(target);
    });
  }

  it('redirects a POST too, so a moved hub endpoint can be simulated', async () => {
    hub.redirect('/old-hub', hub.url, 307);

    const response = await rawRequest(hub.topicUrl('/old-hub'), {
      method: 'POST',
      body: 'hub.mode=subscribe',
    });

    expect(response.status).to.equal(307);
    expect(response.headers['location']).to.equal(hub.url);
  });

  it('defaults to 302 and keeps a relative Location as given', async () => {
    hub.redirect('/a', '/b');

    const response = await rawRequest(hub.topicUrl('/a'));

    expect(response.status).to.equal(302);
    expect(response.headers['location']).to.equal('/b');
  });

  it('refuses a path without a leading slash', () => {
    expect(() => hub.serveTopic('feed', { body: '' })).to.throw(/must start with "\/"/);
  });
});
