import { expect } from 'chai';

import { matchCallback, type SubscriberContext } from '../src/index.js';

/** Only the handler table and the base URL are read by `matchCallback`. */
function contextWith(
  paths: Record<string, string>,
  baseUrl = 'https://app.example.com',
): SubscriberContext {
  const handlers = new Map(
    Object.entries(paths).map(([name, path]) => [name, { handle: () => {}, path }]),
  );
  return { settings: { handlers, baseUrl } } as unknown as SubscriberContext;
}

const ID = '3f0c6a52-9d1e-4b7a-8c21-5e4f7a9b0d13';

describe('matchCallback', () => {
  it('names the handler and the lower-cased id, the same on every lookup of a path', () => {
    const context = contextWith({ news: '/websub/news', video: '/hooks/video' });
    for (let round = 0; round < 3; round++) {
      expect(matchCallback(context, `/websub/news/${ID}`)).to.deep.equal({
        handler: 'news',
        id: ID,
      });
      expect(matchCallback(context, `/hooks/video/${ID.toUpperCase()}/`)).to.deep.equal({
        handler: 'video',
        id: ID,
      });
      expect(matchCallback(context, `/websub/news/not-a-uuid`)).to.equal(null);
      expect(matchCallback(context, `/elsewhere/${ID}`)).to.equal(null);
    }
  });

  it('answers alike past the number of paths it remembers, and for very long paths', () => {
    const context = contextWith({ news: '/websub/news' });
    for (let index = 0; index < 10_000; index++) {
      expect(matchCallback(context, `/other/${index}`)).to.equal(null);
    }
    expect(matchCallback(context, `/websub/news/${ID}`)).to.deep.equal({ handler: 'news', id: ID });
    const long = `${'/x'.repeat(2000)}/websub/news/${ID}`;
    expect(matchCallback(context, long)).to.deep.equal({ handler: 'news', id: ID });
    expect(matchCallback(context, long)).to.deep.equal({ handler: 'news', id: ID });
  });

  it('takes the longest handler path that ends the request path, in any declaration order', () => {
    for (const paths of [
      { v1: '/hooks', v2: '/v2/hooks' },
      { v2: '/v2/hooks', v1: '/hooks' },
    ]) {
      const context = contextWith(paths);
      expect(matchCallback(context, `/v2/hooks/${ID}`)).to.deep.equal({ handler: 'v2', id: ID });
      expect(matchCallback(context, `/app/v2/hooks/${ID}`)).to.deep.equal({
        handler: 'v2',
        id: ID,
      });
      expect(matchCallback(context, `/hooks/${ID}`)).to.deep.equal({ handler: 'v1', id: ID });
      expect(matchCallback(context, `/v3/hooks/${ID}`)).to.deep.equal({ handler: 'v1', id: ID });
    }
  });

  it('reaches a handler at the root path only at the root or at the base URL path', () => {
    const context = contextWith({ root: '', news: '/websub/news' }, 'https://app.example.com/base');
    expect(matchCallback(context, `/${ID}`)).to.deep.equal({ handler: 'root', id: ID });
    expect(matchCallback(context, `/base/${ID}`)).to.deep.equal({ handler: 'root', id: ID });
    expect(matchCallback(context, `/websub/news/${ID}`)).to.deep.equal({
      handler: 'news',
      id: ID,
    });
    expect(matchCallback(context, `/users/${ID}`)).to.equal(null);
    expect(matchCallback(context, `/base/users/${ID}`)).to.equal(null);
  });

  it('takes the callback URL as built under a base URL path before any other reading', () => {
    const rootAndHooks = contextWith(
      { root: '', hooks: '/hooks' },
      'https://app.example.com/hooks',
    );
    expect(matchCallback(rootAndHooks, `/hooks/${ID}`)).to.deep.equal({ handler: 'root', id: ID });
    expect(matchCallback(rootAndHooks, `/hooks/hooks/${ID}`)).to.deep.equal({
      handler: 'hooks',
      id: ID,
    });

    for (const paths of [
      { v1: '/hooks', v2: '/v2/hooks' },
      { v2: '/v2/hooks', v1: '/hooks' },
    ]) {
      const context = contextWith(paths, 'https://app.example.com/v2');
      expect(matchCallback(context, `/v2/hooks/${ID}`)).to.deep.equal({ handler: 'v1', id: ID });
      expect(matchCallback(context, `/v2/v2/hooks/${ID}`)).to.deep.equal({
        handler: 'v2',
        id: ID,
      });
    }
  });

  it('keeps the routes of two subscribers apart', () => {
    const first = contextWith({ news: '/websub/news' });
    const second = contextWith({ news: '/other/news' });
    expect(matchCallback(first, `/websub/news/${ID}`)).to.deep.equal({ handler: 'news', id: ID });
    expect(matchCallback(second, `/websub/news/${ID}`)).to.equal(null);
  });

  it('hands out routes no caller can change for the next', () => {
    const context = contextWith({ news: '/websub/news' });
    const route = matchCallback(context, `/websub/news/${ID}`);
    expect(Object.isFrozen(route)).to.equal(true);
  });
});
