import type { EventEmitter } from 'node:events';

import autocannon from 'autocannon';

/** What one load run measured. */
export interface LoadResult {
  /** 2xx answers per second over the run. */
  rps: number;
  /** Latency percentiles of the 2xx answers, in milliseconds. */
  p50: number;
  p99: number;
  /** Answers that were not 2xx, connection errors and timeouts. */
  non2xx: number;
  errors: number;
  /** Status codes seen, for the log. */
  statuses: Record<string, number>;
}

/** One load run: where, what, how hard. */
export interface LoadOptions {
  url: string;
  body: Buffer;
  headers: Record<string, string>;
  connections: number;
  durationS?: number;
  /** Stop after this many requests instead of after a duration. */
  amount?: number;
  /** Requests per second over all connections, spread evenly in time; saturation when absent. */
  rate?: number;
}

/** The autocannon client fields the pacing below uses; checked before they are touched. */
interface PacedClient {
  rate: number;
  reqsMadeThisSecond: number;
  paused: boolean;
  rateInterval: NodeJS.Timeout;
  destroyed: boolean;
  _doRequest(): void;
}

/**
 * Spread a connection's requests evenly over each second. Autocannon's own limiter releases a
 * connection's whole per-second quota at the top of every second, on every connection at once:
 * at half of saturation the server then sees saturation for half a second and idles for the
 * rest, which measures saturation latency rather than latency at a fixed rate. Here every
 * connection gets one request per tick, ticks spaced 1/rate apart and staggered between
 * connections.
 */
function paceEvenly(client: EventEmitter, index: number, connections: number): void {
  const paced = client as unknown as PacedClient;
  if (typeof paced.rate !== 'number' || paced.rateInterval === undefined) {
    throw new Error('autocannon internals changed: cannot pace its connections evenly');
  }

  clearInterval(paced.rateInterval);
  const perSecond = paced.rate;
  // Node timers fire late on a busy loop, and at millisecond granularity at best: credit is
  // earned by the time that really passed, capped so that a stall is not followed by a burst.
  const tickMs = Math.max(2, 1000 / perSecond);
  const cap = Math.max(1, (perSecond * tickMs * 2) / 1000);
  let credit = 0;
  let last = performance.now();

  const tick = () => {
    const now = performance.now();
    credit = Math.min(cap, credit + (perSecond * (now - last)) / 1000);
    last = now;
    const allowed = Math.floor(credit);
    credit -= allowed;

    paced.reqsMadeThisSecond = 0;
    paced.rate = allowed;
    if (paced.paused && allowed > 0) {
      paced.paused = false;
      paced._doRequest();
    }
  };

  paced.rate = 0;
  paced.reqsMadeThisSecond = 1;
  // autocannon clears `rateInterval` when it ends a connection with a rate still set; the
  // ticks also stop themselves once the connection is destroyed.
  const offset = (tickMs * index) / connections;
  setTimeout(() => {
    if (paced.destroyed) return;
    paced.rateInterval = setInterval(() => {
      if (paced.destroyed) clearInterval(paced.rateInterval);
      else tick();
    }, tickMs);
    tick();
  }, offset);
}

function percentile(sorted: Float64Array, share: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

/**
 * Load a URL with autocannon (keep-alive connections, pipelining 1). Latencies are taken from
 * each response at sub-millisecond precision, since autocannon's histogram keeps whole ms.
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  let connectionIndex = 0;
  let latencies = new Float64Array(1 << 16);
  let recorded = 0;

  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: 'POST',
        headers: options.headers,
        body: options.body,
        connections: options.connections,
        pipelining: 1,
        timeout: 10,
        ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 5 }),
        ...(options.rate
          ? { overallRate: Math.max(options.connections, Math.round(options.rate)) }
          : {}),
        ...(options.rate
          ? {
              setupClient: (client) =>
                queueMicrotask(() => paceEvenly(client, connectionIndex++, options.connections)),
            }
          : {}),
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }

        const sorted = latencies.subarray(0, recorded).sort();
        const statuses: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats))
          statuses[code] = count;
        resolve({
          rps: result['2xx'] / result.duration,
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
          statuses,
        });
      },
    );

    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status < 200 || status >= 300) return;
      if (recorded === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[recorded++] = ms;
    });
  });
}
