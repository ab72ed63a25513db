export {
  createDashboard,
  statusFilter,
  type Dashboard,
  type DashboardAuthorizer,
  type DashboardOptions,
} from './dashboard.js';
export {
  createMemoryHistory,
  MemoryHistory,
  recordHistory,
  type DeliverySeries,
  type HistoryEntry,
  type HistoryKind,
  type HistoryStore,
  type MemoryHistoryOptions,
} from './history.js';
export { CSRF_COOKIE, SESSION_COOKIE } from './auth.js';
export { html, SafeHtml, type HtmlValue } from './html.js';
export { STATUS_CHOICES, type StatusChoice } from './format.js';
