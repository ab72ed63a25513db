import type { Notification } from '@websubsub/core';

/** A received notification as `GET /notifications` shows it. */
export interface NotificationEntry {
  subscriptionId: string;
  topic: string;
  contentType: string | null;
  body: string;
  receivedAt: string;
}

/** The last notifications the sample's handler received, in memory. */
export class NotificationLog {
  private readonly entries: NotificationEntry[] = [];

  constructor(private readonly kept: number) {}

  /** Remember one notification, forgetting the oldest beyond the limit. */
  add(notification: Notification): NotificationEntry {
    const entry: NotificationEntry = {
      subscriptionId: notification.subscription.id,
      topic: notification.topic,
      contentType: notification.contentType,
      body: notification.body.toString('utf8'),
      receivedAt: notification.receivedAt.toISOString(),
    };
    this.entries.push(entry);
    if (this.entries.length > this.kept) this.entries.splice(0, this.entries.length - this.kept);
    return entry;
  }

  /** Every kept notification, newest first. */
  newestFirst(): NotificationEntry[] {
    return [...this.entries].reverse();
  }
}
