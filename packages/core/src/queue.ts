/** Data carried by a job: plain JSON, so that every queue backend can persist it. */
export type JobData = Record<string, unknown>;

/** Runs one job. A rejection marks the job failed; the queue retries it as configured. */
export type JobProcessor<T extends JobData = JobData> = (data: T) => Promise<void>;

/** How a job kind is run. */
export interface JobDefinition {
  /** Attempts before a failing job is given up and reported. @default 5 */
  attempts?: number;
  /** Delay before the first retry, doubling after each failure. @default 1000 */
  backoffMs?: number;
  /** Jobs of this kind run at once in one process. @default 10 */
  concurrency?: number;
}

/** Options of one enqueued job. */
export interface EnqueueOptions {
  /** Run no earlier than this many milliseconds from now. @default 0 */
  delayMs?: number;
}

/** Called when a job failed for the last time (after every attempt). */
export type JobFailureListener = (name: string, data: JobData, error: unknown) => void;

/**
 * Runs the subscriber's work: content deliveries, subscribe and unsubscribe requests and the
 * recurring upkeep. Jobs run at least once; an accepted `enqueue` is never lost by a durable
 * queue. The in-process queue keeps jobs in memory only.
 */
export interface JobQueue {
  /**
   * `true` when jobs never leave this process, so job data may hold values that are not JSON
   * (the delivery body then travels as its `Buffer`, not as base64). Durable queues leave it out.
   */
  readonly inProcess?: boolean;
  /** Register the processor of a job kind; must precede `start`. */
  define<T extends JobData>(
    name: string,
    processor: JobProcessor<T>,
    options?: JobDefinition,
  ): void;
  /** Add one job; resolves once the job is accepted (persisted, for a durable queue). */
  enqueue(name: string, data: JobData, options?: EnqueueOptions): Promise<void>;
  /**
   * Run a job kind every `intervalMs`, once across every process sharing the queue. Calling it
   * again with the same name replaces the interval rather than adding a second schedule.
   */
  every(name: string, intervalMs: number, data?: JobData): Promise<void>;
  /** Start processing jobs. */
  start(): Promise<void>;
  /** Stop taking jobs, wait for running ones to finish, then release resources opened here. */
  stop(): Promise<void>;
  /** Listen for jobs that failed for good. */
  onFailure(listener: JobFailureListener): void;
}
