import type {
  EnqueueOptions,
  JobData,
  JobDefinition,
  JobFailureListener,
  JobProcessor,
  JobQueue,
} from './queue.js';

/**
 * A first-in first-out list whose `shift` does not move the items behind it (unlike an array's).
 */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined as T;
    this.head++;
    // Drop the consumed front now and then, so the array does not grow without end.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

interface Kind {
  processor: JobProcessor;
  attempts: number;
  backoffMs: number;
  concurrency: number;
  running: number;
  waiting: Fifo<{ data: JobData; attempt: number }>;
}

/** Options of the in-process queue. */
export interface MemoryQueueOptions {
  /** Attempts of a job kind defined without its own. @default 5 */
  attempts?: number;
  /** First retry delay of a job kind defined without its own. @default 1000 */
  backoffMs?: number;
  /** Concurrency of a job kind defined without its own. @default 10 */
  concurrency?: number;
}

/** The longest a Node.js timer waits (2^31 - 1 ms, 24.8 days); it runs longer ones at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The embedded queue: runs jobs in this process, with per-kind concurrency, retries with
 * doubling delays and recurring timers. Jobs live in memory only, so a crash loses what was
 * waiting; use a durable queue (e.g. `@websubsub/agenda`) where that matters.
 */
export class MemoryQueue implements JobQueue {
  /** Jobs stay in this process: data is passed by reference, never serialised. */
  readonly inProcess = true;

  private readonly kinds = new Map<string, Kind>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly delayed = new Map<NodeJS.Timeout, { name: string; data: JobData }>();
  private readonly recurring = new Map<string, NodeJS.Timeout>();
  private readonly listeners: JobFailureListener[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  private started = false;
  private stopping = false;
  private pendingDelayed = 0;

  constructor(private readonly options: MemoryQueueOptions = {}) {}

  define<T extends JobData>(name: string, processor: JobProcessor<T>, options: JobDefinition = {}) {
    this.kinds.set(name, {
      processor: processor as JobProcessor,
      attempts: options.attempts ?? this.options.attempts ?? 5,
      backoffMs: options.backoffMs ?? this.options.backoffMs ?? 1000,
      concurrency: options.concurrency ?? this.options.concurrency ?? 10,
      running: 0,
      waiting: new Fifo(),
    });
  }

  async enqueue(name: string, data: JobData, options: EnqueueOptions = {}): Promise<void> {
    const kind = this.kind(name);
    if (this.stopping) throw new Error(`The queue is stopping; job ${name} was not accepted`);

    // A copy of the top level, so the caller may reuse its object; job data is plain JSON.
    const job = { data: { ...data }, attempt: 1 };
    if (options.delayMs && options.delayMs > 0) this.later(kind, job, options.delayMs);
    else kind.waiting.push(job);
    this.pump(kind);
  }

  async every(name: string, intervalMs: number, data: JobData = {}): Promise<void> {
    const kind = this.kind(name);
    if (!(intervalMs >= 1 && intervalMs <= MAX_TIMER_MS)) {
      throw new RangeError(`The interval of ${name} must be from 1 to ${MAX_TIMER_MS} ms`);
    }
    const previous = this.recurring.get(name);
    if (previous) clearInterval(previous);

    const timer = setInterval(() => {
      // A run still going on is not doubled up by the next tick.
      if (this.stopping || kind.running > 0 || kind.waiting.length > 0) return;
      kind.waiting.push({ data: structuredClone(data), attempt: 1 });
      this.pump(kind);
    }, intervalMs);
    timer.unref();
    this.recurring.set(name, timer);
  }

  async start(): Promise<void> {
    this.started = true;
    this.stopping = false;
    for (const kind of this.kinds.values()) this.pump(kind);
  }

  /**
   * Stop taking jobs and finish the ones already taken: running jobs and jobs waiting for a
   * free slot (accepted deliveries among them) run to the end. Delayed jobs (retries waiting
   * out their backoff) are not waited for: each is reported through `onFailure` as not run.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.recurring.values()) clearInterval(timer);
    this.recurring.clear();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const { name, data } of this.delayed.values()) {
      this.report(name, data, new Error('The queue stopped before this job was retried'));
    }
    this.delayed.clear();
    this.pendingDelayed = 0;
    await this.idle();
    this.started = false;
  }

  onFailure(listener: JobFailureListener): void {
    this.listeners.push(listener);
  }

  /** Resolves once no job is running, waiting or delayed (recurring schedules aside). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    if (this.pendingDelayed > 0) return false;
    for (const kind of this.kinds.values()) {
      if (kind.running > 0 || kind.waiting.length > 0) return false;
    }
    return true;
  }

  private kind(name: string): Kind {
    const kind = this.kinds.get(name);
    if (!kind) throw new Error(`No job kind named ${name} is defined`);
    return kind;
  }

  private later(kind: Kind, job: { data: JobData; attempt: number }, delayMs: number): void {
    this.pendingDelayed++;
    const wait = (remainingMs: number) => {
      // A timer waits at most 2^31 - 1 ms (Node.js runs a longer one at once): wait in steps.
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          this.delayed.delete(timer);
          if (remainingMs > MAX_TIMER_MS) return wait(remainingMs - MAX_TIMER_MS);
          this.pendingDelayed--;
          kind.waiting.push(job);
          this.pump(kind);
        },
        Math.min(remainingMs, MAX_TIMER_MS),
      );
      this.timers.add(timer);
      this.delayed.set(timer, { name: this.nameOf(kind), data: job.data });
    };
    wait(delayMs);
  }

  private nameOf(kind: Kind): string {
    return [...this.kinds].find(([, value]) => value === kind)?.[0] ?? 'unknown';
  }

  private report(name: string, data: JobData, error: unknown): void {
    for (const listener of this.listeners) {
      try {
        listener(name, data, error);
      } catch {
        // A failing listener must not take the queue down with it.
      }
    }
  }

  private pump(kind: Kind): void {
    if (!this.started) return;
    while (kind.running < kind.concurrency && kind.waiting.length > 0) {
      const job = kind.waiting.shift() as { data: JobData; attempt: number };
      kind.running++;
      // Jobs start once the caller's synchronous work is done, never inside its stack.
      queueMicrotask(() => void this.run(kind, job));
    }
    if (this.idleWaiters.length > 0 && this.isIdle()) {
      this.idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }

  private async run(kind: Kind, job: { data: JobData; attempt: number }): Promise<void> {
    try {
      await kind.processor(job.data);
    } catch (error) {
      if (job.attempt < kind.attempts && !this.stopping) {
        const delay = kind.backoffMs * 2 ** (job.attempt - 1);
        this.later(kind, { data: job.data, attempt: job.attempt + 1 }, delay);
      } else {
        this.report(this.nameOf(kind), job.data, error);
      }
    } finally {
      kind.running--;
      this.pump(kind);
    }
  }
}

/** Create the embedded in-process queue. */
export function createMemoryQueue(options?: MemoryQueueOptions): MemoryQueue {
  return new MemoryQueue(options);
}
