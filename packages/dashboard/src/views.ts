import type { Subscription } from '@websubsub/core';

import { deliveryChart } from './chart.js';
import {
  errorCount,
  formatDuration,
  formatRelative,
  formatTime,
  isRetryable,
  STATUS_CHOICES,
  statusOf,
  truncate,
  type StatusChoice,
} from './format.js';
import type { DeliverySeries, HistoryEntry } from './history.js';
import { html, SafeHtml } from './html.js';
import { STYLE } from './style.js';

/** An action the dashboard can take on one subscription. */
export type ActionName = 'resubscribe' | 'unsubscribe' | 'reset' | 'retry';

/** How each action is offered, confirmed and reported. */
export const ACTIONS: Record<
  ActionName,
  { button: string; question: string; explanation: string; done: string; danger: boolean }
> = {
  resubscribe: {
    button: 'Resubscribe',
    question: 'Resubscribe to this topic?',
    explanation:
      'A new subscribe request is sent to the hub and its error counters start again from zero. ' +
      'This also brings back a denied or unsubscribed subscription.',
    done: 'Resubscribe requested: the hub has been asked again.',
    danger: false,
  },
  unsubscribe: {
    button: 'Unsubscribe',
    question: 'Unsubscribe from this topic?',
    explanation:
      'An unsubscribe request is sent to the hub. Once the hub verifies it, content for this ' +
      'subscription is refused.',
    done: 'Unsubscribe requested: the hub has been asked to end the subscription.',
    danger: true,
  },
  reset: {
    button: 'Reset counters',
    question: 'Reset the error counters?',
    explanation:
      'Connection errors, hub errors, verification timeouts and verification errors go back to ' +
      'zero, so that retries given up on can start again. Nothing is sent to the hub.',
    done: 'Error counters reset.',
    danger: false,
  },
  retry: {
    button: 'Retry now',
    question: 'Retry the failed request now?',
    explanation:
      'The pending or failed request is sent to the hub again now instead of at its scheduled ' +
      'time. Other subscriptions whose retry is already due are retried too.',
    done: 'Retry started.',
    danger: false,
  },
};

/** What every page shares. */
export interface PageFrame {
  basePath: string;
  title: string;
  /** Offer "Sign out" (token sign-in only) with this form token. */
  signOut: { csrf: string } | null;
}

// Our own fixed style sheet: sent as it is, and allowed by its hash in the Content-Security-Policy.
// Kept whole so that no formatting ever adds a byte the hash does not cover.
const STYLE_ELEMENT = new SafeHtml(`<style>${STYLE}</style>`);

