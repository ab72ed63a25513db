import type { Subscriber, Subscription } from '@websubsub/core';

import type { Output } from './output.js';

/** How a command that queues hub requests lets them run: `--no-wait` and `--timeout`. */
export interface RequestOptions {
  /** Run the queued requests in this process and wait for the hubs' answers. @default true */
  wait: boolean;
  /** Longest wait for the answers, in seconds. @default 120 */
  timeout: number;
}

/** Where each record stands once its request had its chance. */
export interface RequestOutcome {
  /** The records as they are now. */
  records: Subscription[];
  /** Ids whose hub request failed (connection or hub error). */
  failed: string[];
  /** Ids whose request was not answered yet (still `requesting`). */
  pending: string[];
}

type Mode = 'subscribe' | 'unsubscribe';

const FAILED = ['connerror', 'huberror', 'verifyerror'];

const statusFor = (record: Subscription, mode: Mode): string | null =>
  mode === 'subscribe' ? record.subscribeStatus : record.unsubscribeStatus;

/**
 * The in-process queue tells when it has nothing left to do. A durable queue is shared: the
 * jobs this command queued may run in another process, so its records are watched instead.
 */
const idleOf = (subscriber: Subscriber): (() => Promise<void>) | null => {
  const queue = subscriber.queue as Subscriber['queue'] & { idle?: () => Promise<void> };
  if (queue.inProcess !== true || typeof queue.idle !== 'function') return null;
  return () => (queue.idle as () => Promise<void>).call(queue);
};

/** Start the subscriber's queue before requests are queued, unless they are only to be queued. */
export async function prepareRequests(
  subscriber: Subscriber,
  options: RequestOptions,
  out: Output,
): Promise<void> {
  if (options.wait) {
    // A command sends its own requests: the application's sweeps renew and retry the rest.
    await subscriber.start({ sweepNow: false });
    return;
  }
  if (subscriber.queue.inProcess === true) {
    out.note(
      'websubsub: --no-wait with the in-process queue: the requests are stored but not sent; ' +
        'the retry sweep of an application sharing this store sends them once they are due',
    );
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Let the queued requests run and collect where the records stand. With the in-process queue
 * the command waits until it is idle; with any other queue it watches the records until none
 * is `requesting` any more, whoever runs the jobs. Either way at most `timeout` seconds.
 */
export async function settleRequests(
  subscriber: Subscriber,
  ids: string[],
  mode: Mode,
  options: RequestOptions,
  out: Output,
): Promise<RequestOutcome> {
  const deadline = Date.now() + options.timeout * 1000;
  const progress = out.progress();

  if (options.wait && ids.length > 0) {
    const idle = idleOf(subscriber);
    if (idle) {
      progress.tick(`Waiting for ${ids.length} hub request(s)`);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
      await Promise.race([idle(), timedOut]);
      clearTimeout(timer);
    } else {
      let waiting = ids;
      while (waiting.length > 0 && Date.now() < deadline) {
        progress.update(`Hub requests answered: ${ids.length - waiting.length} of ${ids.length}`);
        await sleep(250);
        const current = await Promise.all(waiting.map((id) => subscriber.get(id)));
        waiting = waiting.filter((_, index) => {
          const record = current[index];
          return (
            record !== null && record !== undefined && statusFor(record, mode) === 'requesting'
          );
        });
      }
    }
  }
  progress.done();

  // Records deleted meanwhile (a purge in another process) are simply left out.
  const found = await Promise.all(ids.map((id) => subscriber.get(id)));
  const records = found.filter((record): record is Subscription => record !== null);
  const failed = records.filter((record) => FAILED.includes(statusFor(record, mode) ?? ''));
  const pending = options.wait
    ? records.filter((record) => statusFor(record, mode) === 'requesting')
    : [];
  if (pending.length > 0) {
    out.note(
      `websubsub: ${pending.length} hub request(s) not answered within ${options.timeout}s; ` +
        'they stay queued and the retry sweep sends them again',
    );
  }
  return {
    records,
    failed: failed.map((record) => record.id),
    pending: pending.map((record) => record.id),
  };
}
