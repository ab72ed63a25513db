import { startChild } from '../lib/child.js';
import { atomBody, deliveryHeaders } from '../lib/delivery.js';
import { runLoad } from '../lib/load.js';

/** The sample app's memory figures. */
export interface MemoryResult {
  subscriptions: number;
  /** Resident and heap memory of the idle sample, without and with the subscriptions. */
  emptyRss: number;
  emptyHeap: number;
  seededRss: number;
  seededHeap: number;
  /** Deliveries accepted and waiting for their handler, and the memory with them held. */
  inFlight: number;
  inFlightRss: number;
  inFlightHeap: number;
  skipped?: string;
}

/** Measure the sample app's memory with these many subscriptions and deliveries held. */
export async function runMemory(settings: {
  subscriptions: number;
  deliveries: number;
  log: (line: string) => void;
}): Promise<MemoryResult> {
  settings.log(`memory: sample app with ${settings.subscriptions} subscriptions`);
  const child = startChild('memory/child.ts', [String(settings.subscriptions)], {
    execArgv: ['--expose-gc'],
    fromSources: true,
  });

  try {
    const ready = await child.ready(300_000);
    const empty = ready['empty'] as NodeJS.MemoryUsage;
    const seeded = ready['seeded'] as NodeJS.MemoryUsage;

    const body = atomBody();
    const load = await runLoad({
      url: `http://127.0.0.1:${String(ready['port'])}${String(ready['callbackPath'])}`,
      body,
      headers: deliveryHeaders(body),
      connections: 50,
      amount: settings.deliveries,
    });
    const held = await child.ask({ type: 'measure' });
    const usage = held['usage'] as NodeJS.MemoryUsage;

    const result = {
      subscriptions: settings.subscriptions,
      emptyRss: empty.rss,
      emptyHeap: empty.heapUsed,
      seededRss: seeded.rss,
      seededHeap: seeded.heapUsed,
      inFlight: Number(held['accepted']),
      inFlightRss: usage.rss,
      inFlightHeap: usage.heapUsed,
    };
    settings.log(
      `  idle ${mb(result.emptyRss)} MB, with subscriptions ${mb(result.seededRss)} MB, with ` +
        `${result.inFlight} deliveries held ${mb(result.inFlightRss)} MB ` +
        `(${JSON.stringify(load.statuses)})`,
    );
    return result;
  } finally {
    await child.stop();
  }
}

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);