function page(frame: PageFrame, heading: string, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <link rel="icon" href="data:," />
        <title>${heading} · ${frame.title}</title>
        ${STYLE_ELEMENT}
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="home" href="${frame.basePath}">${frame.title}</a>
          ${
            frame.signOut
              ? html`<form method="post" action="${frame.basePath}/logout">
                  <input type="hidden" name="csrf" value="${frame.signOut.csrf}" />
                  <button type="submit" class="secondary">Sign out</button>
                </form>`
              : ''
          }
        </header>
        <main id="main" tabindex="-1">${body}</main>
      </body>
    </html>`;
}

/** A URL, escaped, that may wrap after each path slash on a narrow screen (not inside `//`). */
function breakable(url: string): SafeHtml {
  const parts = url.split(/(?<=[^/]\/)(?=[^/])/);
  return html`${parts.map((part, index) => (index === 0 ? part : html`<wbr />${part}`))}`;
}

function badge(record: Subscription): SafeHtml {
  const status = statusOf(record);
  return html`<span class="badge ${status.tone}">${status.label}</span>`;
}

function leaseText(record: Subscription, now: Date): string {
  if (record.unsubscribeStatus === 'verified' || record.subscribeStatus === 'denied') return '—';
  if (record.leaseExpiresAt === null) return 'unknown';
  const left = record.leaseExpiresAt.getTime() - now.getTime();
  return left >= 0 ? `${formatDuration(left)} left` : `ended ${formatDuration(left)} ago`;
}

function timeCell(at: Date | null, now: Date): SafeHtml {
  if (at === null) return html`<span class="muted">never</span>`;
  return html`<time datetime="${at.toISOString()}" title="${formatTime(at)}"
    >${formatRelative(at, now)}</time
  >`;
}

/** Filters of the list as they came in the query string. */
export interface ListFilters {
  q: string;
  status: StatusChoice | '';
  handler: string;
  hub: string;
}

/** Everything the list page shows. */
export interface ListView {
  frame: PageFrame;
  filters: ListFilters;
  handlers: string[];
  items: Subscription[];
  /** Matching records (without a search), or `null` when unknown. */
  matching: number | null;
  /** Records per status for the summary line, with the total. */
  summary: { total: number; byStatus: Array<[StatusChoice, number]> };
  /** Query string of the next page, or `null` on the last. */
  nextQuery: string | null;
  /** Query string of the first page, when this is not the first. */
  firstQuery: string | null;
  /** With a search: records looked at for this page, and whether the scan stopped at its limit. */
  scan: { examined: number; stoppedAtLimit: boolean } | null;
  chart: DeliverySeries | null;
  now: Date;
}

function filterQuery(filters: Partial<ListFilters>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
  const query = params.toString();
  return query ? `?${query}` : '';
}

/** The list of subscriptions, with filters, a summary by status and paging. */
export function listPage(view: ListView): SafeHtml {
  const { frame, filters, now } = view;
  const base = frame.basePath;
  const active = view.filters.q || view.filters.status || view.filters.handler || view.filters.hub;

  const summary = html`<ul class="summary" aria-label="Subscriptions by status">
    <li>
      <a href="${base}" ${!active ? html`aria-current="true"` : ''}>All: ${view.summary.total}</a>
    </li>
    ${view.summary.byStatus.map(
      ([status, count]) =>
        html`<li>
          <a
            href="${base}${filterQuery({ status })}"
            ${
              filters.status === status && !filters.q && !filters.handler && !filters.hub
                ? html`aria-current="true"`
                : ''
            }
            >${STATUS_CHOICES.find(([value]) => value === status)?.[1]}: ${count}</a
          >
        </li>`,
    )}
  </ul>`;

  const form = html`<form
    class="filters"
    method="get"
    action="${base}"
    role="search"
    aria-label="Filter subscriptions"
  >
    <div>
      <label for="filter-q">Topic or hub contains</label>
      <input id="filter-q" name="q" type="search" value="${filters.q}" autocomplete="off" />
    </div>
    <div>
      <label for="filter-status">Status</label>
      <select id="filter-status" name="status">
        <option value="">Any status</option>
        ${STATUS_CHOICES.map(
          ([value, label]) =>
            html`<option value="${value}" ${filters.status === value ? html`selected` : ''}>
              ${label}
            </option>`,
        )}
      </select>
    </div>
    <div>
      <label for="filter-handler">Handler</label>
      <select id="filter-handler" name="handler">
        <option value="">Any handler</option>
        ${view.handlers.map(
          (name) =>
            html`<option value="${name}" ${filters.handler === name ? html`selected` : ''}>
              ${name}
            </option>`,
        )}
      </select>
    </div>
    <div>
      <label for="filter-hub">Hub (exact URL)</label>
      <input
        id="filter-hub"
        name="hub"
        type="text"
        inputmode="url"
        value="${filters.hub}"
        autocomplete="off"
      />
    </div>
    <div class="actions">
      <button type="submit">Filter</button>
      ${active ? html`<a class="button secondary" href="${base}">Clear</a>` : ''}
    </div>
  </form>`;

  const rows = view.items.map((record) => {
    const errors = errorCount(record);
    const errorTitle =
      `connection ${record.connectionErrors}, hub ${record.hubErrors}, ` +
      `verification timeouts ${record.verifyTimeouts}, verification errors ${record.verifyErrors}`;
    return html`<tr>
      <td class="url" data-label="Topic">
        <a href="${base}/subscriptions/${record.id}">${breakable(record.topic)}</a>
      </td>
      <td class="url" data-label="Hub">
        <a href="${base}${filterQuery({ hub: record.hub })}" title="Show subscriptions at this hub"
          >${breakable(record.hub)}</a
        >
      </td>
      <td data-label="Handler">
        <a
          href="${base}${filterQuery({ handler: record.handler })}"
          title="Show subscriptions of this handler"
          >${record.handler}</a
        >
      </td>
      <td data-label="Status">${badge(record)}</td>
      <td data-label="Lease">${leaseText(record, now)}</td>
      <td data-label="Last delivery">${timeCell(record.lastDeliveryAt, now)}</td>
      <td class="num" data-label="Errors"><span title="${errorTitle}">${errors}</span></td>
      <td data-label="Last error">
        ${
          record.lastError ? truncate(record.lastError, 120) : html`<span class="muted">none</span>`
        }
      </td>
    </tr>`;
  });

  const counted =
    view.matching !== null
      ? html`<p class="muted" id="result-count">
          ${view.matching} matching ${view.matching === 1 ? 'subscription' : 'subscriptions'};
          showing ${view.items.length} on this page.
        </p>`
      : html`<p class="muted" id="result-count">
          ${view.items.length} found on this
          page${view.scan ? html`, after looking at ${view.scan.examined} subscriptions` : ''}.
        </p>`;

  const table =
    view.items.length === 0
      ? html`<p>No subscriptions match.</p>`
      : html`<div class="table-wrap">
          <table id="subscriptions" class="cards" aria-describedby="result-count">
            <caption class="visually-hidden">
              Subscriptions
            </caption>
            <thead>
              <tr>
                <th scope="col">Topic</th>
                <th scope="col">Hub</th>
                <th scope="col">Handler</th>
                <th scope="col">Status</th>
                <th scope="col">Lease</th>
                <th scope="col">Last delivery</th>
                <th scope="col">Errors</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              ${rows}
            </tbody>
          </table>
        </div>`;

  const pages =
    view.nextQuery !== null || view.firstQuery !== null
      ? html`<nav class="pages" aria-label="Pages">
          ${
            view.firstQuery !== null ? html`<a href="${base}${view.firstQuery}">First page</a>` : ''
          }
          ${
            view.nextQuery !== null
              ? html`<a href="${base}${view.nextQuery}" rel="next"
                  >${view.scan?.stoppedAtLimit ? 'Keep searching' : 'Next page'}</a
                >`
              : ''
          }
        </nav>`
      : '';

  return page(
    frame,
    'Subscriptions',
    html`<h1>Subscriptions</h1>
      ${summary} ${form} ${counted} ${table} ${pages}
      ${
        view.chart
          ? html`<h2>Deliveries</h2>
              ${deliveryChart(view.chart, 'all-deliveries', 'Content received by this process')}`
          : ''
      }`,
  );
}

/** Everything the page of one subscription shows. */
export interface DetailView {
  frame: PageFrame;
  record: Subscription;
  history: HistoryEntry[] | null;
  chart: DeliverySeries | null;
  notice: { kind: 'ok' | 'error'; text: string } | null;
  now: Date;
}

function field(name: string, value: SafeHtml | string | number): SafeHtml {
  return html`<dt>${name}</dt>
    <dd>${value}</dd>`;
}

/** Actions that make sense for a record, in the order they are offered. */
export function actionsFor(record: Subscription): ActionName[] {
  const actions: ActionName[] = ['resubscribe'];
  if (record.unsubscribeStatus !== 'verified' && record.subscribeStatus !== 'denied')
    actions.push('unsubscribe');
  if (errorCount(record) > 0) actions.push('reset');
  if (isRetryable(record)) actions.push('retry');
  return actions;
}

/** One subscription: its state, its actions, its deliveries and its history. */
export function detailPage(view: DetailView): SafeHtml {
  const { frame, record, now } = view;
  const base = frame.basePath;
  const self = `${base}/subscriptions/${record.id}`;

  const ended = record.unsubscribeStatus === 'verified' || record.subscribeStatus === 'denied';
  const lease = ended
    ? 'none: the subscription has ended'
    : record.leaseExpiresAt === null
      ? 'unknown (not verified yet)'
      : html`${leaseText(record, now)} (ends
          <time datetime="${record.leaseExpiresAt.toISOString()}"
            >${formatTime(record.leaseExpiresAt)}</time
          >)`;

  const fields = html`<dl class="fields">
    ${field('Status', badge(record))} ${field('Topic', breakable(record.topic))}
    ${record.discoveredFrom ? field('Discovered from', breakable(record.discoveredFrom)) : ''}
    ${field('Hub', breakable(record.hub))} ${field('Handler', record.handler)}
    ${field('Callback URL', breakable(record.callbackUrl))}
    ${
      record.retiredCallbackUrl !== null
        ? field('Old callback URL, being ended at the hub', breakable(record.retiredCallbackUrl))
        : ''
    }
    ${field('Lease', lease)}
    ${field(
      'Lease asked for',
      record.leaseSeconds === null ? 'the hub decides' : `${record.leaseSeconds} s`,
    )}
    ${field('Last delivery', timeCell(record.lastDeliveryAt, now))}
    ${field('Last subscribe request', timeCell(record.lastSubscribeAt, now))}
    ${
      record.lastUnsubscribeAt
        ? field('Last unsubscribe request', timeCell(record.lastUnsubscribeAt, now))
        : ''
    }
    ${field(
      'Next retry',
      record.retryAt
        ? timeCell(record.retryAt, now)
        : html`<span class="muted">none scheduled</span>`,
    )}
    ${field(
      'Errors',
      `${record.connectionErrors} connection, ${record.hubErrors} hub, ` +
        `${record.verifyTimeouts} verification timeouts, ${record.verifyErrors} verification`,
    )}
    ${field('Last error', record.lastError ?? html`<span class="muted">none</span>`)}
    ${record.deniedReason !== null ? field("Hub's reason for denying", record.deniedReason) : ''}
    ${field(
      'Secret',
      record.secret === null ? 'none (content is not signed)' : 'set (content must be signed)',
    )}
    ${
      record.previousSecret !== null
        ? field(
            'Secret change',
            'waiting for content signed with the new secret; the previous one is still taken',
          )
        : ''
    }
    ${field('Created', timeCell(record.createdAt, now))}
    ${field('Declared in configuration', record.static ? 'yes' : 'no')} ${field('Id', record.id)}
  </dl>`;

  const actions = html`<h2 id="actions-title">Actions</h2>
    <div class="actions" role="group" aria-labelledby="actions-title">
      ${actionsFor(record).map(
        (action) =>
          html`<form method="get" action="${self}/confirm">
            <input type="hidden" name="action" value="${action}" />
            <button type="submit" class="${ACTIONS[action].danger ? 'danger' : ''}">
              ${ACTIONS[action].button}…
            </button>
          </form>`,
      )}
    </div>`;

  const history =
    view.history === null
      ? ''
      : html`<h2>History</h2>
          ${
            view.history.length === 0
              ? html`<p class="muted">Nothing recorded by this process yet.</p>`
              : html`<table class="cards">
                  <caption class="visually-hidden">
                    History, newest first
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">What</th>
                      <th scope="col">Outcome</th>
                      <th scope="col">Details</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${view.history.map(
                      (entry) =>
                        html`<tr>
                          <td data-label="When">${timeCell(entry.at, now)}</td>
                          <td data-label="What">${entry.kind}</td>
                          <td data-label="Outcome">
                            <span class="level-${entry.level}"
                              >${entry.level === 'success' ? 'ok' : entry.level}</span
                            >
                          </td>
                          <td class="url" data-label="Details">${entry.message}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>`
          }
          <p class="muted">
            History is kept by this process for the latest events only, and is lost on restart.
          </p>`;

  const role = view.notice?.kind === 'error' ? 'alert' : 'status';
  // Formatted as HTML, the text would gain the indentation around it.
  // prettier-ignore
  const notice = view.notice
    ? html`<p class="notice ${view.notice.kind}" role="${role}">${view.notice.text}</p>`
    : '';

  return page(
    frame,
    `Subscription to ${truncate(record.topic, 80)}`,
    html`<p><a href="${base}">← All subscriptions</a></p>
      <h1>Subscription to ${breakable(record.topic)}</h1>
      ${notice} ${actions}
      <h2>Details</h2>
      ${fields}
      ${
        view.chart
          ? html`<h2>Deliveries</h2>
              ${deliveryChart(view.chart, 'deliveries', 'Content received for this subscription')}`
          : ''
      }
      ${history}`,
  );
}

/** The confirmation step of an action, which works without any script. */
export function confirmPage(
  frame: PageFrame,
  record: Subscription,
  action: ActionName,
  csrf: string,
): SafeHtml {
  const self = `${frame.basePath}/subscriptions/${record.id}`;
  const text = ACTIONS[action];
  return page(
    frame,
    text.question,
    html`<h1>${text.question}</h1>
      <dl class="fields">
        ${field('Topic', breakable(record.topic))} ${field('Hub', breakable(record.hub))}
        ${field('Status', badge(record))}
      </dl>
      <p>${text.explanation}</p>
      <form method="post" action="${self}" class="actions">
        <input type="hidden" name="csrf" value="${csrf}" />
        <input type="hidden" name="action" value="${action}" />
        <button type="submit" class="${text.danger ? 'danger' : ''}">
          Yes, ${text.button.toLowerCase()}
        </button>
        <a class="button secondary" href="${self}">Cancel</a>
      </form>`,
  );
}

/** The page a request without permission gets; with token sign-in, a form to sign in. */
export function signInPage(frame: PageFrame, tokenSignIn: boolean, failed: boolean): SafeHtml {
  return page(
    frame,
    'Sign in',
    tokenSignIn
      ? html`<h1>Sign in</h1>
          ${failed ? html`<p class="notice error" role="alert">That token is not right.</p>` : ''}
          <form method="post" action="${frame.basePath}/login">
            <label for="token">Dashboard token</label>
            <input
              id="token"
              name="token"
              type="password"
              autocomplete="current-password"
              required
            />
            <p><button type="submit">Sign in</button></p>
          </form>`
      : html`<h1>Not allowed</h1>
          <p>You are not allowed to see this dashboard.</p>`,
  );
}

/** A page that only says something went wrong (not found, wrong method, refused form). */
export function messagePage(frame: PageFrame, heading: string, text: string): SafeHtml {
  return page(
    frame,
    heading,
    html`<h1>${heading}</h1>
      <p>${text}</p>
      <p><a href="${frame.basePath}">Back to all subscriptions</a></p>`,
  );
}
