export { startTestHub } from './test-hub.js';
export { TestHubError, type TestHubErrorCode } from './errors.js';
export type {
  CallbackAnswer,
  DeliveryResult,
  Denial,
  FeedDocument,
  HeaderFields,
  HubFailure,
  HubSubscription,
  LogFields,
  PublishContent,
  SignatureAlgorithm,
  SubscriptionRequest,
  SubscriptionState,
  TestHub,
  TestHubEvents,
  TestHubLogger,
  TestHubOptions,
  TopicDocument,
  Verification,
} from './types.js';
