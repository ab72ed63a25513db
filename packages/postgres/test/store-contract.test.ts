import { storeContract } from '@websubsub/core/testing';

import { createPostgresStore } from '../src/index.js';
import { describePostgres, randomName, toColumns, useTestSchema } from './database.js';

describePostgres('PostgresStore', function () {
  const database = useTestSchema();

  storeContract('PostgresStore', async () => {
    const name = randomName('subscriptions');
    const table = `"${database.schema}"."${name}"`;
    const store = createPostgresStore({ pool: database.pool, table: `${database.schema}.${name}` });
    await store.migrate();

    return {
      store,
      inspect: async (id) => {
        const { rows } = await database.pool.query(`SELECT * FROM ${table} WHERE id = $1`, [id]);
        return rows[0] ?? null;
      },
      seed: async (records) => {
        await database.pool.query(
          `INSERT INTO ${table} SELECT * FROM json_populate_recordset(NULL::${table}, $1)`,
          [JSON.stringify(records.map(toColumns))],
        );
      },
      teardown: async () => {
        await store.close();
        await database.pool.query(`DROP TABLE ${table}`);
      },
    };
  });
});
