import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';

import { createNodeListener, endOfTurn } from '../src/index.js';
import { httpAdapterSuite } from '../src/testing/http-adapter-suite.js';

httpAdapterSuite('node:http (createNodeListener)', async (endpoint, app) => {
  const server = createServer(createNodeListener(endpoint, app));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
});

describe('endOfTurn', () => {
  it('is one promise per turn, settled after its microtasks, and a new one after it', async () => {
    const order: string[] = [];
    const first = endOfTurn();
    expect(endOfTurn()).to.equal(first);
    void first.then(() => order.push('end of turn'));
    queueMicrotask(() => order.push('microtask'));
    setImmediate(() => order.push('immediate queued after it'));
    await first;
    expect(order).to.deep.equal(['microtask', 'end of turn']);

    const next = endOfTurn();
    expect(next).to.not.equal(first);
    await next;
    expect(order).to.include('immediate queued after it');
  });
});

describe('endOfTurn under fake timers', () => {
  it('comes even when the global setImmediate was replaced after the module loaded', async () => {
    const real = globalThis.setImmediate;
    // What fake timers do: a setImmediate that never runs its callback until told to.
    globalThis.setImmediate = (() => ({})) as unknown as typeof setImmediate;
    try {
      const outcome = await Promise.race([
        endOfTurn().then(() => 'came'),
        new Promise((resolve) => setTimeout(() => resolve('never came'), 500)),
      ]);
      expect(outcome).to.equal('came');
    } finally {
      globalThis.setImmediate = real;
    }
  });
});
