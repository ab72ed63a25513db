import { queueContract } from '@websubsub/core/testing';

import { redisFixture, requireRedis } from './servers.js';

describe('@websubsub/agenda on Redis', function () {
  before(async function () {
    await requireRedis(this);
  });

  queueContract('Agenda 6 with the Redis backend', () => redisFixture());
});
