import { AdapterError, InvalidInputError } from '@websubsub/core';
import { lockContract } from '@websubsub/core/testing';
import { expect } from 'chai';

import { createPostgresLock } from '../src/index.js';
import { DATABASE_URL, describePostgres, randomName, useTestSchema } from './database.js';

describePostgres('PostgresLock', function () {
  const database = useTestSchema();

  lockContract('PostgresLock, two clients on one table', async () => {
    const table = `${database.schema}.${randomName('locks')}`;
    return {
      provider: createPostgresLock({ pool: database.pool, table }),
      // A second process: a pool of its own on the same table.
      second: async () => createPostgresLock({ connectionString: DATABASE_URL, table }),
      teardown: async () => {
        await database.pool.query(`DROP TABLE IF EXISTS ${table}`);
      },
    };
  });

  describe('own behaviour', function () {
    let table: string;

    beforeEach(function () {
      table = `${database.schema}.${randomName('locks')}`;
    });

    afterEach(async function () {
      await database.pool.query(`DROP TABLE IF EXISTS ${table}`);
    });

    it('creates its table on first use, and leaves no row once released', async function () {
      const locks = createPostgresLock({ pool: database.pool, table });
      const held = await locks.acquire('subscription:a', 5000);
      const { rows } = await database.pool.query<{ key: string }>(`SELECT key FROM ${table}`);
      expect(rows.map((row) => row.key)).to.deep.equal(['subscription:a']);

      await held?.release();
      const after = await database.pool.query(`SELECT key FROM ${table}`);
      expect(after.rows).to.have.length(0);
    });

    it('refuses a time to live that is not positive', async function () {
      const locks = createPostgresLock({ pool: database.pool, table });
      const outcome = await locks.acquire('k', 0).catch((error: unknown) => error);
      expect(outcome).to.be.instanceOf(InvalidInputError);
    });

    it('rejects with AdapterError when the server refuses, works once back', async function () {
      const locks = createPostgresLock({ pool: database.pool, table, migrate: false });
      const outcome = await locks.acquire('k', 1000).catch((error: unknown) => error);
      expect(outcome).to.be.instanceOf(AdapterError);

      await locks.migrate();
      expect(await locks.acquire('k', 1000)).to.not.equal(null);
    });
  });
});
