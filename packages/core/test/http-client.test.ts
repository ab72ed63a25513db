import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  BlockedAddressError,
  HttpRequestError,
  USER_AGENT,
  httpRequest,
  isPrivateAddress,
  type HttpOptions,
  type HttpRequest,
} from '@websubsub/core';
import { redirect, startTestServer, type TestServer } from './helpers/discovery-server.js';

const packageVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** Run a request that must fail and return its error. */
async function failure(
  url: string,
  request: HttpRequest = { method: 'GET' },
  options: HttpOptions = {},
): Promise<HttpRequestError> {
  try {
    await httpRequest(url, request, options);
  } catch (error) {
    expect(error).to.be.instanceOf(HttpRequestError);
    return error as HttpRequestError;
  }
  throw new Error(`Expected ${url} to fail`);
}

describe('httpRequest', () => {
  const servers: TestServer[] = [];

  async function serve(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
    const server = await startTestServer(...args);
    servers.push(server);
    return server;
  }

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  describe('plain requests', () => {
    it('returns status, final URL, lower-case headers and the body bytes', async () => {
      const server = await serve((_request, response) => {
        response.setHeader('X-Thing', 'one');
        response.setHeader('Link', ['<https://hub.example.com/>; rel="hub"', '</a>; rel="self"']);
        response.writeHead(201, { 'content-type': 'text/plain' });
        response.end(Buffer.from([0xe2, 0x82, 0xac, 0x00]));
      });

      const response = await httpRequest(`${server.origin}/thing?x=1`, { method: 'GET' });

      expect(response.status).to.equal(201);
      expect(response.url).to.equal(`${server.origin}/thing?x=1`);
      expect(response.headers['x-thing']).to.equal('one');
      expect(response.headers.link).to.deep.equal([
        '<https://hub.example.com/>; rel="hub"',
        '</a>; rel="self"',
      ]);
      expect(response.body.equals(Buffer.from([0xe2, 0x82, 0xac, 0x00]))).to.equal(true);
      expect(response.redirects).to.deep.equal([]);
    });

    it('returns 4xx and 5xx answers instead of throwing', async () => {
      const server = await serve((_request, response) => {
        response.writeHead(503, { 'retry-after': '30' });
        response.end('busy');
      });

      const response = await httpRequest(server.origin, { method: 'GET' });

      expect(response.status).to.equal(503);
      expect(response.headers['retry-after']).to.equal('30');
      expect(response.body.toString()).to.equal('busy');
    });

    it('sends the method, headers and body it is given', async () => {
      const server = await serve((_request, response) => response.end('ok'));

      await httpRequest(server.origin + '/hub', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'hub.mode=subscribe&hub.topic=x',
      });

      const [received] = server.requests;
      expect(received?.method).to.equal('POST');
      expect(received?.url).to.equal('/hub');
      expect(received?.headers['content-type']).to.equal('application/x-www-form-urlencoded');
      expect(received?.body).to.equal('hub.mode=subscribe&hub.topic=x');
    });

    it('sends a HEAD and gets no body, whatever length it announces', async () => {
      const server = await serve((_request, response) => {
        response.writeHead(200, { 'content-length': '2048' });
        response.end();
      });

      const response = await httpRequest(
        server.origin,
        { method: 'HEAD' },
        { maxResponseBytes: 1024 },
      );

      expect(server.requests[0]?.method).to.equal('HEAD');
      expect(response.headers['content-length']).to.equal('2048');
      expect(response.body.length).to.equal(0);
    });

    it('identifies itself with the default User-Agent, naming the package version', async () => {
      const server = await serve((_request, response) => response.end());

      await httpRequest(server.origin, { method: 'GET' });

      const expected = `websubsub/${packageVersion} (+https://github.com/websubsub/websubsub)`;
      expect(server.requests[0]?.headers['user-agent']).to.equal(expected);
      expect(USER_AGENT).to.equal(expected);
    });

    it('sends the userAgent option instead, and a request header over both', async () => {
      const server = await serve((_request, response) => response.end());

      await httpRequest(server.origin, { method: 'GET' }, { userAgent: 'my-app/2.0' });
      await httpRequest(
        server.origin,
        { method: 'GET', headers: { 'User-Agent': 'per-request/1.0' } },
        { userAgent: 'my-app/2.0' },
      );

      expect(server.requests.map((request) => request.headers['user-agent'])).to.deep.equal([
        'my-app/2.0',
        'per-request/1.0',
      ]);
    });
  });

  describe('URL checks', () => {
    it('rejects a string that is not a URL with invalid_url', async () => {
      const error = await failure('not a url');
      expect(error.code).to.equal('invalid_url');
    });

    for (const url of ['ftp://127.0.0.1/feed', 'file:///etc/passwd', 'data:text/plain,hi']) {
      it(`rejects ${url.split(':')[0]}: with unsupported_protocol`, async () => {
        const error = await failure(url);
        expect(error.code).to.equal('unsupported_protocol');
      });
    }
  });

  describe('redirects', () => {
    it('follows a 301, 302, 307, 308 chain with GET and reports every hop', async () => {
      const server = await serve((request, response) => {
        if (request.url === '/r1') return redirect(response, 301, 'r2');
        if (request.url === '/r2') return redirect(response, 302, '/r3');
        if (request.url === '/r3') return redirect(response, 307, `${server.origin}/r4`);
        if (request.url === '/r4') return redirect(response, 308, '/final?done=1');
        response.end(`final ${request.method}`);
      });

      const response = await httpRequest(`${server.origin}/r1`, { method: 'GET' });

      expect(response.status).to.equal(200);
      expect(response.body.toString()).to.equal('final GET');
      expect(response.url).to.equal(`${server.origin}/final?done=1`);
      expect(response.redirects).to.deep.equal([
        { status: 301, from: `${server.origin}/r1`, to: `${server.origin}/r2` },
        { status: 302, from: `${server.origin}/r2`, to: `${server.origin}/r3` },
        { status: 307, from: `${server.origin}/r3`, to: `${server.origin}/r4` },
        { status: 308, from: `${server.origin}/r4`, to: `${server.origin}/final?done=1` },
      ]);
      expect(server.requests.map((request) => request.method)).to.deep.equal([
        'GET',
        'GET',
        'GET',
        'GET',
        'GET',
      ]);
    });

    for (const status of [301, 302, 303]) {
      it(`turns a POST into a GET without body after a ${status} (fetch semantics)`, async () => {
        const server = await serve((request, response) => {
          if (request.url === '/form') return redirect(response, status, '/done');
          response.end();
        });

        await httpRequest(`${server.origin}/form`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'a=1',
        });

        const second = server.requests[1];
        expect(second?.method).to.equal('GET');
        expect(second?.body).to.equal('');
        expect(second?.headers['content-type']).to.equal(undefined);
      });
    }

    for (const status of [307, 308, 301, 302]) {
      it(`re-sends a POST with its body after a ${status} in 'same-method' mode`, async () => {
        const server = await serve((request, response) => {
          if (request.url === '/hub') return redirect(response, status, '/new-hub');
          response.writeHead(202);
          response.end();
        });

        const response = await httpRequest(
          `${server.origin}/hub`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'hub.mode=subscribe',
            redirect: 'same-method',
          },
          {},
        );

        expect(response.status).to.equal(202);
        const second = server.requests[1];
        expect(second?.method).to.equal('POST');
        expect(second?.url).to.equal('/new-hub');
        expect(second?.body).to.equal('hub.mode=subscribe');
        expect(second?.headers['content-type']).to.equal('application/x-www-form-urlencoded');
      });
    }

    it("returns a 303 unfollowed in 'same-method' mode", async () => {
      const server = await serve((_request, response) => redirect(response, 303, '/elsewhere'));

      const response = await httpRequest(server.origin, {
        method: 'POST',
        body: 'x',
        redirect: 'same-method',
      });

      expect(response.status).to.equal(303);
      expect(response.headers.location).to.equal('/elsewhere');
      expect(server.requests).to.have.length(1);
    });

    it("returns any redirect unfollowed in 'manual' mode", async () => {
      const server = await serve((_request, response) => redirect(response, 308, '/elsewhere'));

      const response = await httpRequest(server.origin, { method: 'GET', redirect: 'manual' });

      expect(response.status).to.equal(308);
      expect(response.redirects).to.deep.equal([]);
      expect(server.requests).to.have.length(1);
    });

    it('follows maxRedirects hops, and fails with too_many_redirects past them', async () => {
      // /hop/N redirects to /hop/N-1; /hop/0 answers.
      const server = await serve((request, response) => {
        const left = Number(request.url.split('/')[2]);
        if (left > 0) return redirect(response, 302, `/hop/${left - 1}`);
        response.end('arrived');
      });

      const within = await httpRequest(
        `${server.origin}/hop/3`,
        { method: 'GET' },
        { maxRedirects: 3 },
      );
      const error = await failure(`${server.origin}/hop/4`, { method: 'GET' }, { maxRedirects: 3 });

      expect(within.body.toString()).to.equal('arrived');
      expect(within.redirects).to.have.length(3);
      expect(error.code).to.equal('too_many_redirects');
      expect(server.requests.map((request) => request.url).slice(4)).to.deep.equal([
        '/hop/4',
        '/hop/3',
        '/hop/2',
        '/hop/1',
      ]);
    });

    it('follows 5 redirects by default, not 6', async () => {
      const server = await serve((request, response) => {
        const left = Number(request.url.split('/')[2]);
        if (left > 0) return redirect(response, 301, `/hop/${left - 1}`);
        response.end('arrived');
      });

      const five = await httpRequest(`${server.origin}/hop/5`, { method: 'GET' });
      const six = await failure(`${server.origin}/hop/6`);

      expect(five.redirects).to.have.length(5);
      expect(six.code).to.equal('too_many_redirects');
    });

    it('detects a loop as redirect_loop, apart from the hop limit', async () => {
      const server = await serve((request, response) => {
        redirect(response, 302, request.url === '/a' ? '/b' : '/a');
      });

      const error = await failure(`${server.origin}/a`, { method: 'GET' }, { maxRedirects: 20 });

      expect(error.code).to.equal('redirect_loop');
      expect(error.message).to.contain(`${server.origin}/a`);
      expect(server.requests.map((request) => request.url)).to.deep.equal(['/a', '/b']);
    });

    it('detects a URL redirecting to itself', async () => {
      const server = await serve((_request, response) => redirect(response, 301, '/same'));

      const error = await failure(`${server.origin}/same`);

      expect(error.code).to.equal('redirect_loop');
      expect(server.requests).to.have.length(1);
    });

    it('does not take POST then 303 to the same URL as a loop', async () => {
      const server = await serve((request, response) => {
        if (request.method === 'POST') return redirect(response, 303, '/form');
        response.end('form page');
      });

      const response = await httpRequest(`${server.origin}/form`, { method: 'POST', body: 'a=1' });

      expect(response.body.toString()).to.equal('form page');
      expect(server.requests.map((request) => request.method)).to.deep.equal(['POST', 'GET']);
    });

    it('fails with invalid_redirect when a redirect has no Location', async () => {
      const server = await serve((_request, response) => {
        response.writeHead(302);
        response.end();
      });

      const error = await failure(server.origin);

      expect(error.code).to.equal('invalid_redirect');
      expect(error.message).to.contain('without a Location');
    });

    it('fails with invalid_redirect when the Location is not a URL', async () => {
      const server = await serve((_request, response) => redirect(response, 302, 'http://[::1'));

      const error = await failure(server.origin);

      expect(error.code).to.equal('invalid_redirect');
      expect(error.message).to.contain('http://[::1');
    });

    it('fails with unsupported_protocol when a redirect leaves http(s)', async () => {
      const server = await serve((_request, response) =>
        redirect(response, 302, 'file:///etc/passwd'),
      );

      const error = await failure(server.origin);

      expect(error.code).to.equal('unsupported_protocol');
    });

    it('drops credentials on a redirect to another origin only', async () => {
      const other = await serve((_request, response) => response.end());
      const server = await serve((request, response) => {
        if (request.url === '/start') return redirect(response, 302, '/same-origin');
        redirect(response, 302, `${other.origin}/other-origin`);
      });

      await httpRequest(`${server.origin}/start`, {
        method: 'GET',
        headers: { authorization: 'Bearer secret', 'x-kept': 'yes' },
      });

      expect(server.requests[1]?.headers.authorization).to.equal('Bearer secret');
      expect(other.requests[0]?.headers.authorization).to.equal(undefined);
      expect(other.requests[0]?.headers['x-kept']).to.equal('yes');
    });
  });

  describe('limits', () => {
    it('times out when no response comes, after about timeoutMs', async () => {
      const server = await serve(() => {});

      const started = Date.now();
      const error = await failure(server.origin, { method: 'GET' }, { timeoutMs: 200 });
      const elapsed = Date.now() - started;

      expect(error.code).to.equal('timeout');
      expect(elapsed).to.be.within(180, 1500);
    });

    it('counts the body against the timeout too', async () => {
      const server = await serve((_request, response) => {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('first half, then nothing');
      });

      const error = await failure(server.origin, { method: 'GET' }, { timeoutMs: 200 });

      expect(error.code).to.equal('timeout');
    });

    it('counts every redirect hop against one timeout', async () => {
      const server = await serve((request, response) => {
        const left = Number(request.url.split('/')[2]);
        setTimeout(() => {
          if (left > 0) redirect(response, 302, `/slow/${left - 1}`);
          else response.end('late');
        }, 80);
      });

      const error = await failure(`${server.origin}/slow/4`, { method: 'GET' }, { timeoutMs: 200 });

      expect(error.code).to.equal('timeout');
      expect(server.requests.length).to.be.below(5);
    });

    it('refuses a body announced larger than maxResponseBytes', async () => {
      const server = await serve((_request, response) => {
        response.writeHead(200, { 'content-length': '2048' });
        response.end(Buffer.alloc(2048, 'a'));
      });

      const error = await failure(server.origin, { method: 'GET' }, { maxResponseBytes: 1024 });

      expect(error.code).to.equal('response_too_large');
    });

    it('stops reading a streamed body once it passes maxResponseBytes', async () => {
      let sent = 0;
      const server = await serve((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/octet-stream' });
        // Chunked and endless: only a reader that counts can stop it.
        const timer = setInterval(() => {
          if (response.destroyed) return clearInterval(timer);
          sent += 512;
          response.write(Buffer.alloc(512, 'b'));
        }, 1);
        response.on('close', () => clearInterval(timer));
      });

      const error = await failure(
        server.origin,
        { method: 'GET' },
        { maxResponseBytes: 4096, timeoutMs: 2000 },
      );

      expect(error.code).to.equal('response_too_large');
      expect(sent).to.be.above(4096);
    });

    it('accepts a streamed body of exactly maxResponseBytes', async () => {
      const server = await serve((_request, response) => {
        response.write(Buffer.alloc(512, 'c'));
        response.end(Buffer.alloc(512, 'c'));
      });

      const response = await httpRequest(
        server.origin,
        { method: 'GET' },
        { maxResponseBytes: 1024 },
      );

      expect(response.body.length).to.equal(1024);
    });

    it('reports a refused connection as network', async () => {
      const server = await startTestServer(() => {});
      await server.close();

      const error = await failure(server.origin);

      expect(error.code).to.equal('network');
      expect(error.url).to.equal(`${server.origin}/`);
      expect(error.cause).to.be.instanceOf(Error);
    });
  });

  describe('blockPrivateAddresses', () => {
    it('refuses 127.0.0.1 without sending anything', async () => {
      const server = await serve((_request, response) => response.end());

      const error = await failure(
        server.origin,
        { method: 'GET' },
        { blockPrivateAddresses: true },
      );

      expect(error.code).to.equal('blocked_address');
      expect(error.cause).to.be.instanceOf(BlockedAddressError);
      expect(server.requests).to.have.length(0);
    });

    it('allows 127.0.0.1 when off, which is the default', async () => {
      const server = await serve((_request, response) => response.end('reached'));

      const off = await httpRequest(
        server.origin,
        { method: 'GET' },
        { blockPrivateAddresses: false },
      );
      const byDefault = await httpRequest(server.origin, { method: 'GET' });

      expect(off.body.toString()).to.equal('reached');
      expect(byDefault.body.toString()).to.equal('reached');
    });

    it('refuses localhost by the address it resolves to, not by its name', async () => {
      const server = await serve((_request, response) => response.end());
      const judged: string[] = [];

      const error = await failure(
        `http://localhost:${server.port}/`,
        { method: 'GET' },
        {
          blockPrivateAddresses: true,
          isBlockedAddress: (address) => {
            judged.push(address);
            return isPrivateAddress(address);
          },
        },
      );

      expect(error.code).to.equal('blocked_address');
      expect(error.message).to.contain('localhost');
      expect(judged).to.include('127.0.0.1');
      expect(judged).not.to.include('localhost');
      expect(server.requests).to.have.length(0);
    });

    it('refuses localhost with the default policy', async () => {
      const server = await serve((_request, response) => response.end());

      const error = await failure(
        `http://localhost:${server.port}/`,
        { method: 'GET' },
        { blockPrivateAddresses: true },
      );

      expect(error.code).to.equal('blocked_address');
      expect(server.requests).to.have.length(0);
    });

    it('refuses the address when a custom policy throws', async () => {
      const server = await serve((_request, response) => response.end());

      const error = await failure(
        `http://localhost:${server.port}/`,
        { method: 'GET' },
        {
          blockPrivateAddresses: true,
          isBlockedAddress: () => {
            throw new Error('policy bug');
          },
        },
      );

      expect(error.code).to.equal('blocked_address');
      expect(server.requests).to.have.length(0);
    });

    // Every address here is loopback, so the first hop is let through by a policy that the
    // server switches on while it answers; the hop after the redirect must be judged afresh.
    for (const target of ['127.0.0.1', 'localhost']) {
      it(`refuses a redirect to ${target} at the next hop`, async () => {
        let refusing = false;
        const inside = await serve((_request, response) => response.end('internal'));
        const outside = await serve((_request, response) => {
          refusing = true;
          redirect(response, 302, `http://${target}:${inside.port}/admin`);
        });

        const error = await failure(
          outside.origin,
          { method: 'GET' },
          {
            blockPrivateAddresses: true,
            isBlockedAddress: (address) => refusing && isPrivateAddress(address),
          },
        );

        expect(error.code).to.equal('blocked_address');
        expect(outside.requests).to.have.length(1);
        expect(inside.requests).to.have.length(0);
      });
    }
  });
});

describe('isPrivateAddress', () => {
  const refused = [
    '127.0.0.1',
    '127.8.9.10',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '255.255.255.255',
    '224.0.0.1',
    '192.0.2.10',
    '::1',
    '::',
    'fe80::1',
    'fe80::1%eth0',
    'fc00::1',
    'fd12:3456:789a::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::127.0.0.1',
    '::7f00:1',
    '64:ff9b::a00:1',
    '2002:a00:1::',
    'not-an-address',
    '',
  ];
  const admitted = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'];

  for (const address of refused) {
    it(`refuses ${JSON.stringify(address)}`, () => {
      expect(isPrivateAddress(address)).to.equal(true);
    });
  }
  for (const address of admitted) {
    it(`admits ${address}`, () => {
      expect(isPrivateAddress(address)).to.equal(false);
    });
  }
});
