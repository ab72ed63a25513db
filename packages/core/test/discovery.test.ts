import { expect } from 'chai';
import {
  DiscoveryError,
  HttpRequestError,
  discover,
  parseDiscovery,
  type DiscoveryOptions,
} from '@websubsub/core';
import {
  headerMap,
  loadDiscoveryCases,
  loadDiscoveryFixture,
  serveFixture,
  type DiscoveryCase,
} from './helpers/discovery-fixtures.js';
import { redirect, startTestServer, type TestServer } from './helpers/discovery-server.js';

const cases = loadDiscoveryCases();

/** Run a discovery that must fail and return its error. */
async function discoveryFailure(url: string, options?: DiscoveryOptions): Promise<DiscoveryError> {
  try {
    await discover(url, options);
  } catch (error) {
    expect(error).to.be.instanceOf(DiscoveryError);
    return error as DiscoveryError;
  }
  throw new Error(`Expected discovery of ${url} to fail`);
}

/**
 * What discovery over the local server must find: a URL the fixture spells out in full stays
 * as it is; one that only a relative reference produced moves to the local server's origin.
 */
function expectedLocally(value: string, testCase: DiscoveryCase, origin: string): string {
  const fixture = loadDiscoveryFixture(testCase.name);
  if (fixture.text.includes(value)) return value;

  const url = new URL(value);
  expect(url.origin, 'a relative link resolves to the fixture origin').to.equal(
    new URL(testCase.url).origin,
  );
  return `${origin}${url.pathname}${url.search}`;
}

const html = (head: string, body = ''): string =>
  `<!doctype html><html><head><title>t</title>${head}</head><body>${body}</body></html>`;

