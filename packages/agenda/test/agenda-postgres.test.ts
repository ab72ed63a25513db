import { queueContract } from '@websubsub/core/testing';

import { postgresFixture, requirePostgres } from './servers.js';

describe('@websubsub/agenda on PostgreSQL', function () {
  before(async function () {
    await requirePostgres(this);
  });

  queueContract('Agenda 6 with the PostgreSQL backend', () => postgresFixture());
});
