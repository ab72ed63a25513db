import { storeContract } from '@websubsub/core/testing';

import { createMongoStore } from '../src/index.js';
import { describeMongo, randomName, useTestDatabase } from './database.js';

describeMongo('MongoStore', function () {
  const database = useTestDatabase();

  storeContract('MongoStore', async () => {
    const name = randomName('subscriptions');
    const store = createMongoStore({ db: database.db, collection: name });
    await store.ensureIndexes();
    const collection = database.db.collection<{ _id: string }>(name);

    return {
      store,
      inspect: (id) => collection.findOne({ _id: id }),
      seed: async (records) => {
        await collection.insertMany(records.map(({ id, ...fields }) => ({ _id: id, ...fields })));
      },
      teardown: async () => {
        await store.close();
        await collection.drop();
      },
    };
  });
});
