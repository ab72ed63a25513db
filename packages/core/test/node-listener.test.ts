import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createNodeListener } from '../src/index.js';
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
