// The peer ships no types; only what the benchmark calls is declared.
declare module 'pubsubhubbub' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface PubSubHubbubOptions {
    callbackUrl: string;
    secret?: string;
    maxContentSize?: number;
  }

  interface PubSubHubbub extends EventEmitter {
    listener(): (request: IncomingMessage, response: ServerResponse) => void;
  }

  const pubsubhubbub: { createServer(options: PubSubHubbubOptions): PubSubHubbub };
  export default pubsubhubbub;
}
