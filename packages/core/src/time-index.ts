const BUCKET_MS = 60_000;

/**
 * Ids indexed by a time, in one-minute buckets, so that "everything due before t" costs the
 * number of due ids (plus the buckets passed over) rather than the number of ids indexed.
 */
export class TimeIndex {
  private readonly buckets = new Map<number, Set<string>>();
  private readonly bucketOf = new Map<string, number>();
  private readonly timeOf = new Map<string, number>();
  private sortedKeys: number[] = [];

  /** Index `id` at `time`, or drop it from the index when `time` is `null`. */
  set(id: string, time: number | null): void {
    if (time === null) {
      this.delete(id);
      return;
    }
    const key = Math.floor(time / BUCKET_MS);
    const previous = this.bucketOf.get(id);
    if (previous !== key) {
      this.delete(id);
      let bucket = this.buckets.get(key);
      if (!bucket) {
        bucket = new Set();
        this.buckets.set(key, bucket);
        this.insertKey(key);
      }
      bucket.add(id);
      this.bucketOf.set(id, key);
    }
    this.timeOf.set(id, time);
  }

  /** Drop `id` from the index. */
  delete(id: string): void {
    const key = this.bucketOf.get(id);
    if (key === undefined) return;
    const bucket = this.buckets.get(key) as Set<string>;
    bucket.delete(id);
    if (bucket.size === 0) {
      this.buckets.delete(key);
      this.sortedKeys.splice(this.sortedKeys.indexOf(key), 1);
    }
    this.bucketOf.delete(id);
    this.timeOf.delete(id);
  }

  /** Is `id` indexed at a time before `limit` (or equal to it, when `inclusive`)? */
  isDue(id: string, limit: number, inclusive: boolean): boolean {
    const time = this.timeOf.get(id);
    return time !== undefined && (time < limit || (inclusive && time === limit));
  }

  /** Ids whose time is before `limit` (or equal to it, when `inclusive`), in no order. */
  due(limit: number, inclusive: boolean): string[] {
    const last = Math.floor(limit / BUCKET_MS);
    const out: string[] = [];
    for (const key of this.sortedKeys) {
      if (key > last) break;
      for (const id of this.buckets.get(key) as Set<string>) {
        const time = this.timeOf.get(id) as number;
        if (time < limit || (inclusive && time === limit)) out.push(id);
      }
    }
    return out;
  }

  private insertKey(key: number): void {
    let low = 0;
    let high = this.sortedKeys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.sortedKeys[middle] as number) < key) low = middle + 1;
      else high = middle;
    }
    this.sortedKeys.splice(low, 0, key);
  }
}
