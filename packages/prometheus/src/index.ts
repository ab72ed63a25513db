export {
  createMetrics,
  type MetricsOptions,
  type SubscriberMetrics,
  type SubscriptionStatusLabel,
} from './metrics.js';
export { createMetricsEndpoint, type MetricsEndpointOptions } from './metrics-endpoint.js';
export { findEarliestLeaseEnd, LEASE_SEARCH_HORIZON_MS } from './earliest-lease.js';