describe('parseDiscovery', () => {
  describe('shared fixtures (cases.json)', () => {
    for (const testCase of cases) {
      it(`${testCase.name}: ${testCase.from}, ${testCase.hubs.length} hub(s)`, () => {
        const fixture = loadDiscoveryFixture(testCase.name);

        const links = parseDiscovery(testCase.url, headerMap(fixture), fixture.body);

        expect(links).to.deep.equal({
          hubs: testCase.hubs,
          self: testCase.self,
          source: testCase.from,
        });
      });
    }
  });

  describe('Link headers', () => {
    const url = 'https://topic.example.com/feed';

    it('reads several links from one header and several headers, in order', () => {
      const links = parseDiscovery(
        url,
        {
          link: [
            '<https://hub1.example.net/>; rel="hub", <https://topic.example.com/self>; rel="self"',
            '<https://hub2.example.net/>; rel="hub"',
          ],
        },
        '',
      );

      expect(links).to.deep.equal({
        hubs: ['https://hub1.example.net/', 'https://hub2.example.net/'],
        self: 'https://topic.example.com/self',
        source: 'link-header',
      });
    });

    it('compares rel case-insensitively, quoted or not, with several tokens', () => {
      const links = parseDiscovery(
        url,
        { Link: '<https://hub.example.net/>; REL="Hub alternate", </canonical>; Rel=SELF' },
        '',
      );

      expect(links?.hubs).to.deep.equal(['https://hub.example.net/']);
      expect(links?.self).to.equal('https://topic.example.com/canonical');
    });

    it('resolves relative links against the URL given, and drops duplicate hubs', () => {
      const links = parseDiscovery(
        'https://topic.example.com/a/b',
        {
          link: [
            '</hub>; rel="hub"',
            '<https://topic.example.com/hub>; rel="hub"',
            '<c>; rel="self"',
          ],
        },
        '',
      );

      expect(links?.hubs).to.deep.equal(['https://topic.example.com/hub']);
      expect(links?.self).to.equal('https://topic.example.com/a/c');
    });

    it('takes the first of several rel="self" links', () => {
      const links = parseDiscovery(
        url,
        {
          link: [
            '<https://h.example.net/>; rel=hub',
            '<https://one.example.com/>; rel=self',
            '<https://two.example.com/>; rel=self',
          ].join(', '),
        },
        '',
      );

      expect(links?.self).to.equal('https://one.example.com/');
    });

    it('wins over the document, which is then not read', () => {
      const body = html('<link rel="hub" href="https://document-hub.example.net/">');

      const links = parseDiscovery(
        url,
        { link: '<https://header-hub.example.net/>; rel="hub"', 'content-type': 'text/html' },
        body,
      );

      expect(links).to.deep.equal({
        hubs: ['https://header-hub.example.net/'],
        self: null,
        source: 'link-header',
      });
    });

    it('lends its self to a document that names hubs but no self', () => {
      const links = parseDiscovery(
        url,
        { link: '<https://topic.example.com/canonical>; rel="self"', 'content-type': 'text/html' },
        html('<link rel="hub" href="https://hub.example.net/">'),
      );

      expect(links).to.deep.equal({
        hubs: ['https://hub.example.net/'],
        self: 'https://topic.example.com/canonical',
        source: 'html',
      });
    });

    it('skips a malformed header but reads the others', () => {
      const links = parseDiscovery(
        url,
        { link: ['garbage;;', '<https://hub.example.net/>; rel="hub"'] },
        '',
      );

      expect(links?.hubs).to.deep.equal(['https://hub.example.net/']);
    });

    it('ignores links that are not http(s)', () => {
      const links = parseDiscovery(
        url,
        { link: '<mailto:hub@example.net>; rel="hub", <https://hub.example.net/>; rel="hub"' },
        '',
      );

      expect(links?.hubs).to.deep.equal(['https://hub.example.net/']);
    });
  });

  describe('HTML', () => {
    const url = 'https://www.example.org/blog/page.html';
    const headers = { 'content-type': 'text/html; charset=utf-8' };

    it('ignores <link rel="hub"> outside <head>', () => {
      const body = html('', '<link rel="hub" href="https://body-hub.example.net/">');

      expect(parseDiscovery(url, headers, body)).to.equal(null);
    });

    it('reads <head> links but not the ones in <body>', () => {
      const body = html(
        '<link rel="hub" href="https://head-hub.example.net/">',
        '<link rel="hub" href="https://body-hub.example.net/"><link rel="self" href="/body-self">',
      );

      expect(parseDiscovery(url, headers, body)).to.deep.equal({
        hubs: ['https://head-hub.example.net/'],
        self: null,
        source: 'html',
      });
    });

    it('resolves against <base href>, itself relative to the URL', () => {
      const body = html(
        '<base href="/base/dir/"><link rel="hub" href="hub"><link rel="self" href="../topic">',
      );

      expect(parseDiscovery(url, headers, body)).to.deep.equal({
        hubs: ['https://www.example.org/base/dir/hub'],
        self: 'https://www.example.org/base/topic',
        source: 'html',
      });
    });

    it('uses only the first <base href>', () => {
      const body = html(
        '<base target="_blank"><base href="https://one.example.com/">' +
          '<base href="https://two.example.com/"><link rel="hub" href="h">',
      );

      expect(parseDiscovery(url, headers, body)?.hubs).to.deep.equal(['https://one.example.com/h']);
    });

    it('reads the head of a page nested twenty thousand deep, with a <base> below', () => {
      const body =
        '<html><head><link rel="hub" href="hub"></head><body>' +
        `${'<div>'.repeat(20_000)}<base href="https://deep.example.com/"></body></html>`;

      expect(parseDiscovery(url, headers, body)?.hubs).to.deep.equal([
        'https://deep.example.com/hub',
      ]);
    });

    it('takes the first rel="self" and drops repeated hubs', () => {
      const body = html(
        '<link rel="hub" href="https://hub.example.net/"><link rel="self" href="/first">' +
          '<link rel="self" href="/second"><link rel="HUB" href="https://hub.example.net/">',
      );

      expect(parseDiscovery(url, headers, body)).to.deep.equal({
        hubs: ['https://hub.example.net/'],
        self: 'https://www.example.org/first',
        source: 'html',
      });
    });

    it('reads HTML served without a Content-Type', () => {
      const body = html('<link rel="hub" href="https://hub.example.net/">');

      expect(parseDiscovery(url, {}, body)?.source).to.equal('html');
    });
  });

  describe('feeds', () => {
    const url = 'https://www.example.org/feed.xml';

    it('ignores Atom links in items and outside the RSS <channel>', () => {
      const body = `<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
  <atom:link rel="hub" href="https://outside-channel.example.net/"/>
  <channel>
    <title>t</title>
    <item><atom:link rel="hub" href="https://item.example.net/"/></item>
    <atom:link rel="hub" href="https://channel.example.net/"/>
  </channel>
</rss>`;

      expect(parseDiscovery(url, { 'content-type': 'application/rss+xml' }, body)).to.deep.equal({
        hubs: ['https://channel.example.net/'],
        self: null,
        source: 'rss',
      });
    });

    it('ignores a <link> in another namespace and a plain RSS <link>', () => {
      const body = `<rss version="2.0" xmlns:x="https://other.example.com/ns"><channel>
<link>https://www.example.org/</link>
<x:link rel="hub" href="https://wrong-namespace.example.net/"/>
</channel></rss>`;

      expect(parseDiscovery(url, { 'content-type': 'text/xml' }, body)).to.equal(null);
    });

    it('reads an Atom feed whatever its prefix, honouring xml:base', () => {
      const body = `<a:feed xmlns:a="http://www.w3.org/2005/Atom"
 xml:base="https://base.example.com/feeds/">
<a:link rel="hub" href="../hub"/><a:link rel="self" href="main.atom"/>
<a:entry><a:link rel="self" href="entry.atom"/></a:entry></a:feed>`;

      expect(parseDiscovery(url, { 'content-type': 'application/atom+xml' }, body)).to.deep.equal({
        hubs: ['https://base.example.com/hub'],
        self: 'https://base.example.com/feeds/main.atom',
        source: 'atom',
      });
    });

    it('reads an RSS 1.0 (RDF) channel', () => {
      const body = `<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel rdf:about="${url}"><atom:link rel="hub" href="https://hub.example.net/"/></channel>
</rdf:RDF>`;

      expect(
        parseDiscovery(url, { 'content-type': 'application/rdf+xml' }, body)?.hubs,
      ).to.deep.equal(['https://hub.example.net/']);
    });

    it('sniffs a feed served as text/html or text/plain', () => {
      const body =
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">' +
        '<link rel="hub" href="https://hub.example.net/"/></feed>';

      for (const type of ['text/html', 'text/plain', undefined]) {
        const links = parseDiscovery(url, { 'content-type': type }, body);
        expect(links?.source, String(type)).to.equal('atom');
      }
    });

    const ATOM = 'http://www.w3.org/2005/Atom';

    it('resolves prefixes declared on the channel or on the link itself', () => {
      const feed = (channel: string, link: string) =>
        `<rss xmlns:a="urn:not-atom"><channel ${channel}>` +
        `<a:link ${link} rel="hub" href="https://hub.example.net/"/></channel></rss>`;
      const hubs = (body: string) =>
        parseDiscovery(url, { 'content-type': 'application/rss+xml' }, body)?.hubs;

      expect(hubs(feed(`xmlns:a="${ATOM}"`, ''))).to.deep.equal(['https://hub.example.net/']);
      expect(hubs(feed('', `xmlns:a="${ATOM}"`))).to.deep.equal(['https://hub.example.net/']);
      expect(hubs(feed(`xmlns:a="${ATOM}"`, 'xmlns:a="urn:x"'))).to.equal(undefined);
      expect(hubs(feed('', ''))).to.equal(undefined);
    });

    it('reads feed links around entries nested hundreds deep', () => {
      const deep = '<div>'.repeat(500) + '</div>'.repeat(500);
      const body =
        `<feed xmlns="${ATOM}"><link rel="hub" href="https://hub.example.net/"/>` +
        `<entry><content type="xhtml">${deep}</content></entry>` +
        '<link rel="self" href="https://www.example.org/after"/></feed>';

      expect(parseDiscovery(url, { 'content-type': 'application/atom+xml' }, body)).to.deep.equal({
        hubs: ['https://hub.example.net/'],
        self: 'https://www.example.org/after',
        source: 'atom',
      });
    });

    it('finds the hub of a feed nested a hundred thousand deep, closed or not', () => {
      // Namespaces resolved at every level made this take minutes; the test would time out.
      const start = `<feed xmlns="${ATOM}"><link rel="hub" href="https://hub.example.net/"/>`;
      const levels = 100_000;
      for (const body of [
        `${start}${'<x>'.repeat(levels)}${'</x>'.repeat(levels)}</feed>`,
        `${start}${'<x xmlns:p="urn:p">'.repeat(levels)}`,
      ]) {
        expect(
          parseDiscovery(url, { 'content-type': 'application/atom+xml' }, body)?.hubs,
        ).to.deep.equal(['https://hub.example.net/']);
      }
    });

    it('reads a prolog of empty comments, instructions or doctypes with no element after', () => {
      // A regular expression backtracked exponentially on these: 32 took about half a minute.
      for (const unit of ['<!---->', '<??>', '<!doctype a []>']) {
        for (const times of [32, 2000]) {
          const body = unit.repeat(times);
          expect(parseDiscovery(url, { 'content-type': 'text/html' }, body), unit).to.equal(null);
        }
      }
      const prolog = `<?xml version="1.0"?><!-- -- --><!DOCTYPE feed [ <!ENTITY a "b"> ]>\n`;
      const feed = `<feed xmlns="${ATOM}"><link rel="hub" href="https://h.example/"/></feed>`;
      const body = `${prolog}${feed}`;
      expect(parseDiscovery(url, { 'content-type': 'text/plain' }, body)).to.deep.include({
        hubs: ['https://h.example/'],
        source: 'atom',
      });
    });

    it('still finds the hub in a feed that is not well-formed', () => {
      const body = `<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<title>Fish & Chips &nbsp; <b>bold</title>
<atom:link rel="hub" href="https://hub.example.net/"/>
</channel></rss>`;

      expect(
        parseDiscovery(url, { 'content-type': 'application/rss+xml' }, body)?.hubs,
      ).to.deep.equal(['https://hub.example.net/']);
    });

    it('does not read the body of a JSON response, even with markup inside', () => {
      const body = JSON.stringify({
        content_html: '<html><head><link rel="hub" href="https://hub.example.net/"></head></html>',
      });

      expect(parseDiscovery(url, { 'content-type': 'application/feed+json' }, body)).to.equal(null);
      expect(parseDiscovery(url, { 'content-type': 'application/json' }, body)).to.equal(null);
    });
  });

  describe('character encodings', () => {
    // "é" and "€" (0x80, where windows-1252 and ISO-8859-1 part) in the hub URL: decoded
    // wrongly they turn into U+FFFD or a control character, and the URL differs.
    const expectedHub = 'https://hub.example.net/caf%C3%A9?sign=%E2%82%AC';
    const url = 'https://www.example.org/';
    const hubHref = 'https://hub.example.net/caf\u00e9?sign=\u20ac';

    const atomFeed = (declaration: string): string =>
      `${declaration}<feed xmlns="http://www.w3.org/2005/Atom"><title>Caf\u00e9</title>` +
      `<link rel="hub" href="${hubHref}"/></feed>`;

    it('decodes a windows-1252 HTML body named in the Content-Type charset', () => {
      const links = parseDiscovery(
        url,
        { 'content-type': 'text/html; charset=windows-1252' },
        encodeWindows1252(html(`<link rel="hub" href="${hubHref}">`)),
      );

      expect(links?.hubs).to.deep.equal([expectedHub]);
    });

    it('decodes an HTML body by its <meta charset> when the header names none', () => {
      const text = html(`<meta charset="iso-8859-1"><link rel="hub" href="${hubHref}">`);

      const links = parseDiscovery(url, { 'content-type': 'text/html' }, encodeWindows1252(text));

      expect(links?.hubs).to.deep.equal([expectedHub]);
    });

    it('decodes an ISO-8859-1 feed by its XML declaration', () => {
      const text = atomFeed('<?xml version="1.0" encoding="ISO-8859-1"?>');

      const links = parseDiscovery(
        url,
        { 'content-type': 'application/atom+xml' },
        encodeWindows1252(text),
      );

      expect(links?.hubs).to.deep.equal([expectedHub]);
    });

    it('lets the Content-Type charset win over the XML declaration', () => {
      const text = atomFeed('<?xml version="1.0" encoding="UTF-8"?>');

      const links = parseDiscovery(
        url,
        { 'content-type': 'application/atom+xml; charset="ISO-8859-1"' },
        encodeWindows1252(text),
      );

      expect(links?.hubs).to.deep.equal([expectedHub]);
    });

    it('reads a UTF-8 byte-order mark before an XML declaration', () => {
      const text =
        '<?xml version="1.0"?><rss version="2.0"><channel>' +
        `<link xmlns="http://www.w3.org/2005/Atom" rel="hub" href="${hubHref}"/></channel></rss>`;
      const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);

      const links = parseDiscovery(url, { 'content-type': 'application/rss+xml' }, body);

      expect(links).to.deep.equal({ hubs: [expectedHub], self: null, source: 'rss' });
    });

    it('lets a UTF-16 byte-order mark win over a charset that says otherwise', () => {
      const text = html(`<link rel="hub" href="${hubHref}">`);
      const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);

      const links = parseDiscovery(url, { 'content-type': 'text/html; charset=iso-8859-1' }, body);

      expect(links?.hubs).to.deep.equal([expectedHub]);
    });

    it('reads UTF-8 when nothing is declared', () => {
      const text = html(`<link rel="hub" href="${hubHref}">`);

      const links = parseDiscovery(url, { 'content-type': 'text/html' }, Buffer.from(text, 'utf8'));

      expect(links?.hubs).to.deep.equal([expectedHub]);
    });
  });
});

