import { expect } from 'chai';
import { createMemoryStore } from '@websubsub/core';
describe('smoke', () => { it('works', async () => { expect(await createMemoryStore().get('x')).to.equal(null); }); });
