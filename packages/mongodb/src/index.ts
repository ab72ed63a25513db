export {
  createMongoStore,
  DEFAULT_COLLECTION,
  MongoStore,
  type MongoStoreOptions,
} from './mongo-store.js';
export type { SubscriptionDocument } from './documents.js';