describe('discover (over a real socket)', () => {
  const servers: TestServer[] = [];

  async function serve(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
    const server = await startTestServer(...args);
    servers.push(server);
    return server;
  }

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  describe('shared fixtures, served at their own path', () => {
    for (const testCase of cases) {
      it(testCase.name, async () => {
        const fixture = loadDiscoveryFixture(testCase.name);
        const fixtureUrl = new URL(testCase.url);
        const path = fixtureUrl.pathname + fixtureUrl.search;
        const server = await serve((request, response) => {
          if (request.url === path) return serveFixture(response, fixture, request.method);
          response.writeHead(404);
          response.end();
        });
        const topicUrl = server.origin + path;

        const result = await discover(topicUrl);

        expect(result).to.deep.equal({
          topic: expectedLocally(testCase.self, testCase, server.origin),
          hubs: testCase.hubs.map((hub) => expectedLocally(hub, testCase, server.origin)),
          requestedUrl: topicUrl,
          fetchedUrl: topicUrl,
          source: testCase.from,
          selfFound: true,
        });
      });
    }
  });

  it('asks for feeds first, then HTML, and says who it is', async () => {
    const fixture = loadDiscoveryFixture('atom-feed');
    const server = await serve((request, response) =>
      serveFixture(response, fixture, request.method),
    );

    await discover(server.origin + '/feed', { userAgent: 'reader/1.0' });

    const headers = server.requests[0]?.headers;
    expect(server.requests[0]?.method).to.equal('GET');
    expect(headers?.['user-agent']).to.equal('reader/1.0');
    const accept = String(headers?.accept).split(/,\s*/);
    expect(accept[0]).to.equal('application/atom+xml');
    expect(accept[1]).to.equal('application/rss+xml');
    expect(accept.indexOf('text/html;q=0.7')).to.be.above(accept.indexOf('text/xml;q=0.8'));
  });

  it('resolves links against the URL after redirects, and takes it as topic', async () => {
    const server = await serve((request, response) => {
      if (request.url === '/old') return redirect(response, 301, '/moved/once');
      if (request.url === '/moved/once') return redirect(response, 302, '/new/page.html');
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(html('<link rel="hub" href="hub?x=1"><link rel="alternate" href="/other">'));
    });

    const result = await discover(`${server.origin}/old`);

    expect(result).to.deep.equal({
      topic: `${server.origin}/new/page.html`,
      hubs: [`${server.origin}/new/hub?x=1`],
      requestedUrl: `${server.origin}/old`,
      fetchedUrl: `${server.origin}/new/page.html`,
      source: 'html',
      selfFound: false,
    });
  });

  it('stops at a redirect whose Link headers name a hub (chat.indieweb.org)', async () => {
    const server = await serve((request, response) => {
      if (request.url === '/dev/') {
        response.setHeader('Link', ['</hub>; rel="hub"', '</dev/>; rel="self"']);
        return redirect(response, 302, '/dev/2017-11-30');
      }
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(html('<title>no links here</title>'));
    });

    const result = await discover(`${server.origin}/dev/`);

    expect(result).to.deep.equal({
      topic: `${server.origin}/dev/`,
      hubs: [`${server.origin}/hub`],
      requestedUrl: `${server.origin}/dev/`,
      fetchedUrl: `${server.origin}/dev/`,
      source: 'link-header',
      selfFound: true,
    });
    expect(server.requests.map((request) => request.url)).to.deep.equal(['/dev/']);
  });

  it('follows a redirect whose Link headers name no hub to the page it leads to', async () => {
    const server = await serve((request, response) => {
      if (request.url === '/alias') {
        response.setHeader('Link', '</elsewhere>; rel="self"');
        return redirect(response, 301, '/feed');
      }
      response.writeHead(200, { link: '<https://hub.example.net/>; rel="hub"' });
      response.end();
    });

    const result = await discover(`${server.origin}/alias`);

    expect(result.hubs).to.deep.equal(['https://hub.example.net/']);
    expect(result.topic).to.equal(`${server.origin}/feed`);
    expect(result.fetchedUrl).to.equal(`${server.origin}/feed`);
  });

  it('keeps a self that differs from the URL fetched', async () => {
    const server = await serve((_request, response) => {
      response.setHeader('Link', [
        '<https://hub.example.net/>; rel="hub"',
        '</canonical>; rel="self"',
      ]);
      response.end();
    });

    const result = await discover(`${server.origin}/alias`);

    expect(result.topic).to.equal(`${server.origin}/canonical`);
    expect(result.fetchedUrl).to.equal(`${server.origin}/alias`);
    expect(result.selfFound).to.equal(true);
  });

  it("fails with 'no_hub' when nothing names a hub", async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html', link: '</x>; rel="self"' });
      response.end(
        html('<link rel="self" href="/x">', '<link rel="hub" href="https://hub.example.net/">'),
      );
    });

    const error = await discoveryFailure(`${server.origin}/page`);

    expect(error.code).to.equal('no_hub');
    expect(error.message).to.contain(`${server.origin}/page`);
  });

  it("fails with 'bad_status' on a non-2xx answer, even one naming a hub", async () => {
    const server = await serve((_request, response) => {
      response.writeHead(404, { link: '<https://hub.example.net/>; rel="hub"' });
      response.end('gone');
    });

    const error = await discoveryFailure(`${server.origin}/missing`);

    expect(error.code).to.equal('bad_status');
    expect(error.message).to.contain('404');
  });

  it("fails with 'fetch_failed' carrying the HttpRequestError when the fetch fails", async () => {
    const server = await serve(() => {});

    const timedOut = await discoveryFailure(server.origin, { timeoutMs: 200 });
    const blocked = await discoveryFailure(server.origin, { blockPrivateAddresses: true });

    expect(timedOut.code).to.equal('fetch_failed');
    expect(timedOut.cause).to.be.instanceOf(HttpRequestError);
    expect((timedOut.cause as HttpRequestError).code).to.equal('timeout');
    expect(blocked.code).to.equal('fetch_failed');
    expect((blocked.cause as HttpRequestError).code).to.equal('blocked_address');
  });

  it("fails with 'fetch_failed' for a redirect loop on the topic", async () => {
    const server = await serve((request, response) => {
      redirect(response, 302, request.url === '/a' ? '/b' : '/a');
    });

    const error = await discoveryFailure(`${server.origin}/a`);

    expect(error.code).to.equal('fetch_failed');
    expect((error.cause as HttpRequestError).code).to.equal('redirect_loop');
  });
});

/** windows-1252 bytes of a string (ASCII, Latin-1 and the euro sign are all the tests use). */
function encodeWindows1252(text: string): Buffer {
  return Buffer.from(
    Array.from(text, (char) => {
      const code = char === '\u20ac' ? 0x80 : char.charCodeAt(0);
      if (code > 0xff) throw new Error(`No windows-1252 byte for ${char} in this helper`);
      return code;
    }),
  );
}
