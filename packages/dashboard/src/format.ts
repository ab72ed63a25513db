import type { Subscription } from '@websubsub/core';

const UNITS: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['min', 60_000],
  ['s', 1000],
];

/** A duration in its two largest units: `2 d 3 h`, `4 min 10 s`, `0 s`. */
export function formatDuration(ms: number): string {
  let left = Math.abs(Math.round(ms));
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    if (parts.length === 2) break;
    const amount = Math.floor(left / size);
    if (amount > 0 || parts.length > 0) {
      if (amount > 0) parts.push(`${amount} ${unit}`);
      left -= amount * size;
    }
  }
  return parts.length === 0 ? '0 s' : parts.join(' ');
}

/** A moment relative to now: `in 3 h 5 min`, `12 min ago`. */
export function formatRelative(at: Date, now: Date): string {
  const ms = at.getTime() - now.getTime();
  return ms >= 0 ? `in ${formatDuration(ms)}` : `${formatDuration(ms)} ago`;
}

/** A moment as UTC: `2026-12-01 14:05:09 UTC`. */
export function formatTime(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** The status filters the dashboard offers, each with the store filter it stands for. */
export const STATUS_CHOICES = [
  ['requesting', 'Requesting'],
  ['verifying', 'Waiting for verification'],
  ['verified', 'Verified'],
  ['failing', 'Failing (any error)'],
  ['connerror', 'Connection error'],
  ['huberror', 'Hub error'],
  ['verifyerror', 'Verification error'],
  ['denied', 'Denied'],
  ['unsubscribing', 'Unsubscribing'],
  ['unsubscribed', 'Unsubscribed'],
] as const;

/** One of the status filters. */
export type StatusChoice = (typeof STATUS_CHOICES)[number][0];

/** How the status of a record reads, and how it looks. */
export interface StatusView {
  label: string;
  tone: 'good' | 'pending' | 'bad' | 'ended';
}

const SUBSCRIBE_VIEWS: Record<Subscription['subscribeStatus'], StatusView> = {
  requesting: { label: 'Requesting', tone: 'pending' },
  verifying: { label: 'Waiting for verification', tone: 'pending' },
  verified: { label: 'Verified', tone: 'good' },
  connerror: { label: 'Connection error', tone: 'bad' },
  huberror: { label: 'Hub error', tone: 'bad' },
  verifyerror: { label: 'Verification error', tone: 'bad' },
  denied: { label: 'Denied', tone: 'ended' },
};

/** The status of a record in words: the unsubscribe request, when there is one, comes first. */
export function statusOf(record: Subscription): StatusView {
  const unsubscribing = record.unsubscribeStatus;
  if (unsubscribing === 'verified') return { label: 'Unsubscribed', tone: 'ended' };
  if (unsubscribing !== null) {
    const step = SUBSCRIBE_VIEWS[unsubscribing];
    return {
      label: `Unsubscribing: ${step.label.toLowerCase()}`,
      tone: step.tone === 'bad' ? 'bad' : 'pending',
    };
  }
  return SUBSCRIBE_VIEWS[record.subscribeStatus];
}

/** Errors of all kinds a record has counted. */
export function errorCount(record: Subscription): number {
  return record.connectionErrors + record.hubErrors + record.verifyTimeouts + record.verifyErrors;
}

/** Can "retry now" do anything for this record: is a request of ours failed or unanswered? */
export function isRetryable(record: Subscription): boolean {
  const pending = ['requesting', 'connerror', 'huberror', 'verifying', 'verifyerror'];
  if (record.unsubscribeStatus !== null) return pending.includes(record.unsubscribeStatus);
  return pending.includes(record.subscribeStatus);
}

/** Shorten text for a table cell, keeping the whole of it for the detail page. */
export function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
